"""Per-minute rollups of the gateway's requests, and the buffer one gateway worker fills.

A `Rollup` summarises one (tenant, model, version, region, minute): requests by status class,
a latency sketch, exact counts under each SLO latency threshold, a confidence histogram, and one
histogram per input feature on the version's reference edges. Every part is a count or a sum, so
rollups merge by addition: the rollups of any number of workers, gateways and regions combine
into exactly the rollup of all their requests, and the store grows with minutes, not requests.

A `RollupBuffer` is what one worker keeps in memory between flushes. Time is always passed in;
nothing here reads the clock, the store or the network.

Invariants of a rollup:

- requests == sum(status.values()); "rejected" counts quota rejections, which never reached a
  model, and the other classes count served requests by HTTP status class.
- latency.count == requests - status["rejected"], and under_threshold[t] <= latency.count.
- valid_under_threshold[t] counts the valid requests (served, not 4xx) answered within t, what
  a latency SLO counts as good: valid_under_threshold[t] <= under_threshold[t] and
  valid_under_threshold[t] <= latency.count - status["4xx"]. A rollup stored before this count
  existed reads it as min(under_threshold[t], latency.count - status["4xx"]): the best figure
  left, which counts a client error answered within t as a valid one for as long as the served
  requests allow (an over-estimate by at most the fast 4xx of that minute).
- Each feature histogram's total is the rows of the requests recorded with features: a feature
  absent from a request's features counts as missing for each of its rows.
- A shadow rollup (`key.shadow`) counts the requests mirrored to a candidate version, whose
  answers no client saw; `agreed <= compared` counts those whose prediction matched the
  answer the client got, row by row. Shadow rollups never enter a tenant's own figures.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt

from modelfleet.stats import Histogram, LatencySketch

STATUS_CLASSES = ("2xx", "4xx", "5xx", "rejected")
# Distinct values counted per categorical column and rollup; later ones count as OTHER, so a
# column of ids cannot blow a rollup up. Merging stays exact: it adds counts.
MAX_CATEGORIES = 100
OTHER = "__other__"
DEFAULT_THRESHOLDS_S = (0.1, 0.25, 0.5, 1.0)
CONFIDENCE_EDGES = tuple(i / 10 for i in range(11))  # i / 10 is the double nearest to 0.i

_STATUS_CLASS = {2: "2xx", 4: "4xx", 5: "5xx"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE = timedelta(minutes=1)
# tenant, model, version, region, minutes since epoch, shadow
_Slot = tuple[str, str, str, str, int, bool]

Values = Sequence[float] | npt.NDArray[Any]
EdgesFor = Callable[[str, str], Mapping[str, Sequence[float]]]


@dataclass(frozen=True, order=True)
class RollupKey:
    """What a rollup summarises: one tenant's traffic to one model version in one region and minute."""

    tenant: str
    model: str
    version: str
    region: str
    minute: datetime  # timezone-aware UTC, truncated to the minute
    shadow: bool = False  # mirrored requests, whose answers no client saw

    def __post_init__(self) -> None:
        m = self.minute
        if m.utcoffset() != timedelta(0) or m.second or m.microsecond:
            raise ValueError(f"a rollup's minute must be UTC and whole, got {m.isoformat()}")

    @classmethod
    def at(
        cls,
        tenant: str,
        model: str,
        version: str,
        region: str,
        now: datetime,
        *,
        shadow: bool = False,
    ) -> RollupKey:
        """The key of the minute holding `now` (timezone-aware, any zone)."""
        minute = _EPOCH + _minute_number(now) * _MINUTE
        return cls(tenant, model, version, region, minute, shadow)


class Rollup:
    """Counts and sketches of one key's requests; records one request at a time, merges by addition.

    A rollup takes no lock of its own: `RollupBuffer` serialises the threads that record into it.
    """

    __slots__ = (
        "agreed",
        "categories",
        "classes",
        "compared",
        "confidence",
        "features",
        "key",
        "latency",
        "rows",
        "status",
        "thresholds",
        "under_threshold",
        "valid_under_threshold",
    )

    def __init__(
        self,
        key: RollupKey,
        *,
        thresholds: Sequence[float] = DEFAULT_THRESHOLDS_S,
        feature_edges: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        self.key = key
        self.thresholds = _checked_thresholds(thresholds)
        self.status = dict.fromkeys(STATUS_CLASSES, 0)
        self.rows = 0
        self.latency = LatencySketch()
        self.under_threshold = dict.fromkeys(self.thresholds, 0)
        self.valid_under_threshold = dict.fromkeys(self.thresholds, 0)  # not 4xx
        self.confidence = Histogram(CONFIDENCE_EDGES)
        self.features = {name: Histogram(edges) for name, edges in (feature_edges or {}).items()}
        self.compared = 0
        self.agreed = 0
        self.classes: dict[int, int] = {}  # predicted class index -> rows (classifiers)
        self.categories: dict[str, dict[str, int]] = {}  # string column -> value -> rows

    @property
    def requests(self) -> int:
        """Every request recorded, rejected ones included."""
        return sum(self.status.values())

    def record(
        self,
        status: int,
        latency_s: float,
        confidences: Values | None = None,
        features: Mapping[str, Values] | None = None,
        *,
        rows: int = 1,
        classes: Values | None = None,
        categories: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """Count one served request of `rows` rows: one confidence, one predicted class (for a
        classifier) and one value per feature (numeric or categorical) per row.

        Features without reference edges are not tracked. A request refused here (bad status,
        latency or lengths) raises ValueError and changes nothing.
        """
        status_class = _STATUS_CLASS.get(status // 100)
        if status_class is None:
            raise ValueError(f"a served request's status must be 2xx, 4xx or 5xx, got {status}")
        if rows < 1:
            raise ValueError(f"a request carries at least one row, got {rows}")
        if confidences is not None and len(confidences) != rows:
            raise ValueError(f"expected {rows} confidences, one per row, got {len(confidences)}")
        if classes is not None and len(classes) != rows:
            raise ValueError(f"expected {rows} predicted classes, one per row, got {len(classes)}")
        for given in (features, categories):
            for name, values in (given or {}).items():
                if len(values) != rows:
                    raise ValueError(f"expected {rows} values of {name!r}, got {len(values)}")
        self.latency.add(latency_s)  # refuses a negative or non-finite latency before any count
        self.status[status_class] += 1
        self.rows += rows
        valid = status_class != "4xx"
        for threshold in self.thresholds:
            if latency_s <= threshold:
                self.under_threshold[threshold] += 1
                if valid:
                    self.valid_under_threshold[threshold] += 1
        if confidences is not None:
            if rows == 1:  # the common one-row request, without add_many's generality
                self.confidence.add(float(confidences[0]))
            else:
                self.confidence.add_many(confidences)
        if classes is not None:
            tally = self.classes
            for index in np.asarray(classes).tolist():
                tally[index] = tally.get(index, 0) + 1
        if categories is not None:
            for name, values in categories.items():
                seen = self.categories.setdefault(name, {})
                for value in values:
                    if value not in seen and len(seen) >= MAX_CATEGORIES:
                        value = OTHER
                    seen[value] = seen.get(value, 0) + 1
        if features is not None:
            for name, histogram in self.features.items():
                column = features.get(name)
                if column is None:
                    histogram.add(None, rows)
                else:
                    histogram.add_many(column)

    def record_agreement(self, compared: int, agreed: int) -> None:
        """Count `compared` shadowed rows, of which `agreed` got the same prediction as served."""
        if not 0 <= agreed <= compared:
            raise ValueError(f"agreed rows must lie in [0, compared], got {agreed} of {compared}")
        self.compared += compared
        self.agreed += agreed

    def record_rejection(self) -> None:
        """Count one request refused by its tenant's quota before it reached a model."""
        self.status["rejected"] += 1

    def merge(self, other: Rollup) -> None:
        """Add `other` into this rollup: same key, thresholds, features and edges, or ValueError."""
        if other.key != self.key:
            raise ValueError(f"cannot merge rollups of different keys: {self.key} and {other.key}")
        if other.thresholds != self.thresholds:
            raise ValueError(
                f"cannot merge rollups with different thresholds: {self.thresholds} and {other.thresholds}"
            )
        if _edges(other) != _edges(self):
            raise ValueError(f"cannot merge rollups of {self.key} with different features or edges")
        self.latency.merge(other.latency)  # the only part left that can refuse: check it first
        for status_class, count in other.status.items():
            self.status[status_class] += count
        self.rows += other.rows
        for threshold, count in other.under_threshold.items():
            self.under_threshold[threshold] += count
        for threshold, count in other.valid_under_threshold.items():
            self.valid_under_threshold[threshold] += count
        self.confidence.merge(other.confidence)
        for name, histogram in other.features.items():
            self.features[name].merge(histogram)
        self.compared += other.compared
        self.agreed += other.agreed
        for index, count in other.classes.items():
            self.classes[index] = self.classes.get(index, 0) + count
        for name, values in other.categories.items():
            into = self.categories.setdefault(name, {})
            for value, count in values.items():
                into[value] = into.get(value, 0) + count

    def copy(self) -> Rollup:
        """An independent rollup with the same counts."""
        twin = Rollup(
            self.key,
            thresholds=self.thresholds,
            feature_edges={name: h.edges for name, h in self.features.items()},
        )
        twin.merge(self)
        return twin

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, for the store."""
        return {
            "tenant": self.key.tenant,
            "model": self.key.model,
            "version": self.key.version,
            "region": self.key.region,
            "minute": self.key.minute.isoformat(),
            "shadow": self.key.shadow,
            "status": dict(self.status),
            "rows": self.rows,
            "latency": self.latency.to_dict(),
            "thresholds": list(self.thresholds),
            "under_threshold": [self.under_threshold[t] for t in self.thresholds],
            "valid_under_threshold": [self.valid_under_threshold[t] for t in self.thresholds],
            "confidence": self.confidence.to_dict(),
            "features": {name: self.features[name].to_dict() for name in sorted(self.features)},
            "compared": self.compared,
            "agreed": self.agreed,
            "classes": {str(i): self.classes[i] for i in sorted(self.classes)},
            "categories": {n: dict(sorted(v.items())) for n, v in sorted(self.categories.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rollup:
        """The rollup that `to_dict` wrote; ValueError if `data` is not such a dict."""
        try:
            key = RollupKey(
                str(data["tenant"]),
                str(data["model"]),
                str(data["version"]),
                str(data["region"]),
                datetime.fromisoformat(data["minute"]),
                bool(data.get("shadow", False)),  # rollups written before shadows existed
            )
            features = {str(n): Histogram.from_dict(h) for n, h in data["features"].items()}
            rollup = cls(
                key,
                thresholds=data["thresholds"],
                feature_edges={name: h.edges for name, h in features.items()},
            )
            status, under = dict(data["status"]), list(data["under_threshold"])
            stored_valid = data.get("valid_under_threshold")  # absent: written before it existed
            valid_under = None if stored_valid is None else list(stored_valid)
            rows = data["rows"]
            latency = LatencySketch.from_dict(data["latency"])
            confidence = Histogram.from_dict(data["confidence"])
            compared, agreed = data.get("compared", 0), data.get("agreed", 0)
            classes = {int(i): n for i, n in data.get("classes", {}).items()}
            categories = {
                str(name): {str(v): n for v, n in values.items()}
                for name, values in data.get("categories", {}).items()
            }
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a rollup: {exc}") from exc
        counts = [rows, *status.values(), *under, compared, agreed, *classes.values()]
        counts += [n for values in categories.values() for n in values.values()]
        counts += valid_under or []
        if set(status) != set(STATUS_CLASSES) or len(under) != len(rollup.thresholds):
            raise ValueError("not a rollup: status classes or threshold counts do not match")
        if valid_under is not None and len(valid_under) != len(rollup.thresholds):
            raise ValueError("not a rollup: valid threshold counts do not match the thresholds")
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts):
            raise ValueError("not a rollup: counts must be integers >= 0")
        valid = latency.count - status["4xx"]
        if valid < 0:
            raise ValueError("not a rollup: more client errors than served requests")
        if valid_under is None:
            valid_under = [min(n, valid) for n in under]
        if any(v > min(n, valid) for v, n in zip(valid_under, under, strict=True)):
            raise ValueError("not a rollup: more valid requests within a threshold than served")
        rollup.status = {c: status[c] for c in STATUS_CLASSES}
        rollup.rows = rows
        rollup.latency = latency
        rollup.under_threshold = dict(zip(rollup.thresholds, under, strict=True))
        rollup.valid_under_threshold = dict(zip(rollup.thresholds, valid_under, strict=True))
        rollup.confidence = confidence
        rollup.features = features
        if agreed > compared:
            raise ValueError("not a rollup: more rows agreed than were compared")
        rollup.compared, rollup.agreed = compared, agreed
        rollup.classes = classes
        rollup.categories = categories
        return rollup

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Rollup):
            return NotImplemented
        return (
            self.key == other.key
            and self.thresholds == other.thresholds
            and self.status == other.status
            and self.rows == other.rows
            and self.under_threshold == other.under_threshold
            and self.valid_under_threshold == other.valid_under_threshold
            and self.latency == other.latency
            and self.confidence == other.confidence
            and self.features == other.features
            and self.compared == other.compared
            and self.agreed == other.agreed
            and self.classes == other.classes
            and self.categories == other.categories
        )

    def __repr__(self) -> str:
        return f"Rollup({self.key}, requests={self.requests}, rows={self.rows})"


def no_features(model: str, version: str) -> Mapping[str, Sequence[float]]:
    """Reference edges for a version without a reference profile: none, so no feature histograms."""
    return {}


class RollupBuffer:
    """The rollups one gateway worker fills between flushes; safe to record from several threads.

    `edges_for(model, version)` gives a version's reference bin edges per feature (empty for a
    version without a profile). It is called once per new rollup, under the buffer's lock, so it
    must be a cheap in-memory lookup that never calls back into the buffer.
    """

    def __init__(
        self,
        edges_for: EdgesFor = no_features,
        *,
        thresholds: Sequence[float] = DEFAULT_THRESHOLDS_S,
    ) -> None:
        self.edges_for = edges_for
        self.thresholds = _checked_thresholds(thresholds)
        # Keyed by plain tuples with the minute as a number: building a RollupKey per request
        # would cost more than recording it.
        self._rollups: dict[_Slot, Rollup] = {}
        self._lock = threading.Lock()
        self._current = (_EPOCH, _EPOCH, 0)  # the minute last recorded into: start, end, number

    def record(
        self,
        tenant: str,
        model: str,
        version: str,
        region: str,
        now: datetime,
        status: int,
        latency_s: float,
        confidences: Values | None = None,
        features: Mapping[str, Values] | None = None,
        *,
        rows: int = 1,
        classes: Values | None = None,
        categories: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """Count a request served at `now` in its minute's rollup (see `Rollup.record`)."""
        with self._lock:
            slot = (tenant, model, version, region, self._minute(now), False)
            rollup = self._rollups.get(slot) or self._new(slot)
            rollup.record(
                status,
                latency_s,
                confidences,
                features,
                rows=rows,
                classes=classes,
                categories=categories,
            )
            self._rollups[slot] = rollup  # only once recorded: a refused request leaves no trace

    def record_shadow(
        self,
        tenant: str,
        model: str,
        version: str,
        region: str,
        now: datetime,
        status: int,
        latency_s: float,
        confidences: Values | None = None,
        *,
        rows: int = 1,
        agreed: int | None = None,
    ) -> None:
        """Count a request mirrored to candidate `version`: in a shadow rollup of its own, with
        `agreed` of its rows predicted as the client was answered (None: not compared)."""
        if agreed is not None and not 0 <= agreed <= rows:
            raise ValueError(f"agreed rows must lie in [0, {rows}], got {agreed}")
        with self._lock:
            slot = (tenant, model, version, region, _minute_number(now), True)
            rollup = self._rollups.get(slot) or self._new(slot)
            rollup.record(status, latency_s, confidences, rows=rows)
            if agreed is not None:
                rollup.record_agreement(rows, agreed)
            self._rollups[slot] = rollup

    def record_rejection(
        self, tenant: str, model: str, version: str, region: str, now: datetime
    ) -> None:
        """Count a quota rejection at `now`, for the version the request was routed to."""
        slot = (tenant, model, version, region, _minute_number(now), False)
        with self._lock:
            rollup = self._rollups.get(slot) or self._new(slot)
            rollup.record_rejection()
            self._rollups[slot] = rollup

    def _minute(self, now: datetime) -> int:
        """`_minute_number(now)`, remembered for the rest of its minute: called per request."""
        if now.tzinfo is None:
            raise ValueError(f"rollup times must be timezone-aware, got {now.isoformat()}")
        start, end, number = self._current
        if not start <= now < end:
            number = _minute_number(now)
            start = _EPOCH + number * _MINUTE
            self._current = (start, start + _MINUTE, number)
        return number

    def drain(self) -> list[Rollup]:
        """Every rollup recorded since the last drain, sorted by key; the buffer is left empty."""
        with self._lock:
            rollups, self._rollups = self._rollups, {}
        return sorted(rollups.values(), key=lambda r: r.key)

    def _new(self, slot: _Slot) -> Rollup:
        tenant, model, version, region, minute, shadow = slot
        key = RollupKey(tenant, model, version, region, _EPOCH + minute * _MINUTE, shadow)
        return Rollup(key, thresholds=self.thresholds, feature_edges=self.edges_for(model, version))


def merge_all(rollups: Iterable[Rollup]) -> dict[RollupKey, Rollup]:
    """Combine rollups from any number of workers into one per key; the inputs are not changed."""
    merged: dict[RollupKey, Rollup] = {}
    for rollup in rollups:
        into = merged.get(rollup.key)
        if into is None:
            merged[rollup.key] = rollup.copy()
        else:
            into.merge(rollup)
    return merged


def pooled(rollups: Iterable[Rollup]) -> Rollup | None:
    """One rollup of every request in `rollups`, whatever their tenants, regions and minutes:
    what a canary analysis compares. Feature histograms are left out (their edges may differ
    between minutes); None when there are no rollups."""
    items = list(rollups)
    if not items:
        return None
    first = items[0]
    out = Rollup(replace(first.key, tenant="*", region="*"), thresholds=first.thresholds)
    for rollup in items:
        out.latency.merge(rollup.latency)
        for status_class, count in rollup.status.items():
            out.status[status_class] += count
        out.rows += rollup.rows
        if rollup.thresholds == out.thresholds:
            for threshold, count in rollup.under_threshold.items():
                out.under_threshold[threshold] += count
            for threshold, count in rollup.valid_under_threshold.items():
                out.valid_under_threshold[threshold] += count
        out.confidence.merge(rollup.confidence)
        out.compared += rollup.compared
        out.agreed += rollup.agreed
        for index, count in rollup.classes.items():
            out.classes[index] = out.classes.get(index, 0) + count
    return out


def _minute_number(now: datetime) -> int:
    """Whole minutes from the Unix epoch to `now`, exactly (timedelta arithmetic is integral)."""
    if now.tzinfo is None:
        raise ValueError(f"rollup times must be timezone-aware, got {now.isoformat()}")
    return (now - _EPOCH) // _MINUTE


def _checked_thresholds(thresholds: Sequence[float]) -> tuple[float, ...]:
    checked = tuple(float(t) for t in thresholds)
    if not all(0.0 < t < math.inf for t in checked) or any(a >= b for a, b in pairwise(checked)):
        raise ValueError(
            f"SLO latency thresholds must be increasing positive seconds, got {thresholds}"
        )
    return checked


def _edges(rollup: Rollup) -> tuple[tuple[float, ...], dict[str, tuple[float, ...]]]:
    return rollup.confidence.edges, {name: h.edges for name, h in rollup.features.items()}
