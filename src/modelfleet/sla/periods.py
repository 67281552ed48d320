"""SLA periods and maintenance windows: which minutes a contract measures.

A period is a calendar month in the SLA's time zone: from local midnight of its first day to
local midnight of the next month's first day, both as UTC instants. Its length follows the
zone's clock changes: Europe/Berlin's October 2026 runs from 2026-09-30T22:00Z to
2026-10-31T23:00Z, 31 days and one hour (44,700 minutes). A local midnight that a clock change
skips starts the day at the change itself (zoneinfo's fold=0 reading).

Maintenance windows are declared ahead and removed from every rollup-based SLO. A window's naive
times are wall-clock times in the SLA's zone (an ambiguous time reads as its first occurrence,
fold=0); aware times are taken as they are. A minute is excluded when any part of it, the
half-open [minute, minute + 1 min), overlaps a window [start, end): a rollup cannot tell the
requests of a minute apart, so a minute touched by maintenance is not measured at all.

Nothing here reads the clock: the instant is always passed in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from modelfleet.config.sla import MaintenanceWindow

MINUTE = timedelta(minutes=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")

Interval = tuple[datetime, datetime]  # [start, end), timezone-aware UTC


def period_bounds(year: int, month: int, time_zone: str) -> Interval:
    """The UTC instants of local midnight on the first of `month` and of the month after."""
    if not 1 <= month <= 12:
        raise ValueError(f"a month is 1 to 12, got {month}")
    zone = ZoneInfo(time_zone)
    after = (year + 1, 1) if month == 12 else (year, month + 1)
    start = datetime(year, month, 1, tzinfo=zone).astimezone(UTC)
    end = datetime(*after, 1, tzinfo=zone).astimezone(UTC)
    return start, end


@dataclass(frozen=True, order=True)
class Period:
    """One calendar month of an SLA, in its time zone."""

    year: int
    month: int
    time_zone: str = "UTC"

    def __post_init__(self) -> None:
        period_bounds(self.year, self.month, self.time_zone)  # refuses a bad month or zone

    @property
    def start(self) -> datetime:
        """Local midnight of the month's first day, in UTC."""
        return period_bounds(self.year, self.month, self.time_zone)[0]

    @property
    def end(self) -> datetime:
        """Local midnight of the next month's first day, in UTC (not part of the period)."""
        return period_bounds(self.year, self.month, self.time_zone)[1]

    @property
    def minutes(self) -> int:
        """Whole minutes in the period (every zone's offset is whole minutes since 1972)."""
        start, end = period_bounds(self.year, self.month, self.time_zone)
        return (end - start) // MINUTE

    def __contains__(self, at: object) -> bool:
        if not isinstance(at, datetime):
            return False
        return self.start <= _aware(at) < self.end

    def elapsed(self, now: datetime) -> float:
        """The share of the period gone by at `now`: 0 before it starts, 1 after it ends."""
        start, end = period_bounds(self.year, self.month, self.time_zone)
        gone = min(max(_aware(now), start), end) - start
        return gone / (end - start)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def period_of(at: datetime, time_zone: str) -> Period:
    """The period holding the instant `at` (timezone-aware), in `time_zone`'s calendar."""
    local = _aware(at).astimezone(ZoneInfo(time_zone))
    return Period(local.year, local.month, time_zone)


def parse_period(text: str, time_zone: str) -> Period:
    """The period written "YYYY-MM", e.g. "2026-11"; ValueError otherwise."""
    match = _PERIOD.match(text.strip())
    if match is None:
        raise ValueError(f"a period is written YYYY-MM, e.g. 2026-11, got {text!r}")
    return Period(int(match[1]), int(match[2]), time_zone)


def maintenance_intervals(
    windows: Iterable[MaintenanceWindow], time_zone: str
) -> tuple[Interval, ...]:
    """The windows as UTC intervals, sorted, with overlapping or touching ones merged."""
    zone = ZoneInfo(time_zone)
    converted = ((_in_zone(w.start, zone), _in_zone(w.end, zone)) for w in windows)
    spans = sorted((start, end) for start, end in converted if start < end)
    merged: list[Interval] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


def excluded(minute: datetime, windows: Iterable[MaintenanceWindow], time_zone: str) -> bool:
    """Whether the minute starting at `minute` overlaps a maintenance window."""
    start = _aware(minute)
    return _overlaps(start, start + MINUTE, maintenance_intervals(windows, time_zone))


def excluded_minutes(period: Period, windows: Iterable[MaintenanceWindow]) -> frozenset[datetime]:
    """The UTC minutes of `period` that overlap a maintenance window (in the period's zone)."""
    start, end = period.start, period.end
    out: set[datetime] = set()
    for low, high in maintenance_intervals(windows, period.time_zone):
        low, high = max(low, start), min(high, end)
        if low >= high:
            continue
        first = _floor_minute(low)
        last = _floor_minute(high - timedelta(microseconds=1))
        out.update(first + i * MINUTE for i in range((last - first) // MINUTE + 1))
    return frozenset(out)


def counted_minutes(period: Period, windows: Iterable[MaintenanceWindow]) -> int:
    """The minutes of `period` an SLO measures: all of them but those under maintenance."""
    return period.minutes - len(excluded_minutes(period, windows))


def _overlaps(start: datetime, end: datetime, intervals: Sequence[Interval]) -> bool:
    return any(low < end and start < high for low, high in intervals)


def _floor_minute(at: datetime) -> datetime:
    return _EPOCH + ((at - _EPOCH) // MINUTE) * MINUTE


def _in_zone(at: datetime, zone: ZoneInfo) -> datetime:
    local = at.replace(tzinfo=zone) if at.tzinfo is None else at
    return local.astimezone(UTC)


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError(f"SLA instants must be timezone-aware, got {at.isoformat()}")
    return at.astimezone(UTC)
