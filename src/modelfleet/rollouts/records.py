"""Rollout records: one row per rollout, and the timeline of its decisions with their evidence.

A rollout moves a deployment from its stable version to a candidate. Its `state`:

- `pending`: waiting for the quality gate, which runs at the next control tick;
- `running`: the candidate is getting traffic (or shadow traffic) by its strategy's phases;
- `promoted`: the candidate became the stable version;
- `rolled_back`: traffic went back to the stable version, by analysis or by an operator;
- `refused`: the quality gate failed; no request ever reached the candidate;
- `aborted`: an operator stopped it, or a newer declared version superseded it;
- `completed`: a shadow rollout ran its course (it never serves clients).

`paused` holds a running rollout where it is: no further step, but analysis still runs and
still rolls back a candidate that fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, insert, select, update

from modelfleet.store.tables import rollout_events, rollouts

State = Literal["pending", "running", "promoted", "rolled_back", "refused", "aborted", "completed"]
ACTIVE: tuple[State, ...] = ("pending", "running")


@dataclass(frozen=True)
class Rollout:
    id: int
    deployment: str
    model: str
    strategy: str  # canary, bluegreen or shadow
    spec: dict[str, Any]  # {"strategy": ..., "gate": ..., "sticky_key": ...} as at the start
    stable_version: str
    candidate_version: str
    state: State
    phase: str  # pending, canary, warming, switched, shadowing, done
    step: int
    percent: float
    paused: bool
    phase_started_at: datetime
    baseline: dict[str, str] | None  # {"since", "until"}: stable's window once it has no traffic
    started_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    reason: str
    actor: str

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


@dataclass(frozen=True)
class RolloutEvent:
    id: int
    rollout: int
    at: datetime
    kind: str  # started, gate, step, analysis, hold, paused, resumed, promoted, rolled_back, ...
    step: int
    percent: float
    outcome: str | None  # pass, fail, hold, marginal, or None
    reason: str
    evidence: dict[str, Any] | None


def create_rollout(
    conn: Connection,
    *,
    deployment: str,
    model: str,
    spec: dict[str, Any],
    stable_version: str,
    candidate_version: str,
    actor: str,
    now: datetime,
    reason: str,
) -> Rollout:
    rollout_id = conn.execute(
        insert(rollouts)
        .values(
            deployment=deployment,
            model=model,
            strategy=spec["strategy"]["type"],
            spec=spec,
            stable_version=stable_version,
            candidate_version=candidate_version,
            state="pending",
            phase="pending",
            step=0,
            percent=0.0,
            paused=False,
            phase_started_at=now,
            baseline=None,
            started_at=now,
            updated_at=now,
            ended_at=None,
            reason=reason,
            actor=actor,
        )
        .returning(rollouts.c.id)
    ).scalar_one()
    rollout = get_rollout(conn, int(rollout_id))
    assert rollout is not None
    add_event(conn, rollout, "started", now=now, reason=reason)
    return rollout


def get_rollout(conn: Connection, rollout_id: int) -> Rollout | None:
    row = conn.execute(select(rollouts).where(rollouts.c.id == rollout_id)).one_or_none()
    return None if row is None else Rollout(**row._mapping)


def list_rollouts(
    conn: Connection, *, deployment: str | None = None, active: bool = False, limit: int = 50
) -> list[Rollout]:
    """The newest rollouts first."""
    query = select(rollouts).order_by(rollouts.c.id.desc()).limit(limit)
    if deployment is not None:
        query = query.where(rollouts.c.deployment == deployment)
    if active:
        query = query.where(rollouts.c.state.in_(ACTIVE))
    return [Rollout(**row._mapping) for row in conn.execute(query)]


def latest_rollout(conn: Connection, deployment: str) -> Rollout | None:
    found = list_rollouts(conn, deployment=deployment, limit=1)
    return found[0] if found else None


def update_rollout(conn: Connection, rollout: Rollout, *, now: datetime, **values: Any) -> Rollout:
    """Write `values` into the rollout's row; returns the rollout as now stored."""
    conn.execute(
        update(rollouts).where(rollouts.c.id == rollout.id).values(**values, updated_at=now)
    )
    updated = get_rollout(conn, rollout.id)
    assert updated is not None
    return updated


def add_event(
    conn: Connection,
    rollout: Rollout,
    kind: str,
    *,
    now: datetime,
    reason: str,
    outcome: str | None = None,
    evidence: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        insert(rollout_events).values(
            rollout=rollout.id,
            at=now,
            kind=kind,
            step=rollout.step,
            percent=rollout.percent,
            outcome=outcome,
            reason=reason,
            evidence=evidence,
        )
    )


def events_of(conn: Connection, rollout_id: int) -> list[RolloutEvent]:
    """A rollout's timeline, oldest first."""
    query = (
        select(rollout_events)
        .where(rollout_events.c.rollout == rollout_id)
        .order_by(rollout_events.c.id)
    )
    return [RolloutEvent(**row._mapping) for row in conn.execute(query)]
