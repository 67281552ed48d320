"""Accuracy from labels: how often the version that answered a request was right.

A true label (a customer's feedback, or a reviewer's) joins the prediction log on (tenant,
model, request id) and row, and counts for the version that answered that request, for that
tenant. The tenant is part of the join, so a label a tenant gives on another tenant's request
id never scores the other tenant. Labels whose prediction is not in the store yet (the id was
never logged, or the worker that answered has not flushed) simply do not count until it is.

Per (tenant, model, version): labelled rows, correct rows, accuracy = correct / labelled; the
same per true class (a class's accuracy is its recall); and a confusion count per (true,
predicted). `score` is the pure part, `accuracy` the one query that feeds it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, select

from modelfleet.store.tables import feedback, predictions


@dataclass(frozen=True)
class Labelled:
    """One labelled row: the true label, and what the version answered."""

    tenant: str
    model: str
    version: str
    true: str
    predicted: str


@dataclass(frozen=True)
class ClassAccuracy:
    """How often rows of one true class were answered right (the class's recall)."""

    label: str
    labelled: int
    correct: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.labelled


@dataclass(frozen=True)
class AccuracyRow:
    """One (tenant, model, version)'s accuracy on its labelled rows."""

    tenant: str
    model: str
    version: str
    labelled: int
    correct: int
    classes: tuple[ClassAccuracy, ...]  # by true label, sorted
    confusion: Mapping[tuple[str, str], int]  # (true, predicted) -> rows

    @property
    def accuracy(self) -> float:
        return self.correct / self.labelled

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for `modelfleet accuracy -o json`."""
        return {
            "tenant": self.tenant,
            "model": self.model,
            "version": self.version,
            "labelled": self.labelled,
            "correct": self.correct,
            "accuracy": self.accuracy,
            "classes": [
                {
                    "label": c.label,
                    "labelled": c.labelled,
                    "correct": c.correct,
                    "accuracy": c.accuracy,
                }
                for c in self.classes
            ],
            "confusion": [
                {"true": true, "predicted": predicted, "rows": n}
                for (true, predicted), n in sorted(self.confusion.items())
            ],
        }


def score(pairs: Iterable[Labelled]) -> list[AccuracyRow]:
    """Accuracy per (tenant, model, version), sorted by them; only groups with a label appear."""
    confusion: dict[tuple[str, str, str], Counter[tuple[str, str]]] = {}
    for p in pairs:
        confusion.setdefault((p.tenant, p.model, p.version), Counter())[(p.true, p.predicted)] += 1
    rows: list[AccuracyRow] = []
    for (tenant, model, version), counts in sorted(confusion.items()):
        labelled: Counter[str] = Counter()
        correct: Counter[str] = Counter()
        for (true, predicted), n in counts.items():
            labelled[true] += n
            if true == predicted:
                correct[true] += n
        classes = tuple(ClassAccuracy(c, labelled[c], correct[c]) for c in sorted(labelled))
        rows.append(
            AccuracyRow(
                tenant,
                model,
                version,
                labelled=sum(labelled.values()),
                correct=sum(correct.values()),
                classes=classes,
                confusion=dict(counts),
            )
        )
    return rows


def labelled_rows(
    conn: Connection,
    *,
    model: str | None = None,
    tenant: str | None = None,
    since: datetime | None = None,
) -> list[Labelled]:
    """Every label that meets its prediction: (tenant, model, request id) and row."""
    f, p = feedback, predictions
    query = (
        select(f.c.tenant, f.c.model, p.c.version, f.c.row, f.c.label, p.c.predicted)
        .select_from(
            f.join(
                p,
                and_(
                    p.c.tenant == f.c.tenant,
                    p.c.model == f.c.model,
                    p.c.request_id == f.c.request_id,
                ),
            )
        )
        .order_by(f.c.id)
    )
    if model is not None:
        query = query.where(f.c.model == model)
    if tenant is not None:
        query = query.where(f.c.tenant == tenant)
    if since is not None:
        query = query.where(p.c.at >= since)
    out: list[Labelled] = []
    for r in conn.execute(query):
        answered = r.predicted
        # A row the request did not have, or a regressor's value, has nothing to compare with.
        if 0 <= r.row < len(answered) and isinstance(answered[r.row], str):
            out.append(Labelled(r.tenant, r.model, r.version, r.label, answered[r.row]))
    return out


def accuracy(
    conn: Connection,
    *,
    model: str | None = None,
    tenant: str | None = None,
    since: datetime | None = None,
) -> list[AccuracyRow]:
    """Accuracy per (tenant, model, version) on every labelled row of requests answered at or
    after `since` (all of them when None)."""
    return score(labelled_rows(conn, model=model, tenant=tenant, since=since))
