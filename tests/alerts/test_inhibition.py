"""Inhibition: a firing cause mutes the alerts it explains, as Alertmanager's inhibit rules do."""

from __future__ import annotations

from datetime import UTC, datetime

from modelfleet.alerts.alert import Alert, State
from modelfleet.alerts.inhibition import inhibitors
from modelfleet.config.alerting import InhibitRule

AT = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)

REGION_DOWN = InhibitRule(
    source_matchers=['alertname="RegionDown"', 'scope="region"'],
    target_matchers=['scope="model"'],
    equal=["region"],
)


def alert(state: State = "firing", **labels: str) -> Alert:
    return Alert(labels=labels, annotations={}, state=state, starts_at=AT)


def region_down(region: str, state: State = "firing") -> Alert:
    return alert(state, alertname="RegionDown", region=region, scope="region")


def model_alert(region: str) -> Alert:
    return alert(alertname="HighErrorRate", region=region, scope="model", model="digits")


def test_a_region_down_alert_mutes_the_model_alerts_of_its_region_only() -> None:
    eu_down = region_down("eu")
    firing = [eu_down, model_alert("eu"), model_alert("us")]
    assert inhibitors(model_alert("eu"), firing, [REGION_DOWN]) == [eu_down.fingerprint]
    assert inhibitors(model_alert("us"), firing, [REGION_DOWN]) == []


def test_a_resolved_source_inhibits_nothing() -> None:
    firing = [region_down("eu", state="resolved")]
    assert inhibitors(model_alert("eu"), firing, [REGION_DOWN]) == []


def test_an_alert_outside_the_target_matchers_is_not_muted() -> None:
    other = alert(alertname="HighErrorRate", region="eu", scope="tenant")
    assert inhibitors(other, [region_down("eu")], [REGION_DOWN]) == []
    assert inhibitors(region_down("eu"), [region_down("eu")], [REGION_DOWN]) == []


def test_every_equal_label_must_have_the_same_value_and_missing_on_both_sides_is_equal() -> None:
    rule = InhibitRule(
        source_matchers=['alertname="RegionDown"'],
        target_matchers=['scope="model"'],
        equal=["region", "zone"],
    )
    source = alert(alertname="RegionDown", region="eu")  # no zone
    assert inhibitors(model_alert("eu"), [source], [rule]) == [source.fingerprint]
    zoned = alert(alertname="RegionDown", region="eu", zone="a")
    assert inhibitors(model_alert("eu"), [zoned], [rule]) == []  # "a" against missing
    target = alert(alertname="HighErrorRate", scope="model", region="eu", zone="a")
    assert inhibitors(target, [zoned], [rule]) == [zoned.fingerprint]
    assert inhibitors(target, [source], [rule]) == []


def test_without_equal_labels_any_firing_source_mutes_every_target() -> None:
    rule = InhibitRule(source_matchers=['severity="critical"'], target_matchers=['severity="info"'])
    source = alert(alertname="A", severity="critical", region="us")
    target = alert(alertname="B", severity="info", region="eu")
    assert inhibitors(target, [source], [rule]) == [source.fingerprint]


def test_an_alert_matching_both_sides_is_not_muted_by_alerts_that_also_match_both() -> None:
    rule = InhibitRule(
        source_matchers=['severity=~"warning|critical"'],
        target_matchers=['severity=~"warning|critical"'],
        equal=["region"],
    )
    one = alert(alertname="A", severity="critical", region="eu")
    two = alert(alertname="B", severity="warning", region="eu")
    assert inhibitors(one, [one, two], [rule]) == []
    assert inhibitors(two, [one, two], [rule]) == []
    # A target matching only the target side is muted by them.
    narrow = InhibitRule(
        source_matchers=['severity="critical"'], target_matchers=['severity=~"warning|critical"']
    )
    assert inhibitors(two, [one, two], [narrow]) == [one.fingerprint]
    assert inhibitors(one, [one, two], [narrow]) == []  # one matches both sides; so do sources


def test_an_alert_never_inhibits_itself() -> None:
    rule = InhibitRule(source_matchers=['alertname="A"'], target_matchers=['region="eu"'])
    both = alert(alertname="A", region="eu")
    assert inhibitors(both, [both], [rule]) == []


def test_each_inhibiting_alert_is_named_once_across_rules_in_order() -> None:
    by_region = REGION_DOWN
    by_name = InhibitRule(
        source_matchers=['alertname="RegionDown"'], target_matchers=['model="digits"']
    )
    eu, us = region_down("eu"), region_down("us")
    assert inhibitors(model_alert("eu"), [us, eu], [by_region, by_name]) == [
        eu.fingerprint,
        us.fingerprint,
    ]
