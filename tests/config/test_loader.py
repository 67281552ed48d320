"""fleet.yaml loading: valid files become resources; invalid ones are refused whole, with
every problem located at its YAML node."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from modelfleet.config import Deployment, ModelVersion, Tenant, load_fleet, load_fleet_text
from modelfleet.errors import FleetConfigError

KNOWN = "Tenant, Model, ModelVersion, Deployment, AlertRule, Receiver, AlertRouting, OnCallSchedule, EscalationPolicy, Runbook, SLA, InstanceType, CapacityPolicy, Region, RetentionPolicy"

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "retail-vision" / "fleet.yaml"

TENANT = """\
kind: Tenant
metadata:
  name: acme
spec:
  display_name: Acme
  tier: premium
  home_region: eu-west
  contact_email: ops@acme.example
"""


def refused(text: str) -> list[str]:
    with pytest.raises(FleetConfigError) as info:
        load_fleet_text(textwrap.dedent(text), file="fleet.yaml")
    return [str(i) for i in info.value.issues]


def test_example_fleet_loads_every_kind() -> None:
    fleet = load_fleet([EXAMPLE])
    assert len(fleet.tenants) >= 4
    assert len({t.spec.tier for t in fleet.tenants}) >= 3
    assert len({t.spec.home_region for t in fleet.tenants}) >= 3
    assert [v.metadata.name for v in fleet.versions] == ["v1", "v2", "v3", "v4"]
    assert fleet.deployments[0].spec.tenants == "all"
    assert fleet.models[0].spec.input.features[0].shape == [64]


def test_valid_documents_become_typed_resources() -> None:
    fleet = load_fleet_text(TENANT + "---\n" + TENANT.replace("acme", "bolt"))
    assert all(isinstance(t, Tenant) for t in fleet.tenants)
    assert [t.name for t in fleet.tenants] == ["acme", "bolt"]


INVALID = [
    pytest.param(
        "kind: Tenant\nmetadata: {name: [acme\n",
        "fleet.yaml:3:1: invalid YAML: expected ',' or ']', but got '<stream end>'",
        id="yaml-syntax",
    ),
    pytest.param(
        "kind: Tenantt\nmetadata: {name: acme}\nspec: {}\n",
        "fleet.yaml:1:7: kind: unknown kind 'Tenantt'; expected one of " + KNOWN,
        id="unknown-kind",
    ),
    pytest.param(
        "metadata: {name: acme}\nspec: {}\n",
        "fleet.yaml:1:1: kind: field required",
        id="missing-kind",
    ),
    pytest.param(
        TENANT + "  colour: blue\n",
        "fleet.yaml:9:3: spec.colour: unknown field",
        id="unknown-spec-field",
    ),
    pytest.param(
        TENANT + "status: {}\n",
        "fleet.yaml:9:1: status: unknown field",
        id="unknown-top-level-field",
    ),
    pytest.param(
        TENANT.replace("tier: premium", "tier: gold"),
        "fleet.yaml:6:9: spec.tier: Input should be 'free', 'standard', 'premium' or 'enterprise'",
        id="bad-tier",
    ),
    pytest.param(
        TENANT.replace("ops@acme.example", "ops-at-acme"),
        "fleet.yaml:8:18: spec.contact_email: value is not a valid email address: "
        "An email address must have an @-sign.",
        id="bad-email",
    ),
    pytest.param(
        TENANT.replace("  home_region: eu-west\n", ""),
        "fleet.yaml:4:1: spec.home_region: field required",
        id="missing-field-at-parent-key",
    ),
    pytest.param(
        TENANT.replace("  tier: premium\n", "  tier: premium\n  tier: free\n"),
        "fleet.yaml:7:3: spec.tier: duplicate key 'tier'",
        id="duplicate-key",
    ),
    pytest.param(
        TENANT + "---\n" + TENANT,
        "fleet.yaml:12:9: metadata.name: Tenant 'acme' is already declared at fleet.yaml:3",
        id="duplicate-resource",
    ),
    pytest.param(
        TENANT.replace("name: acme", "name: Acme_Corp!"),
        "fleet.yaml:3:9: metadata.name: must be 1-63 lowercase letters, digits, '.', '_' or '-', "
        "starting and ending with a letter or digit",
        id="bad-name",
    ),
    pytest.param(
        """\
        kind: Model
        metadata: {name: m}
        spec:
          input:
            features:
              - {name: pixels, dtype: float32, shape: [8, 0]}
        """,
        "fleet.yaml:6:51: spec.input.features[0].shape[1]: Input should be greater than 0",
        id="bad-shape",
    ),
    pytest.param(
        """\
        kind: Model
        metadata: {name: m}
        spec:
          input:
            features:
              - {name: a, dtype: float32}
              - {name: a, dtype: complex64}
        """,
        "fleet.yaml:7:26: spec.input.features[1].dtype: Input should be 'bool', 'int32', "
        "'int64', 'float32', 'float64' or 'string'",
        id="bad-dtype",
    ),
    pytest.param(
        """\
        kind: Model
        metadata: {name: m}
        spec:
          input:
            features:
              - {name: a, dtype: float32}
              - {name: a, dtype: int64}
        """,
        "fleet.yaml:5:5: spec.input: feature names must be unique; repeated: a",
        id="duplicate-feature",
    ),
    pytest.param(
        """\
        kind: Deployment
        metadata: {name: d}
        spec:
          model: m
          tenants: 5
          version: v1
        """,
        "fleet.yaml:5:12: spec.tenants: Input should be 'all' or a valid list",
        id="tenants-neither-all-nor-list",
    ),
    pytest.param(
        """\
        kind: Deployment
        metadata: {name: d}
        spec:
          model: m
          tenants: [acme, ACME]
          version: v1
        """,
        "fleet.yaml:5:19: spec.tenants[1]: must be 1-63 lowercase letters, digits, '.', '_' or '-', "
        "starting and ending with a letter or digit",
        id="bad-tenant-in-list",
    ),
    pytest.param(
        """\
        kind: ModelVersion
        metadata: {name: v1}
        spec:
          model: m
          artifact: m.onnx
          format: tensorflow
        """,
        "fleet.yaml:6:11: spec.format: Input should be 'sklearn', 'onnx' or 'python'",
        id="bad-format",
    ),
    pytest.param(
        "apiVersion: modelfleet/v2\n" + TENANT,
        "fleet.yaml:1:13: apiVersion: Input should be 'modelfleet/v1'",
        id="bad-api-version",
    ),
    pytest.param(
        "- kind: Tenant\n",
        "fleet.yaml:1:1: a resource must be a mapping with kind, metadata, spec",
        id="not-a-mapping",
    ),
    pytest.param("# nothing here\n", "fleet.yaml:1:1: the file declares no resources", id="empty"),
    pytest.param(
        "kind: Model\nmetadata: {name: m}\nspec:\n  input: {features: [{name: x, dtype: bool}]}\n"
        "  output: {labels: [maybe, no]}\n",
        "fleet.yaml:5:28: spec.output.labels[1]: Input should be a valid string; "
        "YAML read this as false: put it in quotes",
        id="yaml-boolean-label",
    ),
]


@pytest.mark.parametrize(("text", "expected"), INVALID)
def test_invalid_file_is_refused_with_exact_location(text: str, expected: str) -> None:
    assert refused(text) == [expected]


def test_every_error_in_a_file_is_reported_at_once_in_order() -> None:
    text = TENANT.replace("tier: premium", "tier: gold") + "  colour: blue\n---\nkind: Gadget\n"
    assert refused(text) == [
        "fleet.yaml:6:9: spec.tier: Input should be 'free', 'standard', 'premium' or 'enterprise'",
        "fleet.yaml:9:3: spec.colour: unknown field",
        "fleet.yaml:11:7: kind: unknown kind 'Gadget'; expected one of " + KNOWN,
    ]


def test_errors_name_the_file_they_are_in(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(TENANT)
    bad.write_text(TENANT.replace("acme", "bolt").replace("premium", "gold"))
    with pytest.raises(FleetConfigError) as info:
        load_fleet([good, bad])
    assert [(i.file, i.line, i.field) for i in info.value.issues] == [(str(bad), 6, "spec.tier")]


def test_unreadable_file_is_an_error_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(FleetConfigError, match="cannot read file"):
        load_fleet([tmp_path / "missing.yaml"])


def test_versions_are_named_within_their_model() -> None:
    version = """\
kind: ModelVersion
metadata: {name: v1}
spec: {model: MODEL, artifact: a.joblib, format: sklearn}
"""
    fleet = load_fleet_text(version.replace("MODEL", "a") + "---\n" + version.replace("MODEL", "b"))
    assert [v.key for v in fleet.versions] == [("a", "v1"), ("b", "v1")]
    assert all(isinstance(v, ModelVersion) for v in fleet.versions)


def test_deployment_serves_all_or_listed_tenants() -> None:
    deployment = (
        "kind: Deployment\nmetadata: {name: d}\nspec: {model: m, tenants: TENANTS, version: v1}\n"
    )
    [all_] = load_fleet_text(deployment.replace("TENANTS", "all")).deployments
    [listed] = load_fleet_text(deployment.replace("TENANTS", "[b, a]")).deployments
    assert isinstance(all_, Deployment) and all_.spec.tenants == "all"
    assert listed.spec.tenants == ["b", "a"]
