"""The declared resources as the store holds them: reading, writing, and their comparable state.

A resource's *state* is the JSON-ready dict that apply compares to decide created, changed or
unchanged, and that the audit log records as old and new.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from modelfleet.config.schema import (
    DECLARED_KINDS,
    Deployment,
    Model,
    ModelVersion,
    Resource,
    Tenant,
)
from modelfleet.store.tables import (
    declarations,
    deployment_tenants,
    deployments,
    model_versions,
    models,
    tenants,
)

Identity = tuple[str, ...]


@dataclass(frozen=True)
class Registered:
    """A resource as stored, with what the store adds to it."""

    resource: Resource
    created_at: datetime
    updated_at: datetime
    artifact_sha256: str | None = None  # model versions only
    serving_version: str | None = None  # deployments only: the stable version serving now
    awaiting_rollout: bool = False  # deployments only: a new `version` awaits its rollout

    @property
    def state(self) -> dict[str, Any]:
        return state_of(self.resource, self.artifact_sha256)


@dataclass
class FleetState:
    """Everything declared in the store, keyed by identity: (kind, name) or (kind, model, name)."""

    resources: dict[Identity, Registered] = field(default_factory=dict)

    def get(self, identity: Identity) -> Registered | None:
        return self.resources.get(identity)

    def of_kind(self, kind: type[Resource]) -> list[Registered]:
        return [r for r in self.resources.values() if isinstance(r.resource, kind)]


def identity_of(resource: Resource) -> Identity:
    if isinstance(resource, ModelVersion):
        return (resource.kind, *resource.key)
    return (resource.kind, resource.metadata.name)


def state_of(resource: Resource, artifact_sha256: str | None = None) -> dict[str, Any]:
    """What apply compares and audit records: labels, spec, and a version's artifact hash."""
    out: dict[str, Any] = {
        "labels": dict(resource.metadata.labels),
        # By alias: fields named after Python keywords (`for`, `continue`, `from`) read back.
        "spec": resource.spec.model_dump(mode="json", by_alias=True),
    }
    if isinstance(resource, ModelVersion):
        out["artifact_sha256"] = artifact_sha256
    return out


def load_state(conn: Connection) -> FleetState:
    """Read every declared resource."""
    state = FleetState()
    everything = [
        *_tenants(conn),
        *_models(conn),
        *_versions(conn),
        *_deployments(conn),
        *_declared(conn),
    ]
    for reg in everything:
        state.resources[identity_of(reg.resource)] = reg
    return state


def write(
    conn: Connection,
    resource: Resource,
    *,
    exists: bool,
    now: datetime,
    artifact_sha256: str | None = None,
) -> None:
    """Insert or update one resource's row(s)."""
    meta: dict[str, Any] = {"labels": dict(resource.metadata.labels), "updated_at": now}
    if isinstance(resource, Tenant):
        s = resource.spec
        values: dict[str, Any] = {
            "display_name": s.display_name,
            "tier": s.tier,
            "home_region": s.home_region,
            "contact_email": str(s.contact_email),
            "quota": s.quota.model_dump(mode="json") if s.quota is not None else None,
            "residency": s.residency,
            "cross_region": s.cross_region,
        }
        _upsert(conn, tenants, {"name": resource.name}, {**values, **meta}, exists, now)
    elif isinstance(resource, Model):
        values = {
            "description": resource.spec.description,
            "input_schema": resource.spec.input.model_dump(mode="json"),
            "output_schema": resource.spec.output.model_dump(mode="json"),
            "monitoring": resource.spec.monitoring.model_dump(mode="json"),
        }
        _upsert(conn, models, {"name": resource.name}, {**values, **meta}, exists, now)
    elif isinstance(resource, ModelVersion):
        v = resource.spec
        values = {
            "format": v.format,
            "artifact_path": v.artifact,
            "artifact_sha256": artifact_sha256,
            "reference_data": v.reference_data,
            "evaluation_data": v.evaluation_data,
            "notes": v.notes,
            "resources": v.resources.model_dump(mode="json"),
        }
        key = {"model": v.model, "name": resource.name}
        _upsert(conn, model_versions, key, {**values, **meta}, exists, now)
    elif isinstance(resource, Deployment):
        d = resource.spec
        values = {
            "model": d.model,
            "all_tenants": d.tenants == "all",
            "declared_version": d.version,
            "strategy": d.strategy.model_dump(mode="json") if d.strategy is not None else None,
            "gate": d.gate.model_dump(mode="json"),
            "sticky_key": d.sticky_key,
            "pins": dict(d.pins),
            "autoscaling": d.autoscaling.model_dump(mode="json") if d.autoscaling else None,
        }
        # A new deployment serves its version at once; a changed version is rolled out by the
        # rollout controller when a strategy is declared, and switched at once otherwise.
        if not exists or d.strategy is None:
            values["stable_version"] = d.version
        else:
            declared = conn.execute(
                select(deployments.c.declared_version).where(deployments.c.name == resource.name)
            ).scalar_one()
            if declared != d.version:
                values["awaiting_rollout"] = True
        _upsert(conn, deployments, {"name": resource.name}, {**values, **meta}, exists, now)
        conn.execute(
            delete(deployment_tenants).where(deployment_tenants.c.deployment == resource.name)
        )
        if d.tenants != "all":
            conn.execute(
                insert(deployment_tenants),
                [{"deployment": resource.name, "tenant": t} for t in d.tenants],
            )

    else:
        key = {"kind": resource.kind, "name": resource.name}
        values = {"spec": resource.spec.model_dump(mode="json", by_alias=True)}
        _upsert(conn, declarations, key, {**values, **meta}, exists, now)


def _upsert(
    conn: Connection,
    table: Any,
    key: dict[str, Any],
    values: dict[str, Any],
    exists: bool,
    now: datetime,
) -> None:
    if exists:
        where = [table.c[k] == v for k, v in key.items()]
        conn.execute(update(table).where(*where).values(**values))
    else:
        conn.execute(insert(table).values(**key, **values, created_at=now))


def _metadata(row: Any) -> dict[str, Any]:
    return {"name": row.name, "labels": row.labels}


def _tenants(conn: Connection) -> list[Registered]:
    rows = conn.execute(select(tenants).order_by(tenants.c.name))
    return [
        Registered(
            Tenant(
                kind="Tenant",
                metadata=_metadata(r),
                spec={
                    "display_name": r.display_name,
                    "tier": r.tier,
                    "home_region": r.home_region,
                    "contact_email": r.contact_email,
                    "quota": r.quota,
                    "residency": r.residency,
                    "cross_region": r.cross_region,
                },
            ),
            r.created_at,
            r.updated_at,
        )
        for r in rows
    ]


def _models(conn: Connection) -> list[Registered]:
    rows = conn.execute(select(models).order_by(models.c.name))
    return [
        Registered(
            Model(
                kind="Model",
                metadata=_metadata(r),
                spec={
                    "description": r.description,
                    "input": r.input_schema,
                    "output": r.output_schema,
                    **({"monitoring": r.monitoring} if r.monitoring is not None else {}),
                },
            ),
            r.created_at,
            r.updated_at,
        )
        for r in rows
    ]


def _versions(conn: Connection) -> list[Registered]:
    rows = conn.execute(
        select(model_versions).order_by(model_versions.c.model, model_versions.c.id)
    )
    return [
        Registered(
            ModelVersion(
                kind="ModelVersion",
                metadata=_metadata(r),
                spec={
                    "model": r.model,
                    "artifact": r.artifact_path,
                    "format": r.format,
                    "reference_data": r.reference_data,
                    "evaluation_data": r.evaluation_data,
                    "notes": r.notes,
                    **({"resources": r.resources} if r.resources is not None else {}),
                },
            ),
            r.created_at,
            r.updated_at,
            artifact_sha256=r.artifact_sha256,
        )
        for r in rows
    ]


def _deployments(conn: Connection) -> list[Registered]:
    served: dict[str, list[str]] = {}
    for deployment, tenant in conn.execute(
        select(deployment_tenants.c.deployment, deployment_tenants.c.tenant).order_by(
            deployment_tenants.c.tenant
        )
    ):
        served.setdefault(deployment, []).append(tenant)
    rows = conn.execute(select(deployments).order_by(deployments.c.name))
    return [
        Registered(
            Deployment(
                kind="Deployment",
                metadata=_metadata(r),
                spec={
                    "model": r.model,
                    "tenants": "all" if r.all_tenants else served.get(r.name, []),
                    "version": r.declared_version,
                    "strategy": r.strategy,
                    "gate": r.gate,
                    "sticky_key": r.sticky_key,
                    "pins": r.pins,
                    "autoscaling": r.autoscaling,
                },
            ),
            r.created_at,
            r.updated_at,
            serving_version=r.stable_version,
            awaiting_rollout=r.awaiting_rollout,
        )
        for r in rows
    ]


def _declared(conn: Connection) -> list[Registered]:
    rows = conn.execute(select(declarations).order_by(declarations.c.kind, declarations.c.name))
    return [
        Registered(
            DECLARED_KINDS[r.kind].model_validate(
                {"kind": r.kind, "metadata": _metadata(r), "spec": r.spec}
            ),
            r.created_at,
            r.updated_at,
        )
        for r in rows
    ]
