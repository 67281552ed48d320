"""The review queue: people label what the model was unsure of, and their labels score it.

The gateway keeps every low-confidence request, and a share of the others, as samples, each
with a request id and a row in the prediction log. On every tick the `ReviewController` turns
each new sample into an open review item (one per sample: ticking twice opens nothing twice).
A reviewer takes the next item (low confidence first, then the oldest), labels it, and the
label is stored as feedback on the sample's request id, row 0 (source "review"): it counts in
accuracy exactly as a customer's feedback does. An item is about its request's first row.
Items can also go to Label Studio as tasks with the model's answer as a pre-annotation.

A call scoped to a tenant sees and labels only that tenant's items; another tenant's item is
reported missing with the very message a missing one gets, so item ids reveal nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from sqlalchemy import Connection, Select, and_, case, select, update

from modelfleet.config.schema import Model
from modelfleet.errors import InvalidInput
from modelfleet.registry import load_state
from modelfleet.registry.events import Event
from modelfleet.store import Store
from modelfleet.store.tables import predictions, review_items, samples
from modelfleet.store.upsert import insert_or_ignore
from modelfleet.telemetry.feedback import Feedback, check_label, write_feedback

SOURCE: Final = "review"
REASONS = ("low_confidence", "sampled")
STATUSES = ("open", "labelled", "all")
Status = Literal["open", "labelled", "all"]


@dataclass(frozen=True)
class ReviewItem:
    """One sampled request waiting for (or given) a person's label, with the model's answer."""

    id: int
    sample: int
    tenant: str
    model: str
    version: str
    reason: str  # low_confidence or sampled
    status: str  # open or labelled
    label: str | None
    labelled_by: str | None
    labelled_at: datetime | None
    created_at: datetime
    request_id: str
    sampled_at: datetime
    predicted: Any  # the answer to row 0: a label (or a value); None if it was not logged
    confidence: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for `modelfleet review list -o json`."""
        out = dict(self.__dict__)
        for name in ("labelled_at", "created_at", "sampled_at"):
            out[name] = out[name].isoformat() if out[name] is not None else None
        return out


class ReviewController:
    """Opens a review item for every new low-confidence or sampled request; see the module."""

    def __init__(
        self, store: Store, *, lookback: timedelta = timedelta(days=1), batch: int = 5000
    ) -> None:
        self.store = store
        self.lookback = lookback  # samples older than this are never queued
        self.batch = batch  # items opened per tick at most; the rest wait for the next

    def tick(self, now: datetime) -> list[Event]:
        """Open the new items; one event per (tenant, model) that got some. The events are
        returned for the loop to log, not stored: a busy fleet opens items every tick."""
        with self.store.begin() as conn:
            opened = open_items(conn, now, lookback=self.lookback, limit=self.batch)
        counts = Counter((tenant, model) for tenant, model, _ in opened)
        low = Counter((tenant, model) for tenant, model, r in opened if r == "low_confidence")
        return [
            Event(
                at=now,
                source=SOURCE,
                kind="review.items_opened",
                severity="info",
                subject=model,
                message=f"{n} new item(s) to review for {tenant} ({low[tenant, model]} low confidence)",
                details={"items": n, "low_confidence": low[tenant, model]},
                tenant=tenant,
            )
            for (tenant, model), n in sorted(counts.items())
        ]


def open_items(
    conn: Connection,
    now: datetime,
    *,
    lookback: timedelta,
    limit: int,
    tenant: str | None = None,
    model: str | None = None,
) -> list[tuple[str, str, str]]:
    """Open an item for each sample since `now - lookback` that has none yet (oldest first, at
    most `limit`, of one tenant and model if given); returns the (tenant, model, reason) of
    each one opened."""
    s, r = samples, review_items
    query = (
        select(s.c.id, s.c.tenant, s.c.model, s.c.version, s.c.reason)
        .where(
            s.c.reason.in_(REASONS),
            s.c.request_id.is_not(None),  # samples from before request ids cannot be scored
            s.c.at >= now - lookback,
            ~select(r.c.id).where(r.c.sample == s.c.id).exists(),
        )
        .order_by(s.c.id)
        .limit(limit)
    )
    if tenant is not None:
        query = query.where(s.c.tenant == tenant)
    if model is not None:
        query = query.where(s.c.model == model)
    found = conn.execute(query).all()
    rows = [
        {
            "sample": f.id,
            "tenant": f.tenant,
            "model": f.model,
            "version": f.version,
            "reason": f.reason,
            "status": "open",
            "created_at": now,
        }
        for f in found
    ]
    # Two control loops ticking at once must not fail each other: the second one skips.
    insert_or_ignore(conn, review_items, rows, ("sample",))
    return [(f.tenant, f.model, f.reason) for f in found]


def open_review(
    conn: Connection, tenant: str, model: str, *, since: datetime, now: datetime
) -> int:
    """Queue every kept request of `tenant` to `model` since `since` (a runbook's `open_review`
    after an alert: the requests around it are the ones worth a person's look)."""
    return len(
        open_items(conn, now, lookback=now - since, limit=10_000, tenant=tenant, model=model)
    )


def _items() -> Select[Any]:
    r, s, p = review_items, samples, predictions
    return select(
        r,
        s.c.request_id,
        s.c.at.label("sampled_at"),
        p.c.predicted,
        p.c.confidences,
    ).select_from(
        r.join(s, s.c.id == r.c.sample).outerjoin(
            p,
            and_(
                p.c.tenant == r.c.tenant,
                p.c.model == r.c.model,
                p.c.request_id == s.c.request_id,
            ),
        )
    )


def _item(row: Any) -> ReviewItem:
    predicted = row.predicted[0] if row.predicted else None
    confidence = row.confidences[0] if row.confidences else None
    return ReviewItem(
        row.id,
        row.sample,
        row.tenant,
        row.model,
        row.version,
        row.reason,
        row.status,
        row.label,
        row.labelled_by,
        row.labelled_at,
        row.created_at,
        row.request_id,
        row.sampled_at,
        predicted,
        confidence,
    )


def list_items(
    conn: Connection,
    *,
    tenant: str | None = None,
    status: Status = "open",
    model: str | None = None,
    limit: int = 100,
) -> list[ReviewItem]:
    """Items in the order they are worked: low confidence first, then the oldest."""
    if status not in STATUSES:
        raise InvalidInput(f"unknown status {status!r}; use {', '.join(STATUSES)}")
    r = review_items
    query = _items().order_by(case((r.c.reason == "low_confidence", 0), else_=1), r.c.id)
    if tenant is not None:
        query = query.where(r.c.tenant == tenant)
    if model is not None:
        query = query.where(r.c.model == model)
    if status != "all":
        query = query.where(r.c.status == status)
    return [_item(row) for row in conn.execute(query.limit(limit))]


def next_item(
    conn: Connection, *, tenant: str | None = None, model: str | None = None
) -> ReviewItem | None:
    """The open item to label next, or None when the queue is empty."""
    found = list_items(conn, tenant=tenant, model=model, status="open", limit=1)
    return found[0] if found else None


def get_item(conn: Connection, item_id: int, *, tenant: str | None = None) -> ReviewItem:
    """One item; another tenant's, for a tenant-scoped call, is missing like a missing one."""
    r = review_items
    query = _items().where(r.c.id == item_id)
    if tenant is not None:
        query = query.where(r.c.tenant == tenant)
    row = conn.execute(query).first()
    if row is None:
        raise InvalidInput(f"no review item {item_id}")
    return _item(row)


def label_item(
    conn: Connection,
    item_id: int,
    label: str,
    *,
    actor: str,
    now: datetime,
    tenant: str | None = None,
) -> ReviewItem:
    """Label an item, and store the label as feedback on its request's row 0. Labelling it
    again replaces the label, in the item and in the feedback."""
    item = get_item(conn, item_id, tenant=tenant)
    check_label(item.model, label, _labels(conn, item.model))
    conn.execute(
        update(review_items)
        .where(review_items.c.id == item.id)
        .values(status="labelled", label=label, labelled_by=actor, labelled_at=now)
    )
    write_feedback(
        conn,
        [Feedback(item.tenant, item.model, item.request_id, 0, label, SOURCE, actor, now)],
    )
    return replace(item, status="labelled", label=label, labelled_by=actor, labelled_at=now)


def _labels(conn: Connection, model: str) -> list[str] | None:
    found = load_state(conn).get(("Model", model))
    if found is None:
        raise InvalidInput(f"model {model!r} is no longer registered; its items cannot be labelled")
    assert isinstance(found.resource, Model)
    return found.resource.spec.output.labels


def sample_inputs(conn: Connection, items: Iterable[ReviewItem]) -> dict[int, dict[str, Any]]:
    """The first row's inputs of each item's sample, by sample id."""
    ids = sorted({item.sample for item in items})
    if not ids:
        return {}
    rows = conn.execute(select(samples.c.id, samples.c.inputs).where(samples.c.id.in_(ids)))
    return {row.id: first_row(row.inputs) for row in rows}


def first_row(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Row 0 of a sample's inputs (each stored as a list of rows)."""
    return {name: values[0] for name, values in inputs.items() if values}


def summarize_inputs(inputs: Mapping[str, Any], width: int = 60) -> list[str]:
    """One line per input, for people: numbers as count, range and mean; the rest as text."""
    lines: list[str] = []
    for name, value in inputs.items():
        flat = _flatten(value)
        numbers = [v for v in flat if isinstance(v, int | float) and not isinstance(v, bool)]
        if flat and len(numbers) == len(flat) and len(flat) > 1:
            mean = sum(numbers) / len(numbers)
            text = f"{len(flat)} values in [{min(numbers):g}, {max(numbers):g}], mean {mean:.3g}"
        else:
            text = repr(value)
            if len(text) > width:
                text = text[: width - 3] + "..."
        lines.append(f"{name}: {text}")
    return lines


def _flatten(value: Any) -> list[Any]:
    if not isinstance(value, list):
        return [value]
    return [v for item in value for v in _flatten(item)]


def export_label_studio(
    items: Sequence[ReviewItem],
    inputs: Mapping[int, Mapping[str, Any]],
    *,
    from_name: str = "label",
    to_name: str = "image",
) -> list[dict[str, Any]]:
    """Label Studio tasks (its JSON import format): the item's first-row inputs and who it is
    about as `data`, and the model's answer as a pre-annotation of a `Choices` control named
    `from_name` on the object `to_name` (https://labelstud.io/guide/predictions)."""
    tasks: list[dict[str, Any]] = []
    for item in items:
        task: dict[str, Any] = {
            "id": item.id,
            "data": {
                **inputs.get(item.sample, {}),
                "tenant": item.tenant,
                "model": item.model,
                "version": item.version,
                "request_id": item.request_id,
            },
            "predictions": [],
        }
        if item.predicted is not None:
            prediction: dict[str, Any] = {
                "model_version": item.version,
                "result": [
                    {
                        "from_name": from_name,
                        "to_name": to_name,
                        "type": "choices",
                        "value": {"choices": [str(item.predicted)]},
                    }
                ],
            }
            if item.confidence is not None:
                prediction["score"] = item.confidence
            task["predictions"].append(prediction)
        tasks.append(task)
    return tasks
