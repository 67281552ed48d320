"""OpenSLO export and import of SLAs: lossless round trips, the spec's fields, foreign SLOs."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelfleet.config.schema import SLA
from modelfleet.config.sla import LATENCY_THRESHOLDS_S
from modelfleet.errors import InvalidInput
from modelfleet.sla.openslo import (
    export_openslo,
    export_yaml,
    import_openslo,
    import_yaml,
)


def make_sla(name: str = "acme-gold", **spec: Any) -> SLA:
    body: dict[str, Any] = {
        "tenants": ["acme", "acme-eu"],
        "monthly_fee": 12000.0,
        "slos": [{"name": "availability", "type": "availability", "objective": 0.999}],
    }
    body.update(spec)
    return SLA.model_validate(
        {"kind": "SLA", "metadata": {"name": name, "labels": {"team": "ml"}}, "spec": body}
    )


def everything() -> SLA:
    """Every SLO type, credits, a cap, maintenance, custom burn alerts and another zone."""
    return make_sla(
        models=["fraud", "churn"],
        time_zone="Europe/Berlin",
        currency="EUR",
        slos=[
            {"name": "availability", "type": "availability", "objective": 0.999},
            {"name": "latency", "type": "latency", "objective": 0.99, "threshold": "500ms"},
            {
                "name": "uptime",
                "type": "uptime",
                "objective": 0.9995,
                "minute_error_rate": 0.1,
                "min_minute_requests": 5,
            },
            {
                "name": "response",
                "type": "incident_response",
                "objective": 0.95,
                "respond_within": "30m",
            },
        ],
        credits=[
            {"slo": "availability", "below": 0.999, "credit": 0.1},
            {"slo": "availability", "below": 0.99, "credit": 0.25},
            {"slo": "latency", "below": 0.95, "credit": 0.05},
        ],
        credit_cap=0.3,
        maintenance=[
            {
                "start": "2026-03-01T02:00:00",
                "end": "2026-03-01T04:00:00",
                "reason": "database upgrade",
            },
            {
                "start": datetime(2026, 4, 5, 1, tzinfo=UTC),
                "end": datetime(2026, 4, 5, 2, tzinfo=UTC),
                "reason": "network",
            },
        ],
        budget_warning=0.4,
        burn_alerts=[
            {"long": "2h", "short": "10m", "rate": 10.0, "severity": "critical"},
            {"long": "1d", "short": "2h", "rate": 2.5, "severity": "info"},
        ],
    )


def tier_based() -> SLA:
    return make_sla("enterprise-standard", tenants=[], tier="enterprise", monthly_fee=0.0)


def slo_documents(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in documents if d["kind"] == "SLO"]


@pytest.mark.parametrize("sla", [everything(), tier_based(), make_sla()], ids=lambda s: s.name)
def test_import_of_the_export_is_the_same_sla(sla: SLA) -> None:
    assert import_openslo(export_openslo(sla)) == [sla]


def test_several_slas_round_trip_through_one_yaml_text() -> None:
    slas = [everything(), tier_based()]

    text = export_yaml(slas)

    assert text.count("\n---\n") == 2 * (4 + 1) - 1
    assert import_yaml(text) == slas


def test_exported_documents_have_the_fields_openslo_requires() -> None:
    documents = export_openslo(everything())

    assert [d["kind"] for d in documents] == ["SLI", "SLO"] * 4
    for document in documents:
        assert document["apiVersion"] == "openslo/v1"
        assert document["metadata"]["name"]
        assert all(isinstance(v, str) for v in document["metadata"].get("annotations", {}).values())
    slis = {d["metadata"]["name"] for d in documents if d["kind"] == "SLI"}
    for slo in slo_documents(documents):
        spec = slo["spec"]
        assert spec["indicatorRef"] in slis
        assert spec["service"] == "acme-gold"
        assert spec["budgetingMethod"] in ("Occurrences", "Timeslices")
        assert spec["timeWindow"] == [
            {
                "duration": "1M",
                "isRolling": False,
                "calendar": {"startTime": "2026-01-01 00:00:00", "timeZone": "Europe/Berlin"},
            }
        ]
        assert spec["objectives"] and all(0 < o["target"] < 1 for o in spec["objectives"])


def test_each_slo_type_maps_to_its_budgeting_method_and_indicator() -> None:
    documents = export_openslo(everything())
    slis = {d["metadata"]["name"]: d["spec"] for d in documents if d["kind"] == "SLI"}
    by_name = {d["metadata"]["name"]: d for d in slo_documents(documents)}

    uptime = by_name["acme-gold-uptime"]["spec"]
    assert uptime["budgetingMethod"] == "Timeslices"
    assert uptime["objectives"][0]["timeSliceWindow"] == "1m"
    assert uptime["objectives"][0]["timeSliceTarget"] == pytest.approx(0.9)
    latency = slis[by_name["acme-gold-latency"]["spec"]["indicatorRef"]]["ratioMetric"]
    assert latency["counter"] is True
    assert latency["good"]["metricSource"] == {
        "type": "modelfleet",
        "spec": {"query": "valid within 500ms", "threshold": "500ms"},
    }
    availability = slis[by_name["acme-gold-availability"]["spec"]["indicatorRef"]]
    assert availability["ratioMetric"]["good"]["metricSource"]["spec"] == {"query": "valid - 5xx"}
    assert availability["ratioMetric"]["total"]["metricSource"]["spec"] == {"query": "valid"}
    annotations = by_name["acme-gold-response"]["metadata"]["annotations"]
    assert annotations["modelfleet.io/respond-within"] == "30m"
    assert annotations["modelfleet.io/credit-cap"] == "0.3"
    assert annotations["modelfleet.io/tenants"] == '["acme", "acme-eu"]'


def test_an_edited_time_slice_target_wins_over_the_annotated_rate() -> None:
    documents = export_openslo(everything())
    uptime = next(d for d in documents if d["metadata"]["name"] == "acme-gold-uptime")
    uptime["spec"]["objectives"][0]["timeSliceTarget"] = 0.98

    (sla,) = import_openslo(documents)

    assert sla.spec.slos[2].minute_error_rate == pytest.approx(0.02)


names = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)
shares = st.floats(min_value=1e-6, max_value=1 - 1e-6, allow_nan=False)


@st.composite
def slas(draw: st.DrawFn) -> SLA:
    slo_names = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    slos: list[dict[str, Any]] = []
    for name in slo_names:
        type_ = draw(st.sampled_from(["availability", "latency", "uptime", "incident_response"]))
        slo: dict[str, Any] = {"name": name, "type": type_, "objective": draw(shares)}
        if type_ == "latency":
            slo["threshold"] = timedelta(seconds=draw(st.sampled_from(LATENCY_THRESHOLDS_S)))
        if draw(st.booleans()):
            slo["minute_error_rate"] = draw(st.floats(min_value=1e-6, max_value=1.0))
        if draw(st.booleans()):
            slo["respond_within"] = timedelta(minutes=draw(st.integers(1, 600)))
        slos.append(slo)
    credits = [
        {
            "slo": draw(st.sampled_from(slo_names)),
            "below": draw(shares),
            "credit": draw(st.floats(min_value=1e-6, max_value=1.0)),
        }
        for _ in range(draw(st.integers(0, 4)))
    ]
    return make_sla(
        draw(names),
        slos=slos,
        credits=credits,
        credit_cap=draw(st.floats(min_value=1e-6, max_value=1.0)),
        monthly_fee=draw(st.floats(min_value=0.0, max_value=1e9)),
    )


@given(slas())
def test_any_objectives_and_credits_survive_the_round_trip(sla: SLA) -> None:
    assert import_openslo(export_openslo(sla)) == [sla]
    assert import_yaml(export_yaml([sla])) == [sla]


FOREIGN = """
apiVersion: openslo/v1
kind: SLO
metadata:
  name: checkout-availability
  displayName: Checkout availability
  labels:
    team: payments
    tags: [web, critical]
  annotations:
    modelfleet.io/tenants: shopco, shopco-eu
spec:
  service: checkout
  indicator:
    metadata:
      name: checkout-errors
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: Prometheus
            spec:
              query: sum(rate(http_requests_total{code!~"5.."}[1m]))
        total:
          metricSource:
            type: Prometheus
            spec:
              query: sum(rate(http_requests_total[1m]))
  timeWindow:
    - duration: 1M
      isRolling: false
      calendar:
        startTime: 2022-01-01 00:00:00
        timeZone: America/New_York
  budgetingMethod: Occurrences
  objectives:
    - displayName: Good
      target: 0.995
    - displayName: Better
      target: 0.999
"""


def test_a_foreign_slo_with_tenants_imports_as_a_minimal_sla() -> None:
    (sla,) = import_yaml(FOREIGN)

    assert sla.name == "checkout-availability"
    assert sla.metadata.labels == {"team": "payments", "tags": "web,critical"}
    assert sla.spec.tenants == ["shopco", "shopco-eu"]
    assert sla.spec.time_zone == "America/New_York"
    assert sla.spec.monthly_fee == 0.0
    ((slo),) = sla.spec.slos
    assert (slo.name, slo.type, slo.objective) == ("checkout-availability", "availability", 0.995)


def test_a_foreign_timeslices_slo_imports_as_uptime() -> None:
    text = (
        FOREIGN.replace("Occurrences", "Timeslices")
        .replace(
            "target: 0.995", "target: 0.99\n      timeSliceTarget: 0.95\n      timeSliceWindow: 1m"
        )
        .replace("modelfleet.io/tenants: shopco, shopco-eu", 'modelfleet.io/tier: "premium"')
    )

    (sla,) = import_yaml(text)

    assert sla.spec.tier == "premium" and sla.spec.tenants == []
    assert sla.spec.slos[0].type == "uptime"
    assert sla.spec.slos[0].minute_error_rate == pytest.approx(0.05)


def test_a_foreign_slo_without_tenants_is_refused_naming_the_annotation() -> None:
    text = FOREIGN.replace("    modelfleet.io/tenants: shopco, shopco-eu\n", "    other: x\n")

    with pytest.raises(InvalidInput) as caught:
        import_yaml(text)

    message = str(caught.value)
    assert "document 0 (SLO 'checkout-availability')" in message
    assert 'metadata.annotations["modelfleet.io/tenants"]' in message


def test_a_rolling_window_is_refused() -> None:
    text = FOREIGN.replace("isRolling: false", "isRolling: true")

    with pytest.raises(InvalidInput, match=r"spec\.timeWindow\[0\]\.isRolling"):
        import_yaml(text)


def exported() -> list[dict[str, Any]]:
    return copy.deepcopy(export_openslo(everything()))


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda ds: ds[1].update(apiVersion="openslo/v1alpha"), "document 1: apiVersion"),
        (lambda ds: ds[1]["spec"]["objectives"][0].update(target=1.5), "objectives[0].target"),
        (lambda ds: ds[1]["spec"].pop("budgetingMethod"), "spec.budgetingMethod"),
        (lambda ds: ds[1]["spec"].update(indicatorRef="nope"), "spec.indicatorRef"),
        (
            lambda ds: ds[3]["metadata"]["annotations"].update({"modelfleet.io/credit-cap": "2"}),
            "(SLO 'acme-gold-latency'): metadata.annotations[\"modelfleet.io/credit-cap\"]",
        ),
        (
            lambda ds: [
                d["metadata"]["annotations"].update({"modelfleet.io/credits": "{"})
                for d in ds
                if d["kind"] == "SLO"
            ],
            'metadata.annotations["modelfleet.io/credits"]: is not JSON',
        ),
        (
            lambda ds: ds[2]["spec"]["ratioMetric"]["good"]["metricSource"]["spec"].update(
                threshold="300ms"
            ),
            "SLI 'acme-gold-latency-sli' (document 2) spec.ratioMetric.good.metricSource.spec.threshold",
        ),
        (
            lambda ds: ds[5]["spec"]["objectives"][0].update(timeSliceWindow="5m"),
            "timeSliceWindow",
        ),
    ],
)
def test_invalid_documents_are_refused_naming_document_and_field(edit: Any, field: str) -> None:
    documents = exported()
    edit(documents)

    with pytest.raises(InvalidInput) as caught:
        import_openslo(documents)

    assert field in str(caught.value)
