"""Which version serves: a deployment's stable version and, while a rollout runs, its traffic split.

The rollout controller writes these and the gateway reads them with the routes. Each write is
recorded in the audit log, in the same transaction: that is what moves the store's generation
and makes every gateway publish the change within a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from modelfleet.errors import InvalidInput
from modelfleet.registry.audit import latest, record
from modelfleet.store.tables import deployments, traffic_splits


@dataclass(frozen=True)
class TrafficSplit:
    """How one deployment's requests divide between its stable version and a candidate.

    `canary_percent` of the requests (by sticky key) are answered by the candidate;
    `shadow_percent` of the rest are also sent to it, and its answers only compared. `warm`
    versions stay loaded without traffic: the candidate before a blue-green switch, the old
    stable version during the rollback window.
    """

    deployment: str
    candidate: str
    canary_percent: float = 0.0
    shadow_percent: float = 0.0
    warm: Sequence[str] = field(default_factory=tuple)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("canary_percent", "shadow_percent"):
            value = getattr(self, name)
            if not 0.0 <= value <= 100.0:
                raise ValueError(f"{name} must lie in [0, 100], got {value}")

    def state(self) -> dict[str, object]:
        return {
            "candidate": self.candidate,
            "canary_percent": self.canary_percent,
            "shadow_percent": self.shadow_percent,
            "warm": list(self.warm),
        }


def read_splits(conn: Connection) -> dict[str, TrafficSplit]:
    """Every deployment's split, by deployment; a deployment without one sends all to stable."""
    return {
        r.deployment: TrafficSplit(
            r.deployment, r.candidate, r.canary_percent, r.shadow_percent, tuple(r.warm), r.seed
        )
        for r in conn.execute(select(traffic_splits))
    }


def write_split(conn: Connection, split: TrafficSplit, *, actor: str, now: datetime) -> bool:
    """Publish `split`; returns False (and writes nothing) when it is already the one published."""
    current = read_splits(conn).get(split.deployment)
    if current == split:
        return False
    conn.execute(delete(traffic_splits).where(traffic_splits.c.deployment == split.deployment))
    conn.execute(
        insert(traffic_splits).values(
            deployment=split.deployment,
            candidate=split.candidate,
            canary_percent=split.canary_percent,
            shadow_percent=split.shadow_percent,
            warm=list(split.warm),
            seed=split.seed,
            updated_at=now,
        )
    )
    record(
        conn,
        at=now,
        actor=actor,
        action="split",
        kind="TrafficSplit",
        name=split.deployment,
        old=current.state() if current else None,
        new=split.state(),
    )
    return True


def clear_split(conn: Connection, deployment: str, *, actor: str, now: datetime) -> bool:
    """Send all of the deployment's traffic to its stable version; False if it already was."""
    current = read_splits(conn).get(deployment)
    if current is None:
        return False
    conn.execute(delete(traffic_splits).where(traffic_splits.c.deployment == deployment))
    record(
        conn,
        at=now,
        actor=actor,
        action="unsplit",
        kind="TrafficSplit",
        name=deployment,
        old=current.state(),
        new=None,
    )
    return True


def serving_version(conn: Connection, deployment: str) -> str:
    """The deployment's stable version; InvalidInput for an unknown deployment."""
    found = conn.execute(
        select(deployments.c.stable_version).where(deployments.c.name == deployment)
    ).scalar_one_or_none()
    if found is None:
        raise InvalidInput(f"no deployment named {deployment!r}")
    return str(found)


def set_serving_version(
    conn: Connection, deployment: str, version: str, *, actor: str, now: datetime
) -> None:
    """Make `version` the deployment's stable version (a promotion or a rollback)."""
    old = serving_version(conn, deployment)
    if old == version:
        return
    conn.execute(
        update(deployments)
        .where(deployments.c.name == deployment)
        .values(stable_version=version, updated_at=now)
    )
    record(
        conn,
        at=now,
        actor=actor,
        action="serve",
        kind="Deployment",
        name=deployment,
        old={"serving_version": old},
        new={"serving_version": version},
    )


def take_awaiting_rollout(conn: Connection, deployment: str) -> bool:
    """Whether the deployment's declared version awaits a rollout; clears the mark, so one
    declaration starts at most one rollout (an operator's own rollout takes it over too)."""
    taken = conn.execute(
        update(deployments)
        .where(deployments.c.name == deployment, deployments.c.awaiting_rollout.is_(True))
        .values(awaiting_rollout=False)
    ).rowcount
    return bool(taken)


def previous_serving_version(conn: Connection, deployment: str) -> str | None:
    """The version the deployment served before its current one, from the audit log: its last
    promotion or rollback, or the last apply that changed its version."""
    current = serving_version(conn, deployment)
    for entry in latest(conn, kind="Deployment", name=deployment, limit=200):
        old, new = entry.old or {}, entry.new or {}
        before = old.get("serving_version") or (old.get("spec") or {}).get("version")
        after = new.get("serving_version") or (new.get("spec") or {}).get("version")
        if before and after == current and before != current:
            return str(before)
    return None
