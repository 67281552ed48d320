"""Replica targets: what the control plane asks of a version's replicas, for the data plane.

A target holds a replica count (None: the gateway's default) and a restart counter; the
gateways apply both when they next reload (gateway/app.py), since every change is audited
and the audit moves the store's generation. Remediation (scale, restart) and the capacity
controller both write through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from modelfleet.registry.audit import record
from modelfleet.store.tables import replica_targets
from modelfleet.store.upsert import upsert


@dataclass(frozen=True)
class ReplicaTarget:
    replicas: int | None
    restarts: int


def replica_target(conn: Connection, model: str, version: str) -> ReplicaTarget:
    """The version's target; no row is no request (default replicas, never restarted)."""
    t = replica_targets
    row = conn.execute(
        select(t.c.replicas, t.c.restarts).where(t.c.model == model, t.c.version == version)
    ).one_or_none()
    return ReplicaTarget(None, 0) if row is None else ReplicaTarget(row.replicas, row.restarts)


def set_replica_target(
    conn: Connection,
    model: str,
    version: str,
    target: ReplicaTarget,
    *,
    actor: str,
    action: str,
    now: datetime,
) -> None:
    """Write the version's target, audited as `action` by `actor`."""
    upsert(
        conn,
        replica_targets,
        [
            {
                "model": model,
                "version": version,
                "replicas": target.replicas,
                "restarts": target.restarts,
                "updated_at": now,
            }
        ],
        unique=["model", "version"],
        update=["replicas", "restarts", "updated_at"],
    )
    record(
        conn,
        at=now,
        actor=actor,
        action=action,
        kind="ModelVersion",
        name=f"{model}/{version}",
        old=None,
        new={"replicas": target.replicas, "restarts": target.restarts},
    )
