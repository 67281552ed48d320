"""`modelfleet apply`: make the store hold what a fleet file declares, all or nothing.

Apply works in two phases, like `kubectl apply --dry-run=server` followed by the real thing:
the plan checks everything against the file *and* the store (references, immutable versions,
ambiguous routes) and reports every problem with its location; only a clean plan is written,
in the same transaction that read the state it was planned against.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from modelfleet.config.alerting import Route
from modelfleet.config.loader import Document, FieldPath, Fleet, Source
from modelfleet.config.schema import (
    DECLARED_KINDS,
    SLA,
    AlertRouting,
    CapacityPolicy,
    Deployment,
    EscalationPolicy,
    InstanceType,
    Model,
    ModelVersion,
    OnCallSchedule,
    Receiver,
    Region,
    Resource,
    Tenant,
)
from modelfleet.errors import ConfigIssue, FleetConfigError
from modelfleet.registry import audit, resources
from modelfleet.registry.artifacts import resolve, sha256_of, split_callable
from modelfleet.registry.resources import FleetState, Identity
from modelfleet.store import Store

# Referenced kinds are written before the kinds that refer to them.
_ORDER: list[type[Resource]] = [Tenant, Model, ModelVersion, Deployment, *DECLARED_KINDS.values()]


class Action(StrEnum):
    CREATED = "created"
    CHANGED = "changed"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Change:
    """What apply did (or, on a dry run, would do) to one resource."""

    action: Action
    kind: str
    name: str
    old: dict[str, Any] | None
    new: dict[str, Any]

    def changed_fields(self) -> list[str]:
        return audit.changed_fields(self.old, self.new)


@dataclass(frozen=True)
class _Desired:
    document: Document
    resource: Resource  # with paths resolved and deployment tenants sorted
    artifact_sha256: str | None

    @property
    def identity(self) -> Identity:
        return resources.identity_of(self.resource)


def apply_fleet(
    store: Store, fleet: Fleet, *, actor: str, now: datetime, dry_run: bool = False
) -> list[Change]:
    """Apply every resource of `fleet` in one transaction; raise FleetConfigError on any problem.

    A resource identical to the stored one is left alone, so applying a file twice changes
    nothing the second time. Resources in the store but not in the file are kept.
    """
    desired, problems = _prepare(fleet)
    # It reads the store, then writes: the write lock is taken first (see Store.begin).
    with store.begin(immediate=not dry_run) as conn:
        current = resources.load_state(conn)
        problems += _check(desired, current)
        if problems:
            raise FleetConfigError(problems)
        changes = [_change(d, current) for d in desired]
        if not dry_run:
            _write(conn, desired, changes, actor=actor, now=now)
    return changes


def _prepare(fleet: Fleet) -> tuple[list[_Desired], list[ConfigIssue]]:
    """Normalise each resource and fingerprint artifacts; file problems are located issues."""
    out: list[_Desired] = []
    problems: list[ConfigIssue] = []
    for kind in _ORDER:
        for doc in fleet.of_kind(kind):
            resource, sha = doc.resource, None
            if isinstance(resource, ModelVersion):
                resource, sha, found = _resolve_files(doc, resource)
                problems += found
            elif isinstance(resource, Deployment) and resource.spec.tenants != "all":
                spec = resource.spec.model_copy(update={"tenants": sorted(resource.spec.tenants)})
                resource = resource.model_copy(update={"spec": spec})
            out.append(_Desired(doc, resource, sha))
    return out, problems


def _resolve_files(
    doc: Document, version: ModelVersion
) -> tuple[ModelVersion, str | None, list[ConfigIssue]]:
    problems: list[ConfigIssue] = []
    resolved: dict[str, str | None] = {}
    artifact, function = split_callable(version.spec.artifact, version.spec.format)
    if version.spec.format == "python" and function is None:
        problems.append(
            doc.source.issue(("spec", "artifact"), "a python artifact is FILE.py:FUNCTION")
        )
    given_paths = {
        "artifact": artifact,
        "reference_data": version.spec.reference_data,
        "evaluation_data": version.spec.evaluation_data,
    }
    for field_name, given in given_paths.items():
        if given is None:
            resolved[field_name] = None
            continue
        path = resolve(given, doc.source.directory)
        resolved[field_name] = str(path)
        if not path.is_file():
            problems.append(doc.source.issue(("spec", field_name), f"file not found: {path}"))
    sha = None
    artifact_path = resolved["artifact"]
    if not problems and artifact_path is not None:
        sha = sha256_of(Path(artifact_path))
    if function is not None:
        resolved["artifact"] = f"{artifact_path}:{function}"
    spec = version.spec.model_copy(update=resolved)
    return version.model_copy(update={"spec": spec}), sha, problems


def _check(desired: list[_Desired], current: FleetState) -> list[ConfigIssue]:
    """Problems that need the store to see: references, immutability, ambiguous routes."""
    declared = {d.identity for d in desired} | set(current.resources)
    problems: list[ConfigIssue] = []
    for d in desired:
        r, source = d.resource, d.document.source
        if isinstance(r, ModelVersion):
            if ("Model", r.spec.model) not in declared:
                problems.append(source.issue(("spec", "model"), _missing("model", r.spec.model)))
            problems += _immutability(d, current)
        elif isinstance(r, Deployment):
            spec = r.spec
            if ("Model", spec.model) not in declared:
                problems.append(source.issue(("spec", "model"), _missing("model", spec.model)))
            else:
                wanted = [(("spec", "version"), spec.version)] + [
                    (("spec", "pins", tenant), version) for tenant, version in spec.pins.items()
                ]
                for path, version in wanted:
                    if ("ModelVersion", spec.model, version) not in declared:
                        problems.append(
                            source.issue(
                                path,
                                f"model {spec.model!r} has no version {version!r} "
                                "in the fleet file or the store",
                            )
                        )
            for tenant in spec.pins:
                if ("Tenant", tenant) not in declared:
                    problems.append(
                        source.issue(
                            ("spec", "pins", tenant), _missing("tenant", tenant), at_key=True
                        )
                    )
            as_declared = d.document.resource  # unsorted, so errors point at the right item
            if isinstance(as_declared, Deployment) and as_declared.spec.tenants != "all":
                for i, tenant in enumerate(as_declared.spec.tenants):
                    if ("Tenant", tenant) not in declared:
                        problems.append(
                            source.issue(("spec", "tenants", i), _missing("tenant", tenant))
                        )
    problems += _overlapping_routes(desired, current)
    problems += _alerting_references(desired, declared)
    problems += _region_references(desired, current)
    return problems


def _region_references(desired: list[_Desired], current: FleetState) -> list[ConfigIssue]:
    """Once any Region is declared, a tenant's home region is one, its residency is that
    region's jurisdiction, and a region fails over to another declared region."""
    regions = {
        r.resource.name: r.resource.spec
        for r in current.of_kind(Region)
        if isinstance(r.resource, Region)
    }
    regions |= {d.resource.name: d.resource.spec for d in desired if isinstance(d.resource, Region)}
    problems: list[ConfigIssue] = []
    if not regions:
        return problems
    for d in desired:
        r, source = d.resource, d.document.source
        if isinstance(r, Tenant):
            home = regions.get(r.spec.home_region)
            if home is None:
                problems.append(
                    source.issue(
                        ("spec", "home_region"),
                        f"region {r.spec.home_region!r} is not declared; declared regions: "
                        + ", ".join(sorted(regions)),
                    )
                )
            elif r.spec.residency is not None and r.spec.residency != home.jurisdiction:
                problems.append(
                    source.issue(
                        ("spec", "residency"),
                        f"residency {r.spec.residency!r} is not the jurisdiction of the home "
                        f"region {r.spec.home_region!r} ({home.jurisdiction}): the tenant's "
                        "data would be kept outside its residency",
                    )
                )
        elif isinstance(r, Region) and r.spec.failover_to is not None:
            if r.spec.failover_to not in regions:
                problems.append(
                    source.issue(("spec", "failover_to"), _missing("region", r.spec.failover_to))
                )
            elif r.spec.failover_to == r.name:
                problems.append(
                    source.issue(("spec", "failover_to"), "a region cannot fail over to itself")
                )
    return problems


def _alerting_references(desired: list[_Desired], declared: set[Identity]) -> list[ConfigIssue]:
    """Receivers name escalation policies, policies name schedules, routes name receivers."""
    problems: list[ConfigIssue] = []

    def need(source: Source, path: FieldPath, kind: type[Resource], name: str | None) -> None:
        if name is not None and (kind.__name__, name) not in declared:
            what = kind.__name__
            problems.append(source.issue(path, _missing(what, name)))

    routings = [i for i in declared if i[0] == "AlertRouting"]
    for d in desired:
        r, source = d.resource, d.document.source
        if isinstance(r, CapacityPolicy):
            need(source, ("spec", "model"), Model, r.spec.model)
            need(source, ("spec", "instance_type"), InstanceType, r.spec.instance_type)
        elif isinstance(r, SLA):
            for i, tenant in enumerate(r.spec.tenants):
                need(source, ("spec", "tenants", i), Tenant, tenant)
            for i, model in enumerate(r.spec.models):
                need(source, ("spec", "models", i), Model, model)
        elif isinstance(r, Receiver):
            need(source, ("spec", "escalation"), EscalationPolicy, r.spec.escalation)
        elif isinstance(r, EscalationPolicy):
            for i, level in enumerate(r.spec.levels):
                need(source, ("spec", "levels", i, "schedule"), OnCallSchedule, level.schedule)
        elif isinstance(r, AlertRouting):
            if len(routings) > 1:
                others = ", ".join(sorted(i[1] for i in routings if i[1] != r.name))
                problems.append(
                    source.issue(
                        ("metadata", "name"),
                        f"a fleet has one AlertRouting; {others} is declared already",
                    )
                )
            need(source, ("spec", "receiver"), Receiver, r.spec.receiver)
            stack: list[tuple[FieldPath, Route]] = [
                (("spec", "routes", i), route) for i, route in enumerate(r.spec.routes)
            ]
            while stack:
                path, route = stack.pop()
                need(source, (*path, "receiver"), Receiver, route.receiver)
                stack += [((*path, "routes", i), sub) for i, sub in enumerate(route.routes)]
    return problems


def _missing(kind: str, name: str) -> str:
    return f"{kind} {name!r} is declared neither in the fleet file nor in the store"


def _immutability(d: _Desired, current: FleetState) -> list[ConfigIssue]:
    existing = current.get(d.identity)
    if existing is None or d.artifact_sha256 is None:
        return []
    assert isinstance(existing.resource, ModelVersion) and isinstance(d.resource, ModelVersion)
    model, name = d.resource.key
    source = d.document.source
    problems = []
    if existing.artifact_sha256 != d.artifact_sha256:
        problems.append(
            source.issue(
                ("spec", "artifact"),
                f"version {model}/{name} is registered with artifact sha256 "
                f"{existing.artifact_sha256}; this file has sha256 {d.artifact_sha256}. "
                "Versions are immutable: register the new artifact as a new version",
            )
        )
    if existing.resource.spec.format != d.resource.spec.format:
        problems.append(
            source.issue(
                ("spec", "format"),
                f"version {model}/{name} is registered as {existing.resource.spec.format!r}; "
                "versions are immutable",
            )
        )
    return problems


def _overlapping_routes(desired: list[_Desired], current: FleetState) -> list[ConfigIssue]:
    """Two deployments of one model may not serve the same tenant: routing would be ambiguous."""
    after: dict[str, Deployment] = {
        r.resource.name: r.resource
        for r in current.of_kind(Deployment)
        if isinstance(r.resource, Deployment)
    }
    located = {d.resource.name: d for d in desired if isinstance(d.resource, Deployment)}
    for name, d in located.items():
        assert isinstance(d.resource, Deployment)
        after[name] = d.resource
    problems = []
    for name, d in located.items():
        mine = d.resource
        assert isinstance(mine, Deployment)
        for other_name, other in sorted(after.items()):
            if other_name == name or other.spec.model != mine.spec.model:
                continue
            if mine.spec.tenants == "all" or other.spec.tenants == "all":
                shared = "all tenants"
            else:
                common = sorted(set(mine.spec.tenants) & set(other.spec.tenants))
                if not common:
                    continue
                shared = "tenants " + ", ".join(common)
            problems.append(
                d.document.source.issue(
                    ("spec", "tenants"),
                    f"deployment {other_name!r} already serves {shared} with model "
                    f"{mine.spec.model!r}; a tenant may reach a model through one deployment only",
                )
            )
    return problems


def _change(d: _Desired, current: FleetState) -> Change:
    existing = current.get(d.identity)
    new = resources.state_of(d.resource, d.artifact_sha256)
    name = "/".join(d.identity[1:])
    if existing is None:
        return Change(Action.CREATED, d.resource.kind, name, None, new)
    old = existing.state
    action = Action.UNCHANGED if old == new else Action.CHANGED
    return Change(action, d.resource.kind, name, old, new)


def _write(
    conn: Connection, desired: list[_Desired], changes: list[Change], *, actor: str, now: datetime
) -> None:
    for d, change in zip(desired, changes, strict=True):
        if change.action is Action.UNCHANGED:
            continue
        resources.write(
            conn,
            d.resource,
            exists=change.action is Action.CHANGED,
            now=now,
            artifact_sha256=d.artifact_sha256,
        )
        audit.record(
            conn,
            at=now,
            actor=actor,
            action="create" if change.action is Action.CREATED else "update",
            kind=change.kind,
            name=change.name,
            old=change.old,
            new=change.new,
        )
