"""Error budgets, burn rates and the workbook's multiwindow alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelfleet.config.sla import SLASpec, SLOSpec
from modelfleet.sla import (
    MinuteCounts,
    SLIValue,
    availability,
    budget_left,
    burn_rate,
    burning,
    firing,
    in_window,
    projected,
)

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
MIN = timedelta(minutes=1)
OBJECTIVE = 0.999
ALERTS = SLASpec(
    tenants=["acme"],
    monthly_fee=1000.0,
    slos=[SLOSpec(name="availability", type="availability", objective=OBJECTIVE)],
).burn_alerts  # the workbook's defaults: 14.4 over 1h/5m, 6 over 6h/30m, 1 over 3d/6h


def traffic(
    errors_at: list[tuple[timedelta, int]], *, per_minute: int = 10_000
) -> list[MinuteCounts]:
    """Three days of minutes before NOW; `errors_at` gives (age, errors a minute) from the
    newest minute back, each span starting where the previous ended; the rest are clean."""
    minutes: list[MinuteCounts] = []
    spans = iter(errors_at)
    span_end, rate = timedelta(0), 0
    for age in range(1, 3 * 1440 + 1):
        while age * MIN > span_end:
            length, rate = next(spans, (timedelta(days=9), 0))
            span_end += length
        minutes.append(MinuteCounts(NOW - age * MIN, per_minute, rate))
    return minutes


def fired(minutes: list[MinuteCounts]) -> list[str]:
    alerts = firing(ALERTS, lambda s, e: availability(in_window(minutes, s, e)), NOW, OBJECTIVE)
    return [f"{a.rate:g}/{a.severity}" for a in alerts]


def test_spending_2_percent_of_a_30_day_budget_in_an_hour_burns_at_14_4_and_pages() -> None:
    # 2 % of 30 days' budget in 1 h: 0.02 * 720 h = 14.4 times the allowed 0.1 % of errors
    minutes = traffic([(timedelta(hours=1), 144)])
    assert burn_rate(144 * 60, 10_000 * 60, OBJECTIVE) == pytest.approx(14.4)
    assert fired(minutes) == ["14.4/critical"]


def test_a_slow_burn_over_three_days_only_opens_a_ticket() -> None:
    minutes = traffic([(timedelta(days=3), 15)])  # 0.15 % errors: burn 1.5
    assert burn_rate(15, 10_000, OBJECTIVE) == pytest.approx(1.5)
    assert fired(minutes) == ["1/warning"]


def test_a_burn_under_one_fires_nothing() -> None:
    assert fired(traffic([(timedelta(days=3), 5)])) == []


def test_an_alert_needs_its_short_window_to_burn_too() -> None:
    # an hour at 14.4 that stopped 10 minutes ago: the 5-minute window is clean
    minutes = traffic([(timedelta(minutes=10), 0), (timedelta(hours=1), 144)])
    assert "14.4/critical" not in fired(minutes)


def test_no_traffic_is_not_burning() -> None:
    assert not burning(ALERTS[0], SLIValue(0, 0), SLIValue(0, 0), OBJECTIVE)
    assert burn_rate(0, 0, OBJECTIVE) == 0.0


def test_the_budget_left_is_one_untouched_zero_spent_and_negative_overspent() -> None:
    assert budget_left(1.0, OBJECTIVE) == 1.0
    assert budget_left(0.998, OBJECTIVE) == pytest.approx(-1.0)
    assert budget_left(0.9995, OBJECTIVE) == pytest.approx(0.5)


@given(st.floats(min_value=1e-6, max_value=1 - 1e-6))
def test_the_budget_left_is_exactly_zero_at_the_objective(objective: float) -> None:
    assert budget_left(objective, objective) == 0.0


def test_the_projection_assumes_the_rest_of_the_period_meets_the_objective() -> None:
    assert projected(0.99, 0.25, 0.999) == pytest.approx(0.25 * 0.99 + 0.75 * 0.999)
    assert projected(0.99, 1.0, 0.999) == 0.99
    assert projected(0.5, 0.0, 0.999) == 0.999
    with pytest.raises(ValueError, match="elapsed"):
        projected(0.99, 1.5, 0.999)
