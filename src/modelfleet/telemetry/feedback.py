"""The prediction log and feedback: what was answered to a request with an id, and its true label.

Accuracy needs both halves. The gateway keeps a prediction row for every answered request that
carries an id (and every one it keeps as a sample), buffers them like rollups and writes them
with its telemetry flush. The first row logged for a (tenant, model, request id) stays: a client
that reuses an id cannot rewrite what it was answered. Feedback, from customers over HTTP or
from the review queue, is written as it arrives: one row per (tenant, model, request id, row),
and a new label for a row replaces the old one, so sending the same feedback twice changes
nothing. Every key starts with the tenant, so a tenant's labels only ever meet its own
predictions, whatever request id it names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, select

from modelfleet.errors import InvalidInput
from modelfleet.store.tables import feedback as feedback_table
from modelfleet.store.tables import predictions as predictions_table
from modelfleet.store.upsert import insert_or_ignore, upsert

Source = Literal["customer", "review"]

PREDICTION_KEY = ("tenant", "model", "request_id")
FEEDBACK_KEY = ("tenant", "model", "request_id", "row")


@dataclass(frozen=True)
class Feedback:
    """The true label of one row of one request, and who gave it."""

    tenant: str
    model: str
    request_id: str
    row: int
    label: str
    source: Source
    actor: str
    received_at: datetime


def check_label(model: str, label: str, labels: Sequence[str] | None) -> None:
    """Refuse a label that is not one of the model's (the same message everywhere)."""
    if labels is None:
        raise InvalidInput(f"model {model!r} is not a classifier: it takes no labels")
    if label not in labels:
        raise InvalidInput(
            f"unknown label {label!r} for model {model!r}; valid labels: {', '.join(labels)}"
        )


def write_predictions(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
    """Log predictions (as `Gateway` keeps them); a request id already logged for the tenant and
    model keeps its first row. Returns how many rows were offered after dropping repeats."""
    first: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for row in rows:
        first.setdefault(tuple(row[k] for k in PREDICTION_KEY), row)
    insert_or_ignore(conn, predictions_table, list(first.values()), PREDICTION_KEY)
    return len(first)


def write_feedback(conn: Connection, records: Sequence[Feedback]) -> int:
    """Store feedback; a row already labelled gets the new label. Returns how many rows."""
    last: dict[tuple[Any, ...], dict[str, Any]] = {}
    for record in records:
        row = asdict(record)
        last[tuple(row[k] for k in FEEDBACK_KEY)] = row
    upsert(
        conn,
        feedback_table,
        list(last.values()),
        FEEDBACK_KEY,
        update=("label", "source", "actor", "received_at"),
    )
    return len(last)


def read_feedback(
    conn: Connection, *, tenant: str | None = None, model: str | None = None
) -> list[Feedback]:
    """Stored feedback, oldest first."""
    f = feedback_table
    query = select(
        f.c.tenant,
        f.c.model,
        f.c.request_id,
        f.c.row,
        f.c.label,
        f.c.source,
        f.c.actor,
        f.c.received_at,
    ).order_by(f.c.id)
    if tenant is not None:
        query = query.where(f.c.tenant == tenant)
    if model is not None:
        query = query.where(f.c.model == model)
    return [Feedback(*r) for r in conn.execute(query)]
