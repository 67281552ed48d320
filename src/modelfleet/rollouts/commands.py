"""What an operator does to rollouts: start, pause, resume, abort, promote, roll back.

Each command takes effect in one transaction: a traffic change is in the store (and so in every
gateway within a second) when the command returns, and is on the rollout's timeline with who
did it. Invalid requests raise InvalidInput with what is wrong.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from modelfleet.config.schema import BlueGreenStrategy, CanaryStrategy, Deployment, ShadowStrategy
from modelfleet.errors import InvalidInput
from modelfleet.registry import load_state
from modelfleet.registry.events import Event, record_event
from modelfleet.registry.splits import (
    previous_serving_version,
    serving_version,
    set_serving_version,
    take_awaiting_rollout,
)
from modelfleet.rollouts.controller import SOURCE, end_rollout, promote, rollout_spec
from modelfleet.rollouts.records import (
    Rollout,
    add_event,
    create_rollout,
    list_rollouts,
    update_rollout,
)

STRATEGIES = {"canary": CanaryStrategy, "bluegreen": BlueGreenStrategy, "shadow": ShadowStrategy}


def start_rollout(
    conn: Connection,
    deployment: str,
    version: str,
    *,
    actor: str,
    now: datetime,
    strategy: str | None = None,
) -> Rollout:
    """Start rolling `version` out: by the deployment's declared strategy, or by `strategy`
    (canary, bluegreen, shadow) with the declared settings if it is the declared one's type,
    and the defaults otherwise. The gate runs at the next control tick."""
    state = load_state(conn)
    found = state.get(("Deployment", deployment))
    if found is None:
        raise InvalidInput(f"no deployment named {deployment!r}")
    assert isinstance(found.resource, Deployment)
    d = found.resource.spec
    if state.get(("ModelVersion", d.model, version)) is None:
        raise InvalidInput(f"model {d.model!r} has no version {version!r}")
    if version == found.serving_version:
        raise InvalidInput(f"{deployment} already serves version {version}")
    running = active_rollout(conn, deployment)
    if running is not None:
        raise InvalidInput(
            f"rollout {running.id} of {deployment} ({running.candidate_version}) is still "
            f"{running.state}: abort it first"
        )
    chosen = d.strategy
    if strategy is not None and (chosen is None or chosen.type != strategy):
        if strategy not in STRATEGIES:
            raise InvalidInput(f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
        chosen = STRATEGIES[strategy](type=strategy)
    if chosen is None:
        chosen = CanaryStrategy(type="canary")
    assert found.serving_version is not None
    take_awaiting_rollout(conn, deployment)  # the operator takes the declaration over
    return create_rollout(
        conn,
        deployment=deployment,
        model=d.model,
        spec=rollout_spec(found.resource, chosen),
        stable_version=found.serving_version,
        candidate_version=version,
        actor=actor,
        now=now,
        reason=f"started by {actor}",
    )


def active_rollout(conn: Connection, deployment: str) -> Rollout | None:
    found = list_rollouts(conn, deployment=deployment, active=True, limit=1)
    return found[0] if found else None


def _require_active(conn: Connection, deployment: str) -> Rollout:
    found = active_rollout(conn, deployment)
    if found is None:
        raise InvalidInput(f"{deployment} has no rollout in progress")
    return found


def pause(conn: Connection, deployment: str, *, actor: str, now: datetime) -> Rollout:
    """Hold the rollout at its step; analysis still rolls back a failing candidate."""
    rollout = _require_active(conn, deployment)
    if rollout.paused:
        raise InvalidInput(f"rollout {rollout.id} of {deployment} is already paused")
    rollout = update_rollout(conn, rollout, now=now, paused=True)
    add_event(conn, rollout, "paused", now=now, reason=f"paused by {actor}")
    return rollout


def resume(conn: Connection, deployment: str, *, actor: str, now: datetime) -> Rollout:
    rollout = _require_active(conn, deployment)
    if not rollout.paused:
        raise InvalidInput(f"rollout {rollout.id} of {deployment} is not paused")
    rollout = update_rollout(conn, rollout, now=now, paused=False)
    add_event(conn, rollout, "resumed", now=now, reason=f"resumed by {actor}")
    return rollout


def abort(conn: Connection, deployment: str, *, actor: str, now: datetime) -> Event:
    """Stop the rollout; all traffic returns to the stable version."""
    rollout = _require_active(conn, deployment)
    return end_rollout(conn, rollout, "aborted", now=now, actor=actor, reason=f"aborted by {actor}")


def promote_now(conn: Connection, deployment: str, *, actor: str, now: datetime) -> Event:
    """Skip the remaining steps: the candidate becomes stable now. Only after its gate passed."""
    rollout = _require_active(conn, deployment)
    if rollout.state == "pending":
        raise InvalidInput(
            f"rollout {rollout.id} of {deployment} has not passed its quality gate yet"
        )
    if rollout.phase == "shadowing":
        raise InvalidInput("a shadow rollout never serves clients: start a canary to promote")
    return promote(conn, rollout, now=now, actor=actor, reason=f"promoted by {actor}")


def rollback(conn: Connection, deployment: str, *, actor: str, now: datetime) -> Event:
    """Back to the last good version at once: the running rollout's stable version, or the
    version the last promotion replaced."""
    running = active_rollout(conn, deployment)
    if running is not None:
        return end_rollout(
            conn, running, "rolled_back", now=now, actor=actor, reason=f"rolled back by {actor}"
        )
    promoted = [
        r for r in list_rollouts(conn, deployment=deployment, limit=1000) if r.state == "promoted"
    ]
    state = load_state(conn)
    found = state.get(("Deployment", deployment))
    if found is None:
        raise InvalidInput(f"no deployment named {deployment!r}")
    last = next((r for r in promoted if r.candidate_version == found.serving_version), None)
    if last is None:
        raise InvalidInput(
            f"{deployment} serves {found.serving_version}, which no rollout promoted: "
            "there is no earlier good version to go back to"
        )
    set_serving_version(conn, deployment, last.stable_version, actor=actor, now=now)
    rollout = update_rollout(
        conn, last, now=now, state="rolled_back", reason=f"rolled back by {actor}"
    )
    add_event(
        conn, rollout, "rolled_back", now=now, reason=f"rolled back by {actor} after promotion"
    )
    event = Event(
        at=now,
        source=SOURCE,
        kind="rollout.rolled_back",
        severity="critical",
        subject=deployment,
        message=f"{deployment} rolled back from {last.candidate_version} to "
        f"{last.stable_version} by {actor}",
        details={
            "rollout": last.id,
            "stable": last.stable_version,
            "candidate": last.candidate_version,
        },
    )
    record_event(conn, event)
    return event


def roll_back_deployment(conn: Connection, deployment: str, *, actor: str, now: datetime) -> str:
    """Whatever rolling back means for the deployment now: its running rollout aborted, else
    its promotion undone, else the version it served before the last change (from the audit
    log). Raises InvalidInput when there is nothing to go back to."""
    if active_rollout(conn, deployment) is not None:
        abort(conn, deployment, actor=actor, now=now)
        return f"aborted the rollout of {deployment}: all traffic back on its stable version"
    current = serving_version(conn, deployment)
    try:
        event = rollback(conn, deployment, actor=actor, now=now)
        return event.message
    except InvalidInput:
        pass
    previous = previous_serving_version(conn, deployment)
    if previous is None or previous == current:
        raise InvalidInput(f"{deployment} has served {current} since it was created")
    set_serving_version(conn, deployment, previous, actor=actor, now=now)
    return f"rolled {deployment} back from {current} to {previous}"
