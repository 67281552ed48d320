"""Service level indicators: the share of good events an SLO measures, from per-minute counts.

Every indicator is `SLIValue(good, total)`, value = good / total, and 1.0 when there is nothing
to count (no evidence of failure). The functions are pure and take counts already restricted to
the period and stripped of maintenance minutes (`measured` does both).

Requests (from a minute's rollups, `counts_of`):

- valid requests = served requests minus client errors (4xx). Quota rejections ("rejected")
  were never served and are not counted at all.
- availability: good = valid - 5xx, of the valid requests. The gateway answers a timeout
  with a 5xx, so a timed-out request is bad.
- latency(t): good = valid requests answered within t seconds (latency <= t, whatever their
  status: a fast 5xx is bad for availability only), of the valid requests. t is one of the
  thresholds the rollups count exactly (config/sla.py, LATENCY_THRESHOLDS_S).

Minutes:

- uptime: of the counted minutes (the period's, less maintenance), a minute is down when its
  valid requests >= min_minute_requests and 5xx / valid > minute_error_rate; any other minute,
  including one with fewer valid requests or none, is up (no evidence it was down).
  uptime = up minutes / counted minutes.

Incidents:

- incident response: of the critical incidents affecting the tenant, good = first response
  (the earlier of acknowledgement and resolution) at most `respond_within` after detection.
  So an unacknowledged incident resolved in time is good, and one neither acknowledged nor
  resolved in time is bad. With `now`, an incident not yet answered whose deadline is still
  ahead is pending and left out. 1.0 with no incidents.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from modelfleet.config.sla import MaintenanceWindow, SLOSpec
from modelfleet.sla.periods import Period, excluded_minutes
from modelfleet.telemetry.rollup import Rollup

Incident = tuple[datetime, datetime | None, datetime | None]  # detected, acknowledged, resolved


@dataclass(frozen=True)
class SLIValue:
    """`good` of `total` events were good; `value` is their share (1.0 when total is 0)."""

    good: int
    total: int

    def __post_init__(self) -> None:
        if not 0 <= self.good <= self.total:
            raise ValueError(f"good events must lie in [0, total], got {self.good} of {self.total}")

    @property
    def bad(self) -> int:
        """Events that were not good."""
        return self.total - self.good

    @property
    def value(self) -> float:
        """good / total, in [0, 1]; 1.0 with nothing counted."""
        return self.good / self.total if self.total else 1.0


@dataclass(frozen=True)
class MinuteCounts:
    """What the SLOs need of one UTC minute: valid requests, their 5xx, and how many of them
    were answered within each latency threshold (seconds)."""

    minute: datetime
    valid: int
    errors: int
    within: Mapping[float, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 <= self.errors <= self.valid:
            raise ValueError(f"5xx must lie in [0, valid], got {self.errors} of {self.valid}")
        if not all(0 <= n <= self.valid for n in self.within.values()):
            raise ValueError(f"answers within a threshold must lie in [0, {self.valid}]")


def counts_of(rollup: Rollup) -> MinuteCounts:
    """The counts of one rollup's minute; ValueError for a shadow rollup (no client saw it)."""
    if rollup.key.shadow:
        raise ValueError(f"a shadow rollup never counts towards an SLA: {rollup.key}")
    status = rollup.status
    return MinuteCounts(
        minute=rollup.key.minute,
        valid=status["2xx"] + status["5xx"],
        errors=status["5xx"],
        within=dict(rollup.valid_under_threshold),
    )


def per_minute(counts: Iterable[MinuteCounts]) -> list[MinuteCounts]:
    """One `MinuteCounts` per minute, summing those of the same minute (models, regions,
    workers), sorted by minute. Counts of one minute must share their thresholds."""
    summed: dict[datetime, MinuteCounts] = {}
    for c in counts:
        into = summed.get(c.minute)
        if into is None:
            summed[c.minute] = c
            continue
        if set(into.within) != set(c.within):
            raise ValueError(f"counts of {c.minute.isoformat()} have different thresholds")
        summed[c.minute] = MinuteCounts(
            c.minute,
            into.valid + c.valid,
            into.errors + c.errors,
            {t: n + c.within[t] for t, n in into.within.items()},
        )
    return [summed[m] for m in sorted(summed)]


def measured(
    counts: Iterable[MinuteCounts], period: Period, windows: Iterable[MaintenanceWindow] = ()
) -> list[MinuteCounts]:
    """The counts of minutes inside `period` and outside every maintenance window."""
    skip = excluded_minutes(period, windows)
    start, end = period.start, period.end
    return [c for c in counts if start <= c.minute < end and c.minute not in skip]


def in_window(counts: Iterable[MinuteCounts], start: datetime, end: datetime) -> list[MinuteCounts]:
    """The counts of minutes in [start, end), e.g. a burn-rate alert's window."""
    return [c for c in counts if start <= c.minute < end]


def availability(minutes: Iterable[MinuteCounts]) -> SLIValue:
    """Valid requests answered without a 5xx, of all valid requests."""
    valid = errors = 0
    for c in minutes:
        valid += c.valid
        errors += c.errors
    return SLIValue(valid - errors, valid)


def latency(minutes: Iterable[MinuteCounts], threshold: float | timedelta) -> SLIValue:
    """Valid requests answered within `threshold` (seconds), of all valid requests."""
    seconds = threshold.total_seconds() if isinstance(threshold, timedelta) else threshold
    key = round(seconds, 6)
    valid = good = 0
    for c in minutes:
        if key not in c.within:
            raise ValueError(f"{c.minute.isoformat()} has no count within {key:g}s")
        valid += c.valid
        good += c.within[key]
    return SLIValue(good, valid)


def down(c: MinuteCounts, slo: SLOSpec) -> bool:
    """Whether an uptime SLO counts minute `c` as down."""
    return c.valid >= slo.min_minute_requests and c.errors / c.valid > slo.minute_error_rate


def uptime(minutes: Sequence[MinuteCounts], slo: SLOSpec, counted_minutes: int) -> SLIValue:
    """Up minutes of the `counted_minutes` measured; `minutes` holds one count per minute with
    traffic (see `per_minute`), and a minute without counts is up."""
    seen = {c.minute for c in minutes}
    if len(seen) != len(minutes):
        raise ValueError("uptime judges whole minutes: sum each minute's counts first")
    if len(seen) > counted_minutes:
        raise ValueError(f"{len(seen)} minutes of counts, but only {counted_minutes} counted")
    downs = sum(down(c, slo) for c in minutes)
    return SLIValue(counted_minutes - downs, counted_minutes)


def incident_response(
    incidents: Sequence[Incident], within: timedelta, *, now: datetime | None = None
) -> SLIValue:
    """Incidents first answered (acknowledged or resolved) within `within` of detection."""
    good = total = 0
    for detected, acknowledged, resolved in incidents:
        deadline = detected + within
        answers = [t for t in (acknowledged, resolved) if t is not None]
        answered = min(answers) if answers else None
        if answered is None and now is not None and now < deadline:
            continue  # still pending: neither good nor bad yet
        total += 1
        good += answered is not None and answered <= deadline
    return SLIValue(good, total)


def measure(slo: SLOSpec, minutes: Sequence[MinuteCounts], counted_minutes: int) -> SLIValue:
    """The SLI of a rollup-based SLO (availability, latency, uptime) over `minutes`."""
    if slo.type == "availability":
        return availability(minutes)
    if slo.type == "latency" and slo.threshold is not None:
        return latency(minutes, slo.threshold)
    if slo.type == "uptime":
        return uptime(minutes, slo, counted_minutes)
    raise ValueError(f"SLO {slo.name!r} ({slo.type}) is not measured from rollups")
