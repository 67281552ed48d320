"""The notifiers: each body against its published format, each notifier against a real
receiver on loopback, and the delivery loop's backoff and construction from stored targets."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelfleet.alerts.alert import Alert, State
from modelfleet.alerts.notification import Kind, Notification, OnCallPerson
from modelfleet.alerts.notifiers.base import Notifier
from modelfleet.alerts.notifiers.delivery import (
    MAX_ATTEMPTS,
    DeliveryResult,
    backoff,
    deliver,
    notifier_for,
)
from modelfleet.alerts.notifiers.email import EmailNotifier, email_message
from modelfleet.alerts.notifiers.pagerduty import PagerDutyNotifier, dedup_key, pagerduty_body
from modelfleet.alerts.notifiers.slack import SlackNotifier, slack_body
from modelfleet.alerts.notifiers.webhook import WebhookNotifier, webhook_body
from modelfleet.config.alerting import EmailConfig, PagerDutyConfig, SlackConfig, WebhookConfig
from modelfleet.errors import DeliveryFailed, ModelfleetError
from tests.alerts.conftest import SMTP_LOGIN, SMTP_PASSWORD, HTTPReceiver, SMTPReceiver

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
GROUP_KEY = '{}:{alertname="HighErrorRate", model="retail-vision"}'
ANA = OnCallPerson("Ana Silva", "ana@acme.example")


def alert(
    name: str = "HighErrorRate",
    *,
    severity: str = "critical",
    state: State = "firing",
    version: str = "v4",
    **annotations: str,
) -> Alert:
    return Alert(
        labels={
            "alertname": name,
            "severity": severity,
            "model": "retail-vision",
            "version": version,
            "region": "eu-west",
        },
        annotations=annotations or {"summary": f"{name} on retail-vision {version}"},
        state=state,
        starts_at=T0,
        ends_at=T0 + timedelta(minutes=7) if state == "resolved" else None,
        anomaly_at=T0 - timedelta(minutes=2),
    )


def notification(kind: Kind = "firing", **changes: Any) -> Notification:
    fields: dict[str, Any] = {
        "receiver": "ml-oncall",
        "kind": kind,
        "group_key": GROUP_KEY,
        "group_labels": {"alertname": "HighErrorRate", "model": "retail-vision"},
        "alerts": [
            alert(version="v4"),
            alert(version="v5", state="resolved" if kind == "resolved" else "firing"),
        ],
        "external_url": "http://fleet.example:8080",
    }
    if kind == "resolved":
        fields["alerts"] = [alert(version="v4", state="resolved")]
    fields.update(changes)
    return Notification(**fields)


def parses_as_rfc3339(text: str) -> bool:
    return text.endswith("Z") and datetime.fromisoformat(text).tzinfo is not None


# -- the webhook body: Alertmanager's, version 4 -------------------------------------------

WEBHOOK_KEYS = {
    "version",
    "groupKey",
    "truncatedAlerts",
    "status",
    "receiver",
    "groupLabels",
    "commonLabels",
    "commonAnnotations",
    "externalURL",
    "alerts",
}
WEBHOOK_ALERT_KEYS = {
    "status",
    "labels",
    "annotations",
    "startsAt",
    "endsAt",
    "generatorURL",
    "fingerprint",
}


def test_webhook_body_has_exactly_alertmanagers_version_4_fields() -> None:
    body = webhook_body(notification())

    assert set(body) == WEBHOOK_KEYS
    assert body["version"] == "4"
    assert body["groupKey"] == GROUP_KEY
    assert body["truncatedAlerts"] == 0
    assert body["status"] == "firing"
    assert body["receiver"] == "ml-oncall"
    assert body["groupLabels"] == {"alertname": "HighErrorRate", "model": "retail-vision"}
    assert body["commonLabels"] == {
        "alertname": "HighErrorRate",
        "severity": "critical",
        "model": "retail-vision",
        "region": "eu-west",
    }
    assert body["commonAnnotations"] == {}  # the summaries differ by version
    assert body["externalURL"] == "http://fleet.example:8080"
    for sent, held in zip(body["alerts"], notification().alerts, strict=True):
        assert set(sent) == WEBHOOK_ALERT_KEYS
        assert sent["status"] in ("firing", "resolved")
        assert sent["labels"] == held.labels and sent["annotations"] == held.annotations
        assert sent["fingerprint"] == held.fingerprint
        assert isinstance(sent["generatorURL"], str)


def test_webhook_body_writes_times_in_rfc3339_and_an_unset_end_as_gos_zero_time() -> None:
    body = webhook_body(notification(alerts=[alert(), alert(version="v5", state="resolved")]))
    firing, resolved = body["alerts"]

    assert firing["startsAt"] == "2026-11-02T09:30:00Z"
    assert firing["endsAt"] == "0001-01-01T00:00:00Z"
    assert resolved["endsAt"] == "2026-11-02T09:37:00Z"
    assert all(parses_as_rfc3339(a[k]) for a in body["alerts"] for k in ("startsAt", "endsAt"))


@pytest.mark.parametrize(
    ("kind", "status"), [("firing", "firing"), ("acknowledged", "firing"), ("resolved", "resolved")]
)
def test_webhook_status_is_firing_or_resolved_as_alertmanager_knows_no_acknowledged(
    kind: Kind, status: str
) -> None:
    assert webhook_body(notification(kind))["status"] == status


def test_webhook_body_keeps_max_alerts_and_counts_every_alert_left_out() -> None:
    three = [alert(version=v) for v in ("v1", "v2", "v3")]
    body = webhook_body(notification(alerts=three, truncated=2), max_alerts=2)

    assert [a["labels"]["version"] for a in body["alerts"]] == ["v1", "v2"]
    assert body["truncatedAlerts"] == 3  # one here, two the notification left out already
    assert len(webhook_body(notification(alerts=three))["alerts"]) == 3  # 0: all


# -- the Slack message ---------------------------------------------------------------------


def test_slack_body_has_a_fallback_text_a_header_block_and_an_attachment_per_alert() -> None:
    body = slack_body(notification())

    assert set(body) == {"text", "blocks", "attachments"}
    assert body["text"] == notification().title
    header, section = body["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": notification().title},
    }
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    assert "<http://fleet.example:8080|Open modelfleet>" in section["text"]["text"]
    assert len(body["attachments"]) == 2
    for attachment in body["attachments"]:
        assert {"color", "fallback", "title", "text", "fields", "ts"} <= set(attachment)
        assert attachment["color"].startswith("#") and len(attachment["color"]) == 7
        assert attachment["ts"] == int(T0.timestamp())
        assert {"title": "model", "value": "retail-vision", "short": True} in attachment["fields"]


def test_slack_body_overrides_the_channel_only_when_one_is_configured() -> None:
    assert "channel" not in slack_body(notification())
    assert slack_body(notification(), channel="#ml-alerts")["channel"] == "#ml-alerts"


@pytest.mark.parametrize(
    ("kind", "severity", "state", "colour"),
    [
        ("firing", "critical", "firing", "#a30200"),
        ("firing", "warning", "firing", "#daa038"),
        ("firing", "info", "firing", "#439fe0"),
        ("firing", "page-me", "firing", "#daa038"),
        ("firing", "critical", "resolved", "#2eb886"),
        ("acknowledged", "critical", "firing", "#9e9e9e"),
    ],
)
def test_slack_colour_says_the_alerts_state_and_severity(
    kind: Kind, severity: str, state: str, colour: str
) -> None:
    body = slack_body(notification(kind, alerts=[alert(severity=severity, state=state)]))
    assert body["attachments"][0]["color"] == colour


def test_slack_body_names_the_paged_person() -> None:
    body = slack_body(notification(page=True, person=ANA, level=1))

    assert "Ana Silva" in body["text"]
    assert (
        "*Paging Ana Silva &lt;ana@acme.example&gt;, level 1*" in body["blocks"][1]["text"]["text"]
    )


def test_slack_body_escapes_slacks_control_characters_in_alert_text() -> None:
    tricky = alert(summary="p99 > 2s & rising <fast>")
    text = slack_body(notification(alerts=[tricky]))["attachments"][0]["text"]
    assert text == "p99 &gt; 2s &amp; rising &lt;fast&gt;"


def test_slack_body_carries_at_most_20_attachments_and_counts_the_others() -> None:
    many = [alert(version=f"v{i}") for i in range(25)]
    body = slack_body(notification(alerts=many, truncated=3))

    assert len(body["attachments"]) == 20
    assert "8 more alerts not shown." in body["blocks"][1]["text"]["text"]


# -- the PagerDuty event -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "action"),
    [("firing", "trigger"), ("acknowledged", "acknowledge"), ("resolved", "resolve")],
)
def test_pagerduty_event_action_follows_the_notification_kind(kind: Kind, action: str) -> None:
    event = pagerduty_body(notification(kind), routing_key="R0UT1NGKEY")
    assert event["event_action"] == action
    assert event["routing_key"] == "R0UT1NGKEY"


def test_pagerduty_dedup_key_is_one_for_a_groups_whole_life_and_differs_between_groups() -> None:
    keys = {
        pagerduty_body(notification(kind), routing_key="R")["dedup_key"]
        for kind in ("firing", "acknowledged", "resolved")
    }
    other = pagerduty_body(notification(group_key='{}:{alertname="Drift"}'), routing_key="R")

    assert keys == {dedup_key(GROUP_KEY)}
    assert other["dedup_key"] not in keys
    assert len(dedup_key("x" * 10_000)) <= 255


@pytest.mark.parametrize("kind", ["acknowledged", "resolved"])
def test_only_a_pagerduty_trigger_carries_a_payload(kind: Kind) -> None:
    event = pagerduty_body(notification(kind), routing_key="R")
    assert set(event) == {"routing_key", "event_action", "dedup_key"}


def test_pagerduty_trigger_payload_has_the_documented_fields_within_their_limits() -> None:
    page = notification(page=True, person=ANA, level=2, notes=["escalated: unacknowledged 15m"])
    event = pagerduty_body(page, routing_key="R")
    payload = event["payload"]

    assert {"summary", "source", "severity"} <= set(payload)
    assert set(payload) <= {
        "summary",
        "source",
        "severity",
        "timestamp",
        "component",
        "group",
        "class",
        "custom_details",
    }
    assert payload["summary"].startswith(page.title)
    assert payload["source"] == "modelfleet:eu-west/retail-vision"
    assert payload["severity"] == "critical"
    assert payload["timestamp"] == "2026-11-02T09:30:00Z"
    assert payload["component"] == "retail-vision"
    assert payload["class"] == "HighErrorRate"
    details = payload["custom_details"]
    assert details["firing"] == 2 and details["resolved"] == 0
    assert details["person"] == {"name": "Ana Silva", "email": "ana@acme.example"}
    assert details["level"] == 2
    assert details["notes"] == ["escalated: unacknowledged 15m"]
    assert [a["labels"]["version"] for a in details["alerts"]] == ["v4", "v5"]
    assert event["client_url"] == "http://fleet.example:8080"

    long = pagerduty_body(notification(alerts=[alert(summary="x" * 5000)]), routing_key="R")
    assert len(long["payload"]["summary"]) == 1024


@pytest.mark.parametrize(
    ("severities", "expected"),
    [
        (["critical", "warning"], "critical"),
        (["error", "info"], "error"),
        (["warning"], "warning"),
        (["info"], "info"),
        (["info", "page-me"], "warning"),  # an unknown severity counts as warning
    ],
)
def test_pagerduty_severity_is_the_most_severe_firing_alerts(
    severities: list[str], expected: str
) -> None:
    alerts = [alert(severity=s, version=f"v{i}") for i, s in enumerate(severities)]
    event = pagerduty_body(notification(alerts=alerts), routing_key="R")
    assert event["payload"]["severity"] == expected


# -- the e-mail message --------------------------------------------------------------------


def _parts(message: EmailMessage) -> tuple[str, str]:
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert isinstance(plain, EmailMessage) and isinstance(html, EmailMessage)
    return plain.get_content(), html.get_content()


def test_email_message_lists_every_alert_with_labels_annotations_and_times() -> None:
    n = notification(alerts=[alert(), alert(version="v5", state="resolved")])
    message = email_message(n, sender="fleet@acme.example", to=["ops@acme.example"])
    plain, html = _parts(message)

    assert message["Subject"] == n.title
    assert message["From"] == "fleet@acme.example"
    assert message["To"] == "ops@acme.example"
    assert message.get_content_type() == "multipart/alternative"
    for text in (plain, html):
        assert "[FIRING] HighErrorRate (critical)" in text
        assert "[RESOLVED] HighErrorRate (critical)" in text
        assert "HighErrorRate on retail-vision v5" in text
        assert "2026-11-02T09:30:00Z" in text and "2026-11-02T09:37:00Z" in text
        assert "2026-11-02T09:28:00Z" in text  # the anomaly's start
    assert "    version = v4" in plain
    assert "<th>version</th><td>v4</td>" in html


def test_email_subject_stays_on_one_line_and_html_is_escaped() -> None:
    n = notification(group_labels={"alertname": "A\nB"}, alerts=[alert(summary="<b>x</b>")])
    message = email_message(n, sender="fleet@acme.example", to=["ops@acme.example"])

    assert "\n" not in str(message["Subject"])
    assert "&lt;b&gt;x&lt;/b&gt;" in _parts(message)[1]


# -- the HTTP notifiers against a real receiver --------------------------------------------


def http_notifier(integration: str, url: str, *, timeout_s: float = 5.0) -> Notifier:
    if integration == "webhook":
        return WebhookNotifier(WebhookConfig(url=url, max_alerts=1), timeout_s=timeout_s)
    if integration == "slack":
        return SlackNotifier(SlackConfig(url=url, channel="#ml"), timeout_s=timeout_s)
    return PagerDutyNotifier(PagerDutyConfig(routing_key="R", url=url), timeout_s=timeout_s)


def expected_body(integration: str, n: Notification) -> dict[str, Any]:
    if integration == "webhook":
        return webhook_body(n, max_alerts=1)
    if integration == "slack":
        return slack_body(n, channel="#ml")
    return pagerduty_body(n, routing_key="R")


HTTP_INTEGRATIONS = ["webhook", "slack", "pagerduty"]


@pytest.mark.parametrize("integration", HTTP_INTEGRATIONS)
def test_http_notifier_posts_its_body_as_json_to_a_real_receiver(
    integration: str, http_receiver: HTTPReceiver
) -> None:
    http_receiver.statuses = [202 if integration == "pagerduty" else 200]
    n = notification()

    http_notifier(integration, http_receiver.url).send(n)

    (request,) = http_receiver.requests
    assert request.path == "/hook"
    assert request.content_type == "application/json"
    assert request.body == expected_body(integration, n)


@pytest.mark.parametrize("integration", HTTP_INTEGRATIONS)
def test_a_5xx_answer_is_retryable_and_the_next_attempt_is_delivered(
    integration: str, http_receiver: HTTPReceiver
) -> None:
    http_receiver.statuses = [500, 503, 202 if integration == "pagerduty" else 200]
    notifier = http_notifier(integration, http_receiver.url)

    results = [deliver(notifier, notification()) for _ in range(3)]

    assert [(r.ok, r.retryable) for r in results] == [(False, True), (False, True), (True, False)]
    assert results[0].error is not None and "answered 500" in results[0].error
    assert len(http_receiver.requests) == 3


@pytest.mark.parametrize("integration", HTTP_INTEGRATIONS)
@pytest.mark.parametrize(("status", "retryable"), [(400, False), (404, False), (429, True)])
def test_a_4xx_answer_is_permanent_except_429(
    integration: str, status: int, retryable: bool, http_receiver: HTTPReceiver
) -> None:
    http_receiver.statuses = [status]

    with pytest.raises(DeliveryFailed) as failed:
        http_notifier(integration, http_receiver.url).send(notification())

    assert failed.value.retryable is retryable
    assert f"answered {status}" in failed.value.reason
    assert isinstance(failed.value, ModelfleetError)


@pytest.mark.parametrize("integration", HTTP_INTEGRATIONS)
def test_a_closed_port_is_a_retryable_failure_at_once(integration: str, closed_port: int) -> None:
    started = time.monotonic()
    result = deliver(http_notifier(integration, f"http://127.0.0.1:{closed_port}/"), notification())

    assert (result.ok, result.retryable) == (False, True)
    assert time.monotonic() - started < 2.0


def test_a_receiver_slower_than_the_timeout_is_a_retryable_failure(
    http_receiver: HTTPReceiver,
) -> None:
    http_receiver.delay_s = 0.5

    result = deliver(http_notifier("webhook", http_receiver.url, timeout_s=0.1), notification())

    assert (result.ok, result.retryable) == (False, True)
    assert result.error is not None and "no answer within 0.1s" in result.error


# -- the e-mail notifier against a real SMTP server ----------------------------------------


def email_config(smtp: SMTPReceiver, **changes: Any) -> EmailConfig:
    fields = {"to": ["ops@acme.example", "ml@acme.example"], "from": "fleet@acme.example"}
    return EmailConfig.model_validate({**fields, "smarthost": smtp.smarthost, **changes})


def test_email_notifier_mails_the_configured_recipients(smtp_receiver: SMTPReceiver) -> None:
    n = notification()
    EmailNotifier(email_config(smtp_receiver)).send(n)

    (mail,) = smtp_receiver.mails
    assert mail.mail_from == "fleet@acme.example"
    assert mail.rcpt_tos == ["ops@acme.example", "ml@acme.example"]
    assert mail.message["To"] == "ops@acme.example, ml@acme.example"
    assert mail.message["Subject"] == n.title
    plain, html = _parts(mail.message)
    assert "HighErrorRate on retail-vision v4" in plain and "<h2>" in html


def test_a_page_mails_the_paged_person_instead_of_the_list(smtp_receiver: SMTPReceiver) -> None:
    EmailNotifier(email_config(smtp_receiver)).send(notification(page=True, person=ANA, level=1))

    (mail,) = smtp_receiver.mails
    assert mail.rcpt_tos == ["ana@acme.example"]
    assert mail.message["To"] == "ana@acme.example"
    assert "Paging Ana Silva <ana@acme.example>, level 1." in _parts(mail.message)[0]


def test_email_notifier_logs_in_with_the_password_from_the_secrets(
    smtp_receiver: SMTPReceiver,
) -> None:
    target = email_config(
        smtp_receiver, username=SMTP_LOGIN, password_env="MODELFLEET_SECRET_SMTP_PASSWORD"
    ).model_dump(mode="json", by_alias=True)

    notifier = notifier_for(
        "email", target, secrets={"MODELFLEET_SECRET_SMTP_PASSWORD": SMTP_PASSWORD}
    )
    assert deliver(notifier, notification()) == DeliveryResult(ok=True)

    assert smtp_receiver.logins == [SMTP_LOGIN]
    assert len(smtp_receiver.mails) == 1


def test_a_wrong_smtp_password_is_a_permanent_failure(smtp_receiver: SMTPReceiver) -> None:
    notifier = EmailNotifier(email_config(smtp_receiver, username=SMTP_LOGIN), password="nope")

    with pytest.raises(DeliveryFailed) as failed:
        notifier.send(notification())

    assert failed.value.retryable is False
    assert "535" in failed.value.reason
    assert smtp_receiver.mails == []


def test_starttls_against_a_server_without_it_is_a_permanent_failure(
    smtp_receiver: SMTPReceiver,
) -> None:
    with pytest.raises(DeliveryFailed) as failed:
        EmailNotifier(email_config(smtp_receiver, starttls=True)).send(notification())

    assert failed.value.retryable is False
    assert "STARTTLS" in failed.value.reason


@pytest.mark.parametrize(
    ("reply", "retryable"),
    [("452 4.2.2 Mailbox full", True), ("550 5.1.1 No such user", False)],
)
def test_smtp_refusals_are_retried_when_temporary(
    reply: str, retryable: bool, smtp_receiver: SMTPReceiver
) -> None:
    smtp_receiver.refuse = {"ops@acme.example": reply, "ml@acme.example": reply}

    with pytest.raises(DeliveryFailed) as failed:
        EmailNotifier(email_config(smtp_receiver)).send(notification())

    assert failed.value.retryable is retryable
    assert reply.split()[0] in failed.value.reason


def test_a_recipient_refused_among_others_is_reported(smtp_receiver: SMTPReceiver) -> None:
    smtp_receiver.refuse = {"ml@acme.example": "550 5.1.1 No such user"}

    with pytest.raises(DeliveryFailed) as failed:
        EmailNotifier(email_config(smtp_receiver)).send(notification())

    assert "some recipients refused: ml@acme.example: 550" in failed.value.reason
    assert [m.rcpt_tos for m in smtp_receiver.mails] == [["ops@acme.example"]]


def test_mail_to_a_closed_port_is_a_retryable_failure_at_once(closed_port: int) -> None:
    config = EmailConfig.model_validate(
        {
            "to": ["ops@acme.example"],
            "from": "fleet@acme.example",
            "smarthost": f"127.0.0.1:{closed_port}",
        }
    )
    started = time.monotonic()

    result = deliver(EmailNotifier(config, timeout_s=2.0), notification())

    assert (result.ok, result.retryable) == (False, True)
    assert time.monotonic() - started < 2.0


def test_mail_with_no_recipient_fails_permanently_before_connecting(closed_port: int) -> None:
    config = EmailConfig.model_validate(
        {"from": "fleet@acme.example", "smarthost": f"127.0.0.1:{closed_port}"}
    )
    result = deliver(EmailNotifier(config), notification())
    assert (result.ok, result.retryable) == (False, False)
    assert result.error is not None and "no recipients" in result.error


# -- delivery: backoff and notifiers from stored targets -----------------------------------


def test_backoff_doubles_from_ten_seconds_and_stops_at_ten_minutes() -> None:
    waits = [backoff(attempt).total_seconds() for attempt in range(1, MAX_ATTEMPTS + 3)]
    assert waits == [10, 20, 40, 80, 160, 320, 600, 600, 600, 600]
    assert backoff(10**9) == timedelta(minutes=10)


def test_backoff_counts_attempts_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        backoff(0)


@given(st.integers(min_value=1, max_value=10_000), st.integers(min_value=0, max_value=100))
def test_backoff_never_shrinks_as_attempts_grow(attempt: int, more: int) -> None:
    assert backoff(attempt) <= backoff(attempt + more) <= timedelta(minutes=10)


@pytest.mark.parametrize(
    ("integration", "config", "kind"),
    [
        ("webhook", WebhookConfig(url="https://hooks.example/a", max_alerts=5), WebhookNotifier),
        ("slack", SlackConfig(url="https://hooks.slack.com/services/T/B/x"), SlackNotifier),
        ("pagerduty", PagerDutyConfig(routing_key="R0UT1NG"), PagerDutyNotifier),
        (
            "email",
            EmailConfig.model_validate(
                {"to": ["ops@acme.example"], "from": "fleet@acme.example", "smarthost": "mx:25"}
            ),
            EmailNotifier,
        ),
    ],
)
def test_notifier_for_builds_each_integration_from_its_stored_json(
    integration: Any, config: Any, kind: type
) -> None:
    stored = config.model_dump(mode="json", by_alias=True)

    notifier = notifier_for(integration, stored, secrets={})

    assert isinstance(notifier, kind)
    assert notifier.config == config  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("integration", "target", "words"),
    [
        ("webhook", {"url": "ftp://nope"}, "not a valid webhook config"),
        ("pagerduty", {}, "not a valid pagerduty config"),
        (
            "email",
            {
                "from": "f@acme.example",
                "smarthost": "mx:25",
                "password_env": "MODELFLEET_SECRET_SMTP_PW",
            },
            "SMTP_PW is not set",
        ),
        ("sms", {}, "unknown integration 'sms'"),
    ],
)
def test_notifier_for_refuses_a_target_it_cannot_use_for_good(
    integration: Any, target: dict[str, Any], words: str
) -> None:
    with pytest.raises(DeliveryFailed, match=words) as failed:
        notifier_for(integration, target, secrets={"OTHER": "x"})
    assert failed.value.retryable is False


class _Broken:
    """A notifier with a bug: what `deliver` must survive."""

    def send(self, notification: Notification) -> None:
        raise KeyError("severity")


def test_deliver_never_raises_and_retries_what_nobody_foresaw() -> None:
    result = deliver(_Broken(), notification())
    assert result == DeliveryResult(ok=False, error="KeyError: 'severity'", retryable=True)
