"""A whole month measured by hand: Europe/Berlin, October 2026, the month summer time ends.

Every minute gets 100 valid requests from real rollups, in a few known patterns; the expected
values are counted here with integers, pattern by pattern.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from modelfleet.config.sla import CreditTier, MaintenanceWindow, SLASpec, SLOSpec
from modelfleet.sla import (
    MinuteCounts,
    Period,
    SLIValue,
    availability,
    budget_left,
    burn_rate,
    counted_minutes,
    counts_of,
    credit_amount,
    credit_share,
    latency,
    measure,
    measured,
    per_minute,
    uptime,
)
from modelfleet.telemetry import Rollup, RollupKey

BERLIN = ZoneInfo("Europe/Berlin")
PERIOD = Period(2026, 10, "Europe/Berlin")
MIN = timedelta(minutes=1)
MAINTENANCE = [
    MaintenanceWindow(
        start=datetime(2026, 10, 20, 2), end=datetime(2026, 10, 20, 4), reason="database upgrade"
    )
]
SPEC = SLASpec(
    tenants=["acme"],
    time_zone="Europe/Berlin",
    monthly_fee=2000.0,
    slos=[
        SLOSpec(name="availability", type="availability", objective=0.999),
        SLOSpec(
            name="latency",
            type="latency",
            objective=0.999,
            threshold=timedelta(milliseconds=500),
        ),
        SLOSpec(
            name="uptime",
            type="uptime",
            objective=0.999,
            minute_error_rate=0.05,
            min_minute_requests=10,
        ),
    ],
    credits=[
        CreditTier(slo="availability", below=0.999, credit=0.1),
        CreditTier(slo="availability", below=0.99, credit=0.25),
        CreditTier(slo="latency", below=0.9995, credit=0.1),
        CreditTier(slo="latency", below=0.99, credit=0.25),
        CreditTier(slo="uptime", below=0.999, credit=0.1),
        CreditTier(slo="uptime", below=0.998, credit=0.3),
    ],
    credit_cap=0.35,
    maintenance=MAINTENANCE,
)


def minute_of(requests: list[tuple[int, int, float]], rejections: int = 0) -> MinuteCounts:
    """The counts of a rollup of (how many, status, latency) requests and quota rejections."""
    rollup = Rollup(RollupKey("acme", "churn", "v3", "eu-west", PERIOD.start))
    for n, status, latency_s in requests:
        for _ in range(n):
            rollup.record(status, latency_s)
    for _ in range(rejections):
        rollup.record_rejection()
    return counts_of(rollup)


NORMAL = minute_of([(100, 200, 0.05)])
PATTERNS = {
    # local start, minutes: the minute's requests
    "outage": (datetime(2026, 10, 10, 14), 30, minute_of([(100, 504, 30.0)])),
    "maintenance": (datetime(2026, 10, 20, 2), 120, minute_of([(100, 503, 0.01)])),
    "client errors": (datetime(2026, 10, 5, 9), 60, minute_of([(100, 200, 0.05), (50, 404, 2.0)])),
    "quota": (datetime(2026, 10, 6, 12), 60, minute_of([(100, 200, 0.05)], rejections=300)),
    "slow": (datetime(2026, 10, 15, 10), 60, minute_of([(80, 200, 0.05), (20, 200, 0.8)])),
    "5 % errors": (datetime(2026, 10, 16, 10), 60, minute_of([(95, 200, 0.05), (5, 500, 0.05)])),
    "6 % errors": (datetime(2026, 10, 17, 10), 60, minute_of([(94, 200, 0.05), (6, 500, 0.05)])),
    "quiet": (datetime(2026, 10, 18, 3), 10, minute_of([(1, 200, 0.05), (1, 500, 0.05)])),
    # the hour summer time repeats: local 02:00 to 03:00 twice, 120 normal minutes
    "repeated hour": (datetime(2026, 10, 25, 2), 120, NORMAL),
}


def month() -> list[MinuteCounts]:
    pattern: dict[datetime, MinuteCounts] = {}
    for start, length, counts in PATTERNS.values():
        first = start.replace(tzinfo=BERLIN).astimezone(UTC)
        pattern.update({first + i * MIN: counts for i in range(length)})
    return [
        replace(pattern.get(m, NORMAL), minute=m)
        for m in (PERIOD.start + i * MIN for i in range(PERIOD.minutes))
    ]


def test_the_patterns_count_valid_requests_as_the_contract_says() -> None:
    assert (NORMAL.valid, NORMAL.errors, NORMAL.within[0.5]) == (100, 0, 100)
    assert PATTERNS["client errors"][2] == replace(
        NORMAL, within={0.1: 100, 0.25: 100, 0.5: 100, 1.0: 100}
    )
    assert PATTERNS["quota"][2] == NORMAL
    assert PATTERNS["outage"][2].within[0.5] == 0


def test_a_berlin_october_with_an_outage_slow_hour_and_maintenance_measures_exactly() -> None:
    minutes = measured(per_minute(month()), PERIOD, SPEC.maintenance)
    counted = counted_minutes(PERIOD, SPEC.maintenance)

    all_minutes = 31 * 1440 + 60  # October 25 has 25 hours
    assert PERIOD.minutes == all_minutes
    assert counted == len(minutes) == all_minutes - 120
    busy = counted - 10  # every counted minute has 100 valid requests, but the 10 quiet ones
    valid = busy * 100 + 10 * 2  # 4xx and quota rejections are not valid
    errors = 30 * 100 + 60 * 5 + 60 * 6 + 10 * 1  # the maintenance's 100 % 5xx do not count
    slow = 30 * 100 + 60 * 20  # timeouts of the outage, 20 % over 500 ms in the slow hour
    down = 30 + 60  # the outage and the 6 % hour; 5 % is not over the rate, quiet is too quiet

    assert availability(minutes) == SLIValue(valid - errors, valid)
    assert latency(minutes, 0.5) == SLIValue(valid - slow, valid)
    assert uptime(minutes, SPEC.slos[2], counted) == SLIValue(counted - down, counted)
    assert valid == 4_457_020 and errors == 3_670 and slow == 4_200 and counted == 44_580

    values = {slo.name: measure(slo, minutes, counted).value for slo in SPEC.slos}
    # availability 0.99918 (not below 0.999), latency 0.99906 (< 0.9995: 0.1),
    # uptime 0.99798 (< 0.998: 0.3); 0.4 capped at 0.35
    assert values["availability"] == (valid - errors) / valid
    assert budget_left(values["availability"], 0.999) == pytest.approx(1 - (errors / valid) / 0.001)
    assert budget_left(values["uptime"], 0.999) == pytest.approx(1 - (down / counted) / 0.001)
    assert budget_left(values["uptime"], 0.999) < 0  # overspent
    assert burn_rate(errors, valid, 0.999) == pytest.approx(errors / valid / 0.001)
    share, reasons = credit_share(SPEC, values)
    assert share == 0.35
    assert [r.split(" ")[0] for r in reasons] == ["latency", "uptime", "credits"]
    assert credit_amount(SPEC, values) == 700.0
