"""Canary rollouts of the retail-vision example, end to end: real HTTP through the gateway, the
rollout controller on a virtual clock, decisions judged on the rollups the gateway wrote."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from modelfleet.registry.events import recent_events
from modelfleet.registry.splits import read_splits, serving_version
from modelfleet.rollouts import start_rollout
from modelfleet.sim.rollout import with_blank_frames
from tests.rollouts.conftest import DEPLOYMENT, Fleet


def declare(version: str) -> Callable[[str], str]:
    return lambda text: text.replace("  version: v1\n", f"  version: {version}\n")


def test_v2_passes_the_gate_and_is_promoted_through_every_canary_step(fleet: Fleet) -> None:
    fleet.apply(declare("v2"))  # changing the declared version starts the rollout

    rounds = fleet.until("promoted", "rolled_back", "refused")

    rollout = fleet.rollout()
    assert rollout.state == "promoted", rollout.reason
    assert (rollout.stable_version, rollout.candidate_version) == ("v1", "v2")
    timeline = fleet.timeline()
    gate = next(e for e in timeline if e.kind == "gate")
    assert gate.outcome == "pass" and gate.evidence is not None
    steps = [e.percent for e in timeline if e.kind == "step"]
    assert steps == [5, 25, 50, 100]
    passed = [e for e in timeline if e.kind == "analysis"]
    assert [e.outcome for e in passed] == ["pass"] * 3  # after 5, 25 and 50 %
    assert all(e.evidence and e.evidence["metrics"] for e in passed)
    # No client ever saw a failure, and the candidate answered more and more.
    assert sum(r.failed for r in rounds) == 0
    shares = [r.answered["v2"] / max(1, sum(r.answered.values())) for r in rounds]
    assert shares[0] < 0.2 and shares[-2] == 1.0
    with fleet.store.begin() as conn:
        assert serving_version(conn, DEPLOYMENT) == "v2"
        assert read_splits(conn) == {}
        kinds = [e.kind for e in recent_events(conn)]
    assert kinds == ["rollout.promoted"]
    after = fleet.drill.round(100, timedelta(seconds=30))
    assert after.answered == {"v2": 100}


def test_v3_is_refused_by_the_gate_for_its_two_weak_classes(fleet: Fleet) -> None:
    with fleet.store.begin() as conn:
        start_rollout(conn, DEPLOYMENT, "v3", actor="test", now=fleet.clock.now())

    rounds = fleet.until("refused", "running", limit=3)

    rollout = fleet.rollout()
    assert rollout.state == "refused"
    gate = next(e for e in fleet.timeline() if e.kind == "gate")
    assert gate.evidence is not None
    failed = sorted(c["name"] for c in gate.evidence["checks"] if c["status"] == "fail")
    assert failed == ["recall[donut]", "recall[icecream]"]
    assert len(gate.evidence["checks"]) > 10  # every check is reported, not just the failures
    assert "recall[donut]" in rollout.reason and "recall[icecream]" in rollout.reason
    # No request ever reached v3.
    assert all(set(r.answered) == {"v1"} for r in rounds)
    with fleet.store.begin() as conn:
        assert read_splits(conn) == {}
        assert [e.kind for e in recent_events(conn)] == ["rollout.refused"]


def test_a_version_that_fails_on_production_input_is_rolled_back_with_its_evidence(
    fleet: Fleet,
) -> None:
    # v4 passes the gate on clean evaluation images but raises on blank frames, which 5 % of
    # production requests are.
    fleet.drill.rows = with_blank_frames(fleet.drill.rows, 0.05, seed=1)
    with fleet.store.begin() as conn:
        start_rollout(conn, DEPLOYMENT, "v4", actor="test", now=fleet.clock.now())

    rounds = fleet.until("rolled_back", "promoted", "refused")

    rollout = fleet.rollout()
    assert rollout.state == "rolled_back", rollout.reason
    assert rollout.percent <= 25  # caught at 5 %, or at 25 % when 5 % saw too few blank frames
    timeline = fleet.timeline()
    assert next(e for e in timeline if e.kind == "gate").outcome == "pass"
    failing = next(e for e in timeline if e.kind == "analysis" and e.outcome == "fail")
    assert failing.evidence is not None
    error_rate = next(m for m in failing.evidence["metrics"] if m["name"] == "error_rate")
    assert error_rate["verdict"] == "fail" and error_rate["canary"] > error_rate["stable"]
    assert "error_rate" in rollout.reason
    # Only the canary's share of blank frames failed: about 5 % of 5 % of requests.
    sent = sum(sum(r.codes.values()) for r in rounds)
    assert sum(r.failed for r in rounds) < 0.01 * sent
    with fleet.store.begin() as conn:
        assert read_splits(conn) == {}
        assert serving_version(conn, DEPLOYMENT) == "v1"
        event = recent_events(conn)[0]
    assert (event.kind, event.severity) == ("rollout.rolled_back", "critical")
    assert event.details["evidence"]["outcome"] == "fail"
    after = fleet.drill.round(100, timedelta(seconds=30))
    assert set(after.answered) == {"v1"} and after.failed == 0
