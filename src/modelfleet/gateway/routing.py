"""The route table: which version serves each (tenant, model), and who each key belongs to.

The gateway never queries the store per request. It holds one immutable `RouteTable` and
swaps in a new one when the store changes; a request keeps the table it started with, so a
route change never fails a request in flight.

While a rollout runs, a route also names a candidate version and its share. Assignment is
sticky: a request's sticky value (its tenant, or a declared header such as a user id) hashes
to a bucket in [0, 10000), and the buckets below the canary's share go to the candidate. As
the share grows, buckets only ever move from stable to candidate, never back and forth.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from sqlalchemy import Connection, func, select

from modelfleet.config.schema import (
    Deployment,
    Model,
    ModelVersion,
    Region,
    ReplicaAutoscaling,
    Tenant,
)
from modelfleet.gateway.quotas import TIER_QUOTAS, Quota
from modelfleet.gateway.residency import Placement, RegionInfo, Regions
from modelfleet.registry import load_state
from modelfleet.registry.keys import StoredKey, active_keys
from modelfleet.registry.resources import FleetState
from modelfleet.registry.splits import TrafficSplit, read_splits
from modelfleet.runtime.backend import VersionSpec
from modelfleet.store.tables import audit_log, region_status, replica_targets, tenant_throttles

BUCKETS = 10_000


def bucket(seed: int, value: bytes) -> int:
    """The sticky bucket in [0, BUCKETS) of `value` for a rollout seeded `seed`."""
    return zlib.crc32(value, seed & 0xFFFFFFFF) % BUCKETS


@dataclass(frozen=True)
class Route:
    """Where one tenant's requests for one model go: the stable version, and while a rollout
    runs, the candidate (answering `canary_percent` of requests, or shadowing them)."""

    tenant: str
    tier: str
    deployment: str
    version: VersionSpec
    quota: Quota | None = None  # the tenant's own, when fleet.yaml gives one
    canary: VersionSpec | None = None
    canary_percent: float = 0.0
    shadow: VersionSpec | None = None
    shadow_percent: float = 0.0
    sticky_header: bytes | None = None  # lower-case header name; None: the tenant is the key
    seed: int = 0

    def assign(self, sticky: bytes | None) -> VersionSpec:
        """The version answering a request whose sticky value is `sticky` (None: the tenant)."""
        if self.canary is None or self.canary_percent <= 0.0:
            return self.version
        value = sticky if sticky is not None else self.tenant.encode()
        if bucket(self.seed, value) < self.canary_percent * (BUCKETS // 100):
            return self.canary
        return self.version


@dataclass(frozen=True)
class RouteTable:
    """An immutable snapshot of routes and keys at one `generation` of the store."""

    generation: int = 0
    tiers: Mapping[str, str] = field(default_factory=dict)
    routes: Mapping[tuple[str, str], Route] = field(default_factory=dict)
    keys: Mapping[str, StoredKey] = field(default_factory=dict)
    warm: tuple[VersionSpec, ...] = ()  # loaded, without traffic
    # What remediation asked of the versions, by (model, version): a replica count, and a
    # restart counter (a version is redeployed each time its counter moves).
    replicas: Mapping[tuple[str, str], int] = field(default_factory=dict)
    restarts: Mapping[tuple[str, str], int] = field(default_factory=dict)
    # Where each tenant is served: its home region, residency, and the regions declared down.
    regions: Regions = field(default_factory=Regions)

    def route(self, tenant: str, model: str) -> Route | None:
        """The tenant's route to `model`, or None: a model not deployed for the tenant does not
        exist for it."""
        return self.routes.get((tenant, model))

    def versions(self) -> dict[tuple[str, str], VersionSpec]:
        """Every version to keep loaded, keyed by (model, version): those some route answers
        or shadows with, and the warm ones."""
        out: dict[tuple[str, str], VersionSpec] = {}
        for route in self.routes.values():
            for spec in (route.version, route.canary, route.shadow):
                if spec is not None:
                    out.setdefault((spec.model, spec.version), spec)
        for spec in self.warm:
            out.setdefault((spec.model, spec.version), spec)
        return out


def build_route_table(
    state: FleetState,
    keys: list[StoredKey],
    generation: int,
    splits: Mapping[str, TrafficSplit] | None = None,
    throttles: Mapping[str, float] | None = None,
) -> RouteTable:
    """Routes from the registry's state: each deployment's stable version for its tenants (or
    the version a tenant is pinned to), split with a candidate while a rollout runs."""
    tenants = [r.resource for r in state.of_kind(Tenant) if isinstance(r.resource, Tenant)]
    tiers = {t.name: t.spec.tier for t in tenants}
    quotas = {
        t.name: Quota(q.requests_per_second, q.burst, q.max_in_flight)
        for t in tenants
        if (q := t.spec.quota) is not None
    }
    for tenant, factor in (throttles or {}).items():  # a runbook cut the tenant's quota
        if tenant in tiers:
            base = quotas.get(tenant) or TIER_QUOTAS[tiers[tenant]]
            quotas[tenant] = throttled(base, factor)
    routes: dict[tuple[str, str], Route] = {}
    warm: list[VersionSpec] = []
    for reg in state.of_kind(Deployment):
        deployment = reg.resource
        assert isinstance(deployment, Deployment) and reg.serving_version is not None
        d = deployment.spec
        spec = version_spec(state, d.model, reg.serving_version, d.autoscaling)
        if spec is None:
            continue
        split = (splits or {}).get(deployment.name)
        candidate = version_spec(state, d.model, split.candidate, d.autoscaling) if split else None
        split_route = Route(tenant="", tier="", deployment=deployment.name, version=spec)
        if split is not None and candidate is not None:
            warm += [
                w
                for v in split.warm
                if (w := version_spec(state, d.model, v, d.autoscaling)) is not None
            ]
            split_route = replace(
                split_route,
                canary=candidate if split.canary_percent > 0 else None,
                canary_percent=split.canary_percent,
                shadow=candidate if split.shadow_percent > 0 else None,
                shadow_percent=split.shadow_percent,
                sticky_header=None if d.sticky_key == "tenant" else d.sticky_key.lower().encode(),
                seed=split.seed,
            )
        served = list(tiers) if d.tenants == "all" else d.tenants
        for tenant in served:
            route = replace(
                split_route, tenant=tenant, tier=tiers[tenant], quota=quotas.get(tenant)
            )
            pinned = d.pins.get(tenant)
            if pinned is not None:  # a tenant's own version: outside any rollout
                own = version_spec(state, d.model, pinned, d.autoscaling)
                if own is None:
                    continue
                route = Route(tenant, tiers[tenant], deployment.name, own, quotas.get(tenant))
            routes[(tenant, d.model)] = route
    return RouteTable(generation, tiers, routes, {k.prefix: k for k in keys}, tuple(warm))


def version_spec(
    state: FleetState,
    model: str,
    version: str,
    autoscaling: ReplicaAutoscaling | None = None,
) -> VersionSpec | None:
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
        low_confidence=m.resource.spec.monitoring.quality.low_confidence,
        resources=v.resource.spec.resources,
        autoscaling=autoscaling,
    )


def store_generation(conn: Connection) -> int:
    """A number that grows with every change to the registry: its newest audit entry.

    Every change (apply, key issued or revoked) writes an audit row in the same transaction,
    so checking this one indexed value is enough to know whether to reload.
    """
    return int(conn.execute(select(func.coalesce(func.max(audit_log.c.id), 0))).scalar_one())


def load_route_table(conn: Connection) -> RouteTable:
    """Read the registry, keys and remediation's requests in one transaction; build the table."""
    generation = store_generation(conn)
    throttles = {r.tenant: r.factor for r in conn.execute(select(tenant_throttles))}
    state = load_state(conn)
    table = build_route_table(state, active_keys(conn), generation, read_splits(conn), throttles)
    targets = list(conn.execute(select(replica_targets)))
    down = {
        r.region: r.failover_to
        for r in conn.execute(select(region_status).where(region_status.c.status == "down"))
    }
    return replace(
        table,
        replicas={(r.model, r.version): r.replicas for r in targets if r.replicas is not None},
        restarts={(r.model, r.version): r.restarts for r in targets},
        regions=regions_of(state, down),
    )


def regions_of(state: FleetState, down: Mapping[str, str | None]) -> Regions:
    """The declared regions, each tenant's placement, and the regions declared down (with the
    failover region their status names, if any)."""
    declared = {
        r.resource.name: RegionInfo(
            r.resource.spec.jurisdiction, r.resource.spec.url, r.resource.spec.failover_to
        )
        for r in state.of_kind(Region)
        if isinstance(r.resource, Region)
    }
    tenants = {
        r.resource.name: Placement(
            r.resource.spec.home_region, r.resource.spec.residency, r.resource.spec.cross_region
        )
        for r in state.of_kind(Tenant)
        if isinstance(r.resource, Tenant)
    }
    return Regions(declared, dict(down), tenants)


def throttled(quota: Quota, factor: float) -> Quota:
    """`quota` cut to `factor` of itself (at least one request in flight)."""
    return Quota(
        quota.rate * factor,
        max(1.0, quota.burst * factor),
        max(1, int(quota.max_in_flight * factor)),
    )
