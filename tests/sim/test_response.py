"""The fault drills: the real gateways and control loop notice a fault, fix it and record it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from modelfleet.sim.quiet import quiet_days
from modelfleet.sim.response import SCENARIOS, run_scenario


def scenario(name: str):  # type: ignore[no-untyped-def]
    return next(s for s in SCENARIOS if s.name == name)


def test_a_replica_crash_is_seen_within_a_minute_and_restarted_without_a_page(
    trained_example: Path,
) -> None:
    outcome = run_scenario(trained_example, scenario("replica crash"))
    assert outcome.detected and outcome.mttd is not None
    assert outcome.mttd < timedelta(seconds=60)
    assert outcome.resolved_automatically and outcome.pages == 0
    assert outcome.mttr is not None and outcome.mttr < timedelta(minutes=2)
    (incident,) = outcome.serious
    assert incident.resolved_by == "runbook roll-back-bad-version"  # its restart step


def test_a_region_outage_fails_the_region_over_within_two_minutes(trained_example: Path) -> None:
    outcome = run_scenario(trained_example, scenario("region outage"))
    assert outcome.resolved_automatically
    assert outcome.mttr is not None and outcome.mttr < timedelta(minutes=2)
    assert [i.resolved_by for i in outcome.serious] == ["runbook fail-over-region"]


def test_a_bad_version_is_rolled_back(trained_example: Path) -> None:
    outcome = run_scenario(trained_example, scenario("bad version"))
    assert outcome.resolved_automatically and outcome.pages == 0
    assert "runbook roll-back-bad-version" in {i.resolved_by for i in outcome.serious}


def test_fault_free_days_raise_no_alert(trained_example: Path) -> None:
    outcome = quiet_days(trained_example, warm=3, days=1)
    assert outcome.points > 0
    assert outcome.anomalies == [] and outcome.alerts == []
