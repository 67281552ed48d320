"""Applying fleet files: all or nothing, idempotent, located errors, immutable versions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from modelfleet.clock import VirtualClock
from modelfleet.config import load_fleet
from modelfleet.errors import FleetConfigError
from modelfleet.registry import Action, apply_fleet, latest, load_state
from modelfleet.registry.artifacts import sha256_of
from modelfleet.store import Store
from tests.registry.conftest import dump

ACTOR = "alice"


def apply(
    store: Store, fleet_dir: Path, clock: VirtualClock, **kw: bool
) -> list[tuple[str, str, Action]]:
    changes = apply_fleet(
        store, load_fleet([fleet_dir / "fleet.yaml"]), actor=ACTOR, now=clock.now(), **kw
    )
    return [(c.kind, c.name, c.action) for c in changes]


def edit(fleet_dir: Path, old: str, new: str) -> None:
    path = fleet_dir / "fleet.yaml"
    text_ = path.read_text()
    assert old in text_
    path.write_text(text_.replace(old, new))


def test_first_apply_creates_everything_in_dependency_order(
    store: Store, fleet_dir: Path, clock: VirtualClock
) -> None:
    assert apply(store, fleet_dir, clock) == [
        ("Tenant", "acme", Action.CREATED),
        ("Tenant", "bolt", Action.CREATED),
        ("Model", "digits", Action.CREATED),
        ("ModelVersion", "digits/v1", Action.CREATED),
        ("Deployment", "digits-prod", Action.CREATED),
    ]
    with store.begin() as conn:
        state = load_state(conn)
    version = state.get(("ModelVersion", "digits", "v1"))
    assert version is not None
    assert version.artifact_sha256 == sha256_of(fleet_dir / "v1.bin")
    assert version.resource.spec.artifact == str(fleet_dir / "v1.bin")  # type: ignore[union-attr]
    deployment = state.get(("Deployment", "digits-prod"))
    assert deployment is not None and deployment.resource.spec.tenants == ["acme", "bolt"]  # type: ignore[union-attr]
    assert version.created_at == clock.now()


def test_second_apply_of_the_same_file_changes_nothing(
    store: Store, fleet_dir: Path, clock: VirtualClock
) -> None:
    apply(store, fleet_dir, clock)
    before = dump(store)
    clock.advance(timedelta(hours=1))
    assert {action for _, _, action in apply(store, fleet_dir, clock)} == {Action.UNCHANGED}
    assert dump(store) == before


def test_a_change_is_applied_and_audited_with_old_and_new(
    store: Store, fleet_dir: Path, clock: VirtualClock
) -> None:
    apply(store, fleet_dir, clock)
    edit(fleet_dir, "tier: free", "tier: standard")
    clock.advance(timedelta(minutes=5))
    changes = apply_fleet(
        store, load_fleet([fleet_dir / "fleet.yaml"]), actor="bob", now=clock.now()
    )
    [changed] = [c for c in changes if c.action is Action.CHANGED]
    assert (changed.kind, changed.name, changed.changed_fields()) == (
        "Tenant",
        "bolt",
        ["spec.tier"],
    )
    with store.begin() as conn:
        [entry] = latest(conn, limit=1)
        bolt = load_state(conn).get(("Tenant", "bolt"))
    assert (entry.actor, entry.action, entry.kind, entry.name) == (
        "bob",
        "update",
        "Tenant",
        "bolt",
    )
    assert entry.at == clock.now()
    assert entry.old is not None and entry.old["spec"]["tier"] == "free"
    assert entry.new is not None and entry.new["spec"]["tier"] == "standard"
    assert bolt is not None and bolt.updated_at == clock.now() and bolt.created_at < clock.now()


def test_every_created_or_changed_resource_has_one_audit_row(
    store: Store, fleet_dir: Path, clock: VirtualClock
) -> None:
    apply(store, fleet_dir, clock)
    edit(fleet_dir, "display_name: Acme,", "display_name: Acme Corp,")
    edit(fleet_dir, "tenants: [bolt, acme]", "tenants: all")
    apply(store, fleet_dir, clock)
    apply(store, fleet_dir, clock)
    with store.begin() as conn:
        entries = latest(conn, limit=100)
    assert sorted((e.action, e.kind, e.name) for e in entries) == sorted(
        [
            ("create", "Tenant", "acme"),
            ("create", "Tenant", "bolt"),
            ("create", "Model", "digits"),
            ("create", "ModelVersion", "digits/v1"),
            ("create", "Deployment", "digits-prod"),
            ("update", "Tenant", "acme"),
            ("update", "Deployment", "digits-prod"),
        ]
    )


def test_dry_run_writes_nothing(store: Store, fleet_dir: Path, clock: VirtualClock) -> None:
    before = dump(store)
    assert {a for _, _, a in apply(store, fleet_dir, clock, dry_run=True)} == {Action.CREATED}
    assert dump(store) == before


def test_version_cannot_be_silently_replaced(
    store: Store, fleet_dir: Path, clock: VirtualClock
) -> None:
    apply(store, fleet_dir, clock)
    old_sha = sha256_of(fleet_dir / "v1.bin")
    (fleet_dir / "v1.bin").write_bytes(b"a different model")
    new_sha = sha256_of(fleet_dir / "v1.bin")
    before = dump(store)
    with pytest.raises(FleetConfigError) as info:
        apply(store, fleet_dir, clock)
    [issue] = info.value.issues
    assert (issue.line, issue.field) == (18, "spec.artifact")
    assert old_sha in issue.message and new_sha in issue.message
    assert dump(store) == before


def test_version_notes_may_change_but_not_its_format(
    store: Store, fleet_dir: Path, clock: VirtualClock
) -> None:
    apply(store, fleet_dir, clock)
    edit(fleet_dir, "format: sklearn,", "format: sklearn, notes: retrained on May data,")
    assert ("ModelVersion", "digits/v1", Action.CHANGED) in apply(store, fleet_dir, clock)
    edit(fleet_dir, "format: sklearn,", "format: onnx,")
    with pytest.raises(
        FleetConfigError, match="spec.format: version digits/v1 is registered as 'sklearn'"
    ):
        apply(store, fleet_dir, clock)


def test_references_are_checked_against_file_and_store(
    store: Store, fleet_dir: Path, clock: VirtualClock
) -> None:
    edit(fleet_dir, "tenants: [bolt, acme]", "tenants: [bolt, acme, zeta]")
    edit(fleet_dir, "version: v1", "version: v9")
    edit(fleet_dir, "artifact: v1.bin", "artifact: missing.bin")
    before = dump(store)
    with pytest.raises(FleetConfigError) as info:
        apply(store, fleet_dir, clock)
    assert [str(i).split(": ", 1)[1] for i in info.value.issues] == [
        f"spec.artifact: file not found: {fleet_dir / 'missing.bin'}",
        "spec.tenants[2]: tenant 'zeta' is declared neither in the fleet file nor in the store",
        "spec.version: model 'digits' has no version 'v9' in the fleet file or the store",
    ]
    assert [(i.line, i.column) for i in info.value.issues] == [(18, 33), (22, 45), (22, 61)]
    assert dump(store) == before


def test_a_file_may_refer_to_what_the_store_already_holds(
    store: Store, fleet_dir: Path, clock: VirtualClock
) -> None:
    apply(store, fleet_dir, clock)
    (fleet_dir / "v2.bin").write_bytes(b"model two")
    (fleet_dir / "next.yaml").write_text(
        "kind: ModelVersion\nmetadata: {name: v2}\nspec: {model: digits, artifact: v2.bin, format: sklearn}\n"
        "---\nkind: Deployment\nmetadata: {name: digits-prod}\n"
        "spec: {model: digits, tenants: [acme, bolt], version: v2}\n"
    )
    changes = apply_fleet(
        store, load_fleet([fleet_dir / "next.yaml"]), actor=ACTOR, now=clock.now()
    )
    assert [(c.name, c.action, c.changed_fields()) for c in changes] == [
        ("digits/v2", Action.CREATED, ["artifact_sha256", "labels", "spec"]),
        ("digits-prod", Action.CHANGED, ["spec.version"]),
    ]


def test_two_deployments_may_not_route_one_tenant_to_one_model(
    store: Store, fleet_dir: Path, clock: VirtualClock
) -> None:
    apply(store, fleet_dir, clock)
    (fleet_dir / "other.yaml").write_text(
        "kind: Deployment\nmetadata: {name: digits-beta}\n"
        "spec: {model: digits, tenants: [bolt], version: v1}\n"
    )
    with pytest.raises(
        FleetConfigError, match="deployment 'digits-prod' already serves tenants bolt"
    ):
        apply_fleet(store, load_fleet([fleet_dir / "other.yaml"]), actor=ACTOR, now=clock.now())


def _inject_failure_on_deployment_insert(store: Store) -> None:
    """A real database error in the middle of an apply: the trigger rejects one insert."""
    with store.begin() as conn:
        if store.dialect == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER boom BEFORE INSERT ON deployments WHEN NEW.name = 'digits-prod' "
                    "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'injected failure'; END $$"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER boom BEFORE INSERT ON deployments FOR EACH ROW "
                    "WHEN (NEW.name = 'digits-prod') EXECUTE FUNCTION boom()"
                )
            )


def test_a_failure_in_the_middle_of_an_apply_leaves_the_store_as_before(
    store: Store, fleet_dir: Path, clock: VirtualClock
) -> None:
    edit(
        fleet_dir,
        "kind: Deployment\nmetadata: {name: digits-prod}",
        "kind: Deployment\nmetadata: {name: digits-old}",
    )
    edit(fleet_dir, "tenants: [bolt, acme]", "tenants: [bolt]")
    apply(store, fleet_dir, clock)
    edit(
        fleet_dir,
        "kind: Deployment\nmetadata: {name: digits-old}",
        "kind: Deployment\nmetadata: {name: digits-prod}",
    )
    edit(fleet_dir, "tenants: [bolt]", "tenants: [acme]")
    edit(fleet_dir, "tier: free", "tier: enterprise")
    _inject_failure_on_deployment_insert(store)
    before = dump(store)
    with pytest.raises(DBAPIError, match="injected failure"):
        apply(store, fleet_dir, clock)  # bolt's tier is written before the deployment fails
    assert dump(store) == before


def test_a_python_version_names_a_function_in_a_file_that_is_fingerprinted(
    store: Store, fleet_dir: Path, clock: VirtualClock
) -> None:
    (fleet_dir / "handler.py").write_text("def predict(batch):\n    return batch['pixels']\n")
    edit(
        fleet_dir,
        "artifact: v1.bin, format: sklearn",
        "artifact: handler.py:predict, format: python",
    )
    apply(store, fleet_dir, clock)
    with store.begin() as conn:
        version = load_state(conn).get(("ModelVersion", "digits", "v1"))
    assert version is not None
    assert version.resource.spec.artifact == f"{fleet_dir / 'handler.py'}:predict"  # type: ignore[union-attr]
    assert version.artifact_sha256 == sha256_of(fleet_dir / "handler.py")


def test_a_python_version_without_a_function_is_refused(
    store: Store, fleet_dir: Path, clock: VirtualClock
) -> None:
    (fleet_dir / "handler.py").write_text("def predict(batch):\n    return batch\n")
    edit(fleet_dir, "artifact: v1.bin, format: sklearn", "artifact: handler.py, format: python")
    with pytest.raises(
        FleetConfigError, match="spec.artifact: a python artifact is FILE.py:FUNCTION"
    ):
        apply(store, fleet_dir, clock)


def test_a_tenants_quota_is_stored_and_reapplies_unchanged(
    store: Store, fleet_dir: Path, clock: VirtualClock
) -> None:
    edit(
        fleet_dir,
        "contact_email: dev@bolt.example}",
        "contact_email: dev@bolt.example, quota: {requests_per_second: 20, burst: 40, max_in_flight: 4}}",
    )
    apply(store, fleet_dir, clock)
    assert {a for _, _, a in apply(store, fleet_dir, clock)} == {Action.UNCHANGED}
    with store.begin() as conn:
        bolt = load_state(conn).get(("Tenant", "bolt"))
    assert bolt is not None and bolt.resource.spec.quota is not None  # type: ignore[union-attr]
    assert bolt.resource.spec.quota.burst == 40  # type: ignore[union-attr]
