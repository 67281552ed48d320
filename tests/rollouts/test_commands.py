"""Operators' commands and the controller's bookkeeping, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from modelfleet.clock import VirtualClock
from modelfleet.config import load_fleet
from modelfleet.errors import InvalidInput
from modelfleet.registry import apply_fleet, latest, load_state
from modelfleet.registry.events import recent_events
from modelfleet.registry.splits import read_splits, serving_version
from modelfleet.rollouts import (
    RolloutController,
    abort,
    events_of,
    latest_rollout,
    pause,
    promote_now,
    resume,
    rollback,
    start_rollout,
)
from modelfleet.store import Store

DEPLOYMENT = "product-recognizer"


@pytest.fixture
def applied(store: Store, trained_example: Path, clock: VirtualClock) -> Iterator[Store]:
    apply_fleet(store, load_fleet([trained_example / "fleet.yaml"]), actor="test", now=clock.now())
    yield store


def tick(store: Store, clock: VirtualClock) -> None:
    clock.advance(timedelta(seconds=5))
    RolloutController(store).tick(clock.now())


def test_start_refuses_what_cannot_be_rolled_out(applied: Store, clock: VirtualClock) -> None:
    with applied.begin() as conn:
        with pytest.raises(InvalidInput, match="no deployment named 'nope'"):
            start_rollout(conn, "nope", "v2", actor="t", now=clock.now())
        with pytest.raises(InvalidInput, match="has no version 'v9'"):
            start_rollout(conn, DEPLOYMENT, "v9", actor="t", now=clock.now())
        with pytest.raises(InvalidInput, match="already serves version v1"):
            start_rollout(conn, DEPLOYMENT, "v1", actor="t", now=clock.now())
        with pytest.raises(InvalidInput, match="unknown strategy 'yolo'"):
            start_rollout(conn, DEPLOYMENT, "v2", actor="t", now=clock.now(), strategy="yolo")
        start_rollout(conn, DEPLOYMENT, "v2", actor="t", now=clock.now())
        with pytest.raises(InvalidInput, match="is still pending: abort it first"):
            start_rollout(conn, DEPLOYMENT, "v4", actor="t", now=clock.now())


def test_pause_resume_promote_and_roll_back(applied: Store, clock: VirtualClock) -> None:
    with applied.begin() as conn:
        start_rollout(conn, DEPLOYMENT, "v2", actor="ann", now=clock.now())
        with pytest.raises(InvalidInput, match="has not passed its quality gate yet"):
            promote_now(conn, DEPLOYMENT, actor="ann", now=clock.now())
    tick(applied, clock)  # the gate passes; 5 % of requests go to v2
    with applied.begin() as conn:
        assert read_splits(conn)[DEPLOYMENT].canary_percent == 5
        paused = pause(conn, DEPLOYMENT, actor="ann", now=clock.now())
        assert paused.paused
        with pytest.raises(InvalidInput, match="already paused"):
            pause(conn, DEPLOYMENT, actor="ann", now=clock.now())
    clock.advance(timedelta(minutes=10))
    tick(applied, clock)  # paused: the step does not move, whatever the time
    with applied.begin() as conn:
        assert read_splits(conn)[DEPLOYMENT].canary_percent == 5
        resume(conn, DEPLOYMENT, actor="ann", now=clock.now())
        event = promote_now(conn, DEPLOYMENT, actor="ann", now=clock.now())
        assert event.kind == "rollout.promoted" and "promoted by ann" in event.message
        assert serving_version(conn, DEPLOYMENT) == "v2"
        assert read_splits(conn) == {}
        with pytest.raises(InvalidInput, match="has no rollout in progress"):
            pause(conn, DEPLOYMENT, actor="ann", now=clock.now())
        back = rollback(conn, DEPLOYMENT, actor="bob", now=clock.now())
        assert back.kind == "rollout.rolled_back" and back.severity == "critical"
        assert serving_version(conn, DEPLOYMENT) == "v1"
        timeline = [e.kind for e in events_of(conn, latest_rollout(conn, DEPLOYMENT).id)]  # type: ignore[union-attr]
        assert timeline == [
            "started",
            "gate",
            "step",
            "paused",
            "resumed",
            "promoted",
            "rolled_back",
        ]
        with pytest.raises(InvalidInput, match="which no rollout promoted"):
            rollback(conn, DEPLOYMENT, actor="bob", now=clock.now())
        who = {(e.kind, e.actor) for e in latest(conn, limit=100)}
    assert ("Deployment", "bob") in who and ("TrafficSplit", "rollout-controller") in who


def test_abort_sends_all_traffic_back_to_stable(applied: Store, clock: VirtualClock) -> None:
    with applied.begin() as conn:
        start_rollout(conn, DEPLOYMENT, "v2", actor="ann", now=clock.now())
    tick(applied, clock)
    with applied.begin() as conn:
        assert DEPLOYMENT in read_splits(conn)
        event = abort(conn, DEPLOYMENT, actor="ann", now=clock.now())
        assert event.kind == "rollout.aborted"
        assert read_splits(conn) == {} and serving_version(conn, DEPLOYMENT) == "v1"
        assert [e.kind for e in recent_events(conn)] == ["rollout.aborted"]


def test_a_declared_version_is_rolled_out_once_and_a_newer_one_supersedes_it(
    applied: Store, trained_example: Path, clock: VirtualClock, tmp_path: Path
) -> None:
    text = (trained_example / "fleet.yaml").read_text()

    def declare(version: str) -> None:
        path = tmp_path / "fleet.yaml"
        path.write_text(text.replace("  version: v1\n", f"  version: {version}\n"))
        for name in ("artifacts", "v4.py"):
            if not (tmp_path / name).exists():
                (tmp_path / name).symlink_to(trained_example / name)
        apply_fleet(applied, load_fleet([path]), actor="test", now=clock.now())

    declare("v3")
    tick(applied, clock)  # started and gated at once: refused
    with applied.begin() as conn:
        refused = latest_rollout(conn, DEPLOYMENT)
        assert refused is not None and refused.state == "refused"
        state = load_state(conn)
    deployment = state.get(("Deployment", DEPLOYMENT))
    assert deployment is not None and deployment.serving_version == "v1"
    tick(applied, clock)
    with applied.begin() as conn:
        assert latest_rollout(conn, DEPLOYMENT) == refused  # not retried

    declare("v2")
    tick(applied, clock)
    declare("v4")  # while v2's canary runs
    tick(applied, clock)
    with applied.begin() as conn:
        v2, v4 = [r for r in reversed(_all(conn)) if r.candidate_version in ("v2", "v4")]
    assert v2.state == "aborted" and "superseded" in v2.reason
    assert v4.state == "running" and v4.candidate_version == "v4"


def _all(conn):  # type: ignore[no-untyped-def]
    from modelfleet.rollouts import list_rollouts

    return list_rollouts(conn, deployment=DEPLOYMENT)
