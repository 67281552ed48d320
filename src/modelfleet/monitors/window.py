"""A window of telemetry for one (tenant, model, version): its rollups pooled into one.

Rollups merge by addition, so an hour of minutes from any number of gateway workers pools into
exactly the counts of all those requests: per-column histograms on the profile's edges, the
predicted classes, the confidence histogram and the requests by status class.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, and_, select

from modelfleet.stats import Histogram
from modelfleet.store.tables import feedback, predictions
from modelfleet.telemetry.rollup import CONFIDENCE_EDGES, STATUS_CLASSES, Rollup


@dataclass
class Window:
    tenant: str
    model: str
    version: str
    start: datetime
    end: datetime
    rows: int = 0
    status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUS_CLASSES, 0))
    features: dict[str, Histogram] = field(default_factory=dict)
    classes: dict[int, int] = field(default_factory=dict)
    categories: dict[str, dict[str, int]] = field(default_factory=dict)
    confidence: Histogram = field(default_factory=lambda: Histogram(CONFIDENCE_EDGES))

    @property
    def requests(self) -> int:
        return sum(self.status.values())

    def add(self, rollup: Rollup) -> None:
        self.rows += rollup.rows
        for status_class, count in rollup.status.items():
            self.status[status_class] += count
        for name, histogram in rollup.features.items():
            into = self.features.get(name)
            if into is None:
                self.features[name] = histogram.copy()
            elif into.edges == histogram.edges:
                into.merge(histogram)
            # else: the version's edges changed mid-window; the older minutes are left out
        for index, count in rollup.classes.items():
            self.classes[index] = self.classes.get(index, 0) + count
        for name, values in rollup.categories.items():
            tally = self.categories.setdefault(name, {})
            for value, count in values.items():
                tally[value] = tally.get(value, 0) + count
        self.confidence.merge(rollup.confidence)


def windows(
    rollups: Iterable[Rollup], *, start: datetime, end: datetime
) -> dict[tuple[str, str, str], Window]:
    """The rollups pooled per (tenant, model, version)."""
    out: dict[tuple[str, str, str], Window] = {}
    for rollup in sorted(rollups, key=lambda r: r.key):
        k = rollup.key
        window = out.get((k.tenant, k.model, k.version))
        if window is None:
            window = out[(k.tenant, k.model, k.version)] = Window(
                k.tenant, k.model, k.version, start, end
            )
        window.add(rollup)
    return out


def labelled_rows(conn: Connection, window: Window) -> tuple[int, int] | None:
    """(correct, labelled) rows among the window's logged predictions that have feedback."""
    p, f = predictions, feedback
    rows = conn.execute(
        select(p.c.predicted, f.c.row, f.c.label)
        .join(
            f,
            and_(
                f.c.tenant == p.c.tenant, f.c.model == p.c.model, f.c.request_id == p.c.request_id
            ),
        )
        .where(
            p.c.tenant == window.tenant,
            p.c.model == window.model,
            p.c.version == window.version,
            p.c.at >= window.start,
            p.c.at < window.end,
        )
    ).all()
    # As `review.accuracy` scores them: a row the request did not have, or a regressor's value,
    # has nothing to compare with. (Control-plane packages meet in the store, not in imports.)
    scored = [
        answered[row] == label
        for answered, row, label in rows
        if 0 <= row < len(answered) and isinstance(answered[row], str)
    ]
    return (sum(scored), len(scored)) if scored else None
