"""The route table: which version serves each (tenant, model), and who each key belongs to.

The gateway never queries the store per request. It holds one immutable `RouteTable` and
swaps in a new one when the store changes; a request keeps the table it started with, so a
route change never fails a request in flight.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import Connection, func, select

from modelfleet.config.schema import Deployment, Model, ModelVersion, Tenant
from modelfleet.gateway.quotas import Quota
from modelfleet.registry import load_state
from modelfleet.registry.keys import StoredKey, active_keys
from modelfleet.registry.resources import FleetState
from modelfleet.runtime.backend import VersionSpec
from modelfleet.store.tables import audit_log


@dataclass(frozen=True)
class Route:
    """Where one tenant's requests for one model go."""

    tenant: str
    tier: str
    deployment: str
    version: VersionSpec
    quota: Quota | None = None  # the tenant's own, when fleet.yaml gives one


@dataclass(frozen=True)
class RouteTable:
    """An immutable snapshot of routes and keys at one `generation` of the store."""

    generation: int = 0
    tiers: Mapping[str, str] = field(default_factory=dict)
    routes: Mapping[tuple[str, str], Route] = field(default_factory=dict)
    keys: Mapping[str, StoredKey] = field(default_factory=dict)

    def route(self, tenant: str, model: str, version: str | None = None) -> Route | None:
        """The tenant's route to `model` (and to `version`, if named), or None: a model not
        deployed for the tenant does not exist for it."""
        found = self.routes.get((tenant, model))
        if found is None or (version is not None and found.version.version != version):
            return None
        return found

    def versions(self) -> dict[tuple[str, str], VersionSpec]:
        """Every version some route needs, keyed by (model, version)."""
        return {(r.version.model, r.version.version): r.version for r in self.routes.values()}


def build_route_table(state: FleetState, keys: list[StoredKey], generation: int) -> RouteTable:
    """Routes from the registry's state: each deployment's stable version for its tenants."""
    tenants = [r.resource for r in state.of_kind(Tenant) if isinstance(r.resource, Tenant)]
    tiers = {t.name: t.spec.tier for t in tenants}
    quotas = {
        t.name: Quota(q.requests_per_second, q.burst, q.max_in_flight)
        for t in tenants
        if (q := t.spec.quota) is not None
    }
    routes: dict[tuple[str, str], Route] = {}
    for reg in state.of_kind(Deployment):
        deployment = reg.resource
        assert isinstance(deployment, Deployment)
        spec = _version_spec(state, deployment.spec.model, deployment.spec.stable_version)
        if spec is None:
            continue
        served = list(tiers) if deployment.spec.tenants == "all" else deployment.spec.tenants
        for tenant in served:
            routes[(tenant, spec.model)] = Route(
                tenant, tiers[tenant], deployment.name, spec, quotas.get(tenant)
            )
    return RouteTable(generation, tiers, routes, {k.prefix: k for k in keys})


def _version_spec(state: FleetState, model: str, version: str) -> VersionSpec | None:
    m = state.get(("Model", model))
    v = state.get(("ModelVersion", model, version))
    if m is None or v is None or v.artifact_sha256 is None:
        return None
    assert isinstance(m.resource, Model) and isinstance(v.resource, ModelVersion)
    labels = m.resource.spec.output.labels
    return VersionSpec(
        model=model,
        version=version,
        format=v.resource.spec.format,
        artifact=v.resource.spec.artifact,
        sha256=v.artifact_sha256,
        features=tuple(m.resource.spec.input.features),
        labels=tuple(labels) if labels is not None else None,
        reference_data=v.resource.spec.reference_data,
    )


def store_generation(conn: Connection) -> int:
    """A number that grows with every change to the registry: its newest audit entry.

    Every change (apply, key issued or revoked) writes an audit row in the same transaction,
    so checking this one indexed value is enough to know whether to reload.
    """
    return int(conn.execute(select(func.coalesce(func.max(audit_log.c.id), 0))).scalar_one())


def load_route_table(conn: Connection) -> RouteTable:
    """Read the registry and keys in one transaction and build the table."""
    generation = store_generation(conn)
    return build_route_table(load_state(conn), active_keys(conn), generation)
