"""SLA periods: calendar months in the customer's zone, and the minutes maintenance removes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from modelfleet.config.sla import MaintenanceWindow
from modelfleet.sla import (
    Period,
    counted_minutes,
    excluded,
    excluded_minutes,
    maintenance_intervals,
    parse_period,
    period_bounds,
    period_of,
)

BERLIN = "Europe/Berlin"


def window(start: datetime, end: datetime) -> MaintenanceWindow:
    return MaintenanceWindow(start=start, end=end, reason="database upgrade")


def test_berlins_october_2026_is_31_days_and_an_hour_long() -> None:
    start, end = period_bounds(2026, 10, BERLIN)
    assert start == datetime(2026, 9, 30, 22, tzinfo=UTC)
    assert end == datetime(2026, 10, 31, 23, tzinfo=UTC)
    assert Period(2026, 10, BERLIN).minutes == 31 * 1440 + 60


def test_berlins_march_2026_loses_the_hour_that_summer_time_skips() -> None:
    assert period_bounds(2026, 3, BERLIN) == (
        datetime(2026, 2, 28, 23, tzinfo=UTC),
        datetime(2026, 3, 31, 22, tzinfo=UTC),
    )
    assert Period(2026, 3, BERLIN).minutes == 31 * 1440 - 60


def test_december_ends_at_the_next_years_first_midnight() -> None:
    assert Period(2026, 12, "America/New_York").end == datetime(2027, 1, 1, 5, tzinfo=UTC)
    assert Period(2026, 12).minutes == 31 * 1440


def test_the_period_of_an_instant_follows_the_customers_calendar() -> None:
    last_utc_evening = datetime(2026, 10, 31, 23, 30, tzinfo=UTC)  # already November in Berlin
    assert period_of(last_utc_evening, BERLIN) == Period(2026, 11, BERLIN)
    assert period_of(last_utc_evening, "UTC") == Period(2026, 10, "UTC")
    assert last_utc_evening in Period(2026, 11, BERLIN)
    assert last_utc_evening not in Period(2026, 10, BERLIN)


def test_a_period_is_parsed_from_year_and_month() -> None:
    assert parse_period("2026-11", BERLIN) == Period(2026, 11, BERLIN)
    assert str(parse_period(" 2026-01 ", "UTC")) == "2026-01"


@pytest.mark.parametrize("text", ["2026-13", "2026-1", "26-11", "November", "2026-00"])
def test_a_malformed_period_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="month|YYYY-MM"):
        parse_period(text, BERLIN)


def test_the_elapsed_share_of_a_period_is_clamped_to_it() -> None:
    period = Period(2026, 11, "UTC")
    assert period.elapsed(datetime(2026, 11, 16, tzinfo=UTC)) == 0.5
    assert period.elapsed(datetime(2025, 1, 1, tzinfo=UTC)) == 0.0
    assert period.elapsed(datetime(2027, 1, 1, tzinfo=UTC)) == 1.0


def test_a_naive_maintenance_window_is_local_time_in_the_slas_zone() -> None:
    (interval,) = maintenance_intervals(
        [window(datetime(2026, 10, 20, 2), datetime(2026, 10, 20, 4))], BERLIN
    )
    assert interval == (
        datetime(2026, 10, 20, 0, tzinfo=UTC),
        datetime(2026, 10, 20, 2, tzinfo=UTC),
    )


def test_a_window_across_the_end_of_summer_time_lasts_an_hour_longer_than_its_clock_says() -> None:
    # 02:00 is read as its first occurrence (summer time): 02:00 CEST to 04:00 CET is 3 h.
    windows = [window(datetime(2026, 10, 25, 2), datetime(2026, 10, 25, 4))]
    assert len(excluded_minutes(Period(2026, 10, BERLIN), windows)) == 180


def test_overlapping_windows_merge_and_aware_ones_are_taken_as_they_are() -> None:
    windows = [
        window(datetime(2026, 10, 20, 3), datetime(2026, 10, 20, 5)),
        window(datetime(2026, 10, 20, 0, tzinfo=UTC), datetime(2026, 10, 20, 2, tzinfo=UTC)),
    ]
    assert maintenance_intervals(windows, BERLIN) == (
        (datetime(2026, 10, 20, 0, tzinfo=UTC), datetime(2026, 10, 20, 3, tzinfo=UTC)),
    )


def test_a_minute_touched_by_a_window_is_excluded_whole() -> None:
    zone = ZoneInfo(BERLIN)
    windows = [window(datetime(2026, 10, 20, 2, 0, 30), datetime(2026, 10, 20, 2, 1, 30))]
    first = datetime(2026, 10, 20, 2, tzinfo=zone).astimezone(UTC)
    assert excluded(first, windows, BERLIN)
    assert excluded(first + timedelta(minutes=1), windows, BERLIN)
    assert not excluded(first + timedelta(minutes=2), windows, BERLIN)
    assert not excluded(first - timedelta(minutes=1), windows, BERLIN)
    assert excluded_minutes(Period(2026, 10, BERLIN), windows) == {
        first,
        first + timedelta(minutes=1),
    }


def test_maintenance_outside_the_period_removes_none_of_its_minutes() -> None:
    windows = [
        window(datetime(2026, 9, 30, 23), datetime(2026, 10, 1, 1)),  # one hour inside October
        window(datetime(2026, 11, 3, 1), datetime(2026, 11, 3, 2)),
    ]
    assert counted_minutes(Period(2026, 10, BERLIN), windows) == 31 * 1440 + 60 - 60
