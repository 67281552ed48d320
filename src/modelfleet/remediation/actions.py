"""The actions a runbook may take. Each writes its decision to the store, audited, and says what
it did; the data plane (or the rollout controller) carries it out when it next reads the store.

    rollback     the deployment goes back to the version it served before (or its rollout ends)
    scale        a version's replicas to a number, or a number more
    restart      a version's replicas are replaced (the gateway redeploys it)
    failover     a region is declared down; its tenants are served from another region
    throttle     a tenant's quota is cut to a share of itself for a while
    stop_shadow  a rollout's shadow traffic stops
    open_review  recent requests of the tenant are put in the review queue

Targets come from the step, else from the alert's labels (deployment, model, version, tenant,
region). An action that has nothing to act on is *skipped*, not failed: the runbook moves on
to its next step at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import Connection, select

from modelfleet.config.alerting import RunbookAction
from modelfleet.config.schema import Deployment
from modelfleet.errors import InvalidInput
from modelfleet.registry.audit import record
from modelfleet.registry.replicas import ReplicaTarget, replica_target, set_replica_target
from modelfleet.registry.resources import load_state
from modelfleet.registry.splits import read_splits, write_split
from modelfleet.store.tables import region_status, tenant_throttles
from modelfleet.store.upsert import upsert

# Operations owned by other control-plane packages, handed in by whoever assembles the
# controllers (control.py), so that remediation never imports them.
RollbackOperation = Callable[..., str]  # (conn, deployment, *, actor, now) -> what was done
ReviewOperation = Callable[..., int]  # (conn, tenant, model, *, since, now) -> items opened


@dataclass(frozen=True)
class Operations:
    rollback: RollbackOperation
    open_review: ReviewOperation


@dataclass(frozen=True)
class Context:
    conn: Connection
    now: datetime
    labels: Mapping[str, str]
    step: RunbookAction
    actor: str  # runbook:<name>, as the audit log records it
    operations: Operations
    alert_started_at: datetime


@dataclass(frozen=True)
class Outcome:
    done: bool  # False: skipped, nothing to act on
    message: str


Action = Callable[[Context], Outcome]


def rollback(c: Context) -> Outcome:
    deployment = _deployment(c)
    if deployment is None:
        return Outcome(False, "no deployment to roll back: the alert names none")
    try:
        return Outcome(True, c.operations.rollback(c.conn, deployment, actor=c.actor, now=c.now))
    except InvalidInput as exc:
        return Outcome(False, f"nothing to roll back: {exc}")


def scale(c: Context) -> Outcome:
    target = _version(c)
    if target is None:
        return Outcome(False, "no version to scale: the alert names no model and version")
    model, version = target
    asked = replica_target(c.conn, model, version)
    current = asked.replicas if asked.replicas is not None else 1
    wanted = c.step.replicas if c.step.replicas is not None else current + (c.step.add or 0)
    wanted = min(wanted, c.step.max_replicas)
    if wanted == current:
        return Outcome(False, f"{model}/{version} already runs {current} replica(s)")
    _set(c, model, version, replace(asked, replicas=wanted))
    return Outcome(True, f"scaled {model}/{version} from {current} to {wanted} replicas")


def restart(c: Context) -> Outcome:
    target = _version(c)
    if target is None:
        return Outcome(False, "no version to restart: the alert names no model and version")
    model, version = target
    asked = replica_target(c.conn, model, version)
    _set(c, model, version, replace(asked, restarts=asked.restarts + 1))
    return Outcome(True, f"restarted the replicas of {model}/{version}")


def failover(c: Context) -> Outcome:
    region = c.step.region or c.labels.get("region")
    if region is None or c.step.to_region is None:
        return Outcome(False, "failover needs a region (from the alert) and to_region")
    if region == c.step.to_region:
        return Outcome(False, f"{region} cannot fail over to itself")
    old = c.conn.execute(
        select(region_status).where(region_status.c.region == region)
    ).one_or_none()
    if old is not None and old.status == "down" and old.failover_to == c.step.to_region:
        return Outcome(False, f"{region} is failed over to {c.step.to_region} already")
    reason = f"{c.actor}: {c.labels.get('alertname', 'alert')}"
    upsert(
        c.conn,
        region_status,
        [
            {
                "region": region,
                "status": "down",
                "failover_to": c.step.to_region,
                "reason": reason,
                "updated_at": c.now,
            }
        ],
        unique=["region"],
        update=["status", "failover_to", "reason", "updated_at"],
    )
    _audit(c, "failover", "Region", region, {"status": "down", "failover_to": c.step.to_region})
    return Outcome(True, f"failed {region} over to {c.step.to_region}")


def throttle(c: Context) -> Outcome:
    tenant = c.step.tenant or c.labels.get("tenant")
    if tenant is None:
        return Outcome(False, "no tenant to throttle: the alert names none")
    until = c.now + c.step.duration
    upsert(
        c.conn,
        tenant_throttles,
        [{"tenant": tenant, "factor": c.step.factor, "until": until, "reason": c.actor}],
        unique=["tenant"],
        update=["factor", "until", "reason"],
    )
    _audit(c, "throttle", "Tenant", tenant, {"factor": c.step.factor, "until": until.isoformat()})
    return Outcome(
        True, f"throttled {tenant} to {c.step.factor:.0%} of its quota until {until:%H:%M}"
    )


def stop_shadow(c: Context) -> Outcome:
    deployment = _deployment(c)
    split = read_splits(c.conn).get(deployment or "")
    if deployment is None or split is None or split.shadow_percent == 0:
        return Outcome(False, "no shadow traffic to stop")
    write_split(c.conn, replace(split, shadow_percent=0.0), actor=c.actor, now=c.now)
    return Outcome(True, f"stopped the shadow traffic of {deployment}")


def open_review(c: Context) -> Outcome:
    tenant, model = c.step.tenant or c.labels.get("tenant"), c.labels.get("model")
    if tenant is None or model is None:
        return Outcome(False, "no tenant and model to review: the alert names none")
    opened = c.operations.open_review(c.conn, tenant, model, since=c.alert_started_at, now=c.now)
    return Outcome(True, f"opened {opened} review item(s) for {tenant} {model}")


ACTIONS: dict[str, Action] = {
    "rollback": rollback,
    "scale": scale,
    "restart": restart,
    "failover": failover,
    "throttle": throttle,
    "stop_shadow": stop_shadow,
    "open_review": open_review,
}


def _deployment(c: Context) -> str | None:
    """The step's deployment, the alert's, or the one serving the alert's model to its tenant."""
    if c.step.deployment or c.labels.get("deployment"):
        return c.step.deployment or c.labels.get("deployment")
    model, tenant = c.labels.get("model"), c.labels.get("tenant")
    if model is None:
        return None
    for reg in load_state(c.conn).of_kind(Deployment):
        d = reg.resource
        assert isinstance(d, Deployment)
        serves = tenant is None or d.spec.tenants == "all" or tenant in d.spec.tenants
        if d.spec.model == model and serves:
            return d.name
    return None


def _version(c: Context) -> tuple[str, str] | None:
    model, version = c.labels.get("model"), c.labels.get("version")
    return (model, version) if model and version else None


def _set(c: Context, model: str, version: str, target: ReplicaTarget) -> None:
    set_replica_target(c.conn, model, version, target, actor=c.actor, action="replicas", now=c.now)


def _audit(c: Context, action: str, kind: str, name: str, new: dict[str, object]) -> None:
    # The audit entry also moves the store's generation: the gateways reload and apply it.
    record(c.conn, at=c.now, actor=c.actor, action=action, kind=kind, name=name, old=None, new=new)
