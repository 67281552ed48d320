"""Service level indicators from per-minute counts and from incidents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelfleet.config.sla import SLOSpec
from modelfleet.sla import (
    MinuteCounts,
    SLIValue,
    availability,
    counts_of,
    incident_response,
    latency,
    per_minute,
    uptime,
)
from modelfleet.telemetry import Rollup, RollupKey

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
MIN = timedelta(minutes=1)
UPTIME = SLOSpec(
    name="uptime", type="uptime", objective=0.999, minute_error_rate=0.05, min_minute_requests=10
)


def counts(i: int, valid: int, errors: int, fast: int | None = None) -> MinuteCounts:
    return MinuteCounts(T0 + i * MIN, valid, errors, {0.5: valid if fast is None else fast})


def test_counts_of_a_rollup_leave_out_client_errors_and_quota_rejections() -> None:
    rollup = Rollup(RollupKey("acme", "churn", "v3", "eu-west", T0))
    for status, latency_s in [(200, 0.1), (200, 0.7), (503, 0.2), (504, 30.0), (404, 0.01)]:
        rollup.record(status, latency_s)
    rollup.record_rejection()
    c = counts_of(rollup)
    assert (c.minute, c.valid, c.errors) == (T0, 4, 2)
    assert c.within == {0.1: 1, 0.25: 2, 0.5: 2, 1.0: 3}


def test_a_shadow_rollup_never_counts_towards_an_sla() -> None:
    with pytest.raises(ValueError, match="shadow"):
        counts_of(Rollup(RollupKey("acme", "churn", "v3", "eu-west", T0, shadow=True)))


def test_counts_of_the_same_minute_add_up() -> None:
    merged = per_minute([counts(1, 10, 1), counts(0, 5, 0), counts(1, 20, 2, fast=3)])
    assert merged == [counts(0, 5, 0), MinuteCounts(T0 + MIN, 30, 3, {0.5: 13})]


def test_availability_and_latency_count_good_of_valid_requests() -> None:
    minutes = [counts(0, 100, 3, fast=90), counts(1, 50, 0, fast=50)]
    assert availability(minutes) == SLIValue(147, 150)
    assert latency(minutes, timedelta(milliseconds=500)) == SLIValue(140, 150)
    with pytest.raises(ValueError, match="within 0.1s"):
        latency(minutes, 0.1)


def test_no_traffic_is_no_evidence_of_failure() -> None:
    assert availability([]).value == 1.0
    assert incident_response([], timedelta(minutes=15)).value == 1.0


@pytest.mark.parametrize(
    ("valid", "errors", "down"),
    [(100, 5, False), (100, 6, True), (9, 9, False), (10, 1, True), (0, 0, False)],
)
def test_a_minute_is_down_when_enough_valid_requests_fail_beyond_the_rate(
    valid: int, errors: int, down: bool
) -> None:
    assert uptime([counts(0, valid, errors)], UPTIME, 10) == SLIValue(10 - down, 10)


def test_uptime_judges_whole_minutes_only() -> None:
    with pytest.raises(ValueError, match="whole minutes"):
        uptime([counts(0, 5, 5), counts(0, 5, 5)], UPTIME, 10)


def test_incident_response_counts_the_first_answer_within_the_deadline() -> None:
    d = T0
    within = timedelta(minutes=15)
    incidents = [
        (d, d + timedelta(minutes=15), None),  # acknowledged exactly in time: good
        (d, d + timedelta(minutes=16), d + timedelta(hours=1)),  # acknowledged late: bad
        (d, None, d + timedelta(minutes=10)),  # resolved in time without an ack: good
        (d, None, None),  # never answered: bad
        (d, None, d + timedelta(minutes=20)),  # resolved late: bad
    ]
    assert incident_response(incidents, within) == SLIValue(2, 5)


def test_an_unanswered_incident_before_its_deadline_is_pending() -> None:
    incidents = [(T0, None, None), (T0 - timedelta(hours=1), None, None)]
    now = T0 + timedelta(minutes=5)
    assert incident_response(incidents, timedelta(minutes=15), now=now) == SLIValue(0, 1)


minute_counts = st.builds(
    lambda i, valid, e, f: counts(i, valid, min(e, valid), min(f, valid)),
    st.integers(0, 50),
    st.integers(0, 1000),
    st.integers(0, 1000),
    st.integers(0, 1000),
)


@given(st.lists(minute_counts, max_size=30))
def test_every_indicator_lies_between_zero_and_one(minutes: list[MinuteCounts]) -> None:
    whole = per_minute(minutes)
    for sli in (availability(minutes), latency(minutes, 0.5), uptime(whole, UPTIME, 60)):
        assert 0.0 <= sli.value <= 1.0
