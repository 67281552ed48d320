"""The Slack notifier: POSTs a message to a Slack incoming webhook.

The message, in the fields Slack documents for incoming webhooks and `chat.postMessage`:
`text` (the one line shown in notifications and by clients that cannot draw blocks),
`blocks` (a `header` with the group's title and a `section` saying who is paged, the notes and
a link), and one secondary `attachment` per alert, whose `color` bar says its state and
severity: red critical, orange error, yellow warning, blue info, green resolved, grey
acknowledged. Slack recommends at most 20 attachments and refuses more than 100; the rest are
counted in the section. A header's text holds 150 characters, a section's 3000.

Slack mentions users by member ID, which modelfleet does not know; the paged person is named
in bold with their address.
"""

from __future__ import annotations

from typing import Any

from modelfleet.alerts.alert import Alert
from modelfleet.alerts.notification import Notification
from modelfleet.alerts.notifiers.base import JSONNotifier, rfc3339, truncate
from modelfleet.config.alerting import SlackConfig

MAX_ATTACHMENTS = 20
HEADER_CHARS = 150
SECTION_CHARS = 3000

SEVERITY_COLOURS = {
    "critical": "#a30200",
    "error": "#e8912d",
    "warning": "#daa038",
    "info": "#439fe0",
}
RESOLVED_COLOUR = "#2eb886"
ACKNOWLEDGED_COLOUR = "#9e9e9e"


def slack_body(notification: Notification, *, channel: str | None = None) -> dict[str, Any]:
    """A Slack incoming-webhook message for the notification; `channel` overrides the hook's."""
    paging = _paging(notification)
    lines = [f"*Paging {_escape(paging)}*"] if paging else []
    lines += [f"_{_escape(note)}_" for note in notification.notes]
    shown = notification.alerts[:MAX_ATTACHMENTS]
    hidden = len(notification.alerts) - len(shown) + notification.truncated
    if hidden:
        lines.append(f"{hidden} more alert{'s' if hidden != 1 else ''} not shown.")
    lines.append(f"<{notification.external_url}|Open modelfleet>")
    title = notification.title
    body: dict[str, Any] = {
        "text": _escape(f"{title} — paging {paging}" if paging else title),
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": truncate(title, HEADER_CHARS)},
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": truncate("\n".join(lines), SECTION_CHARS)},
            },
        ],
        "attachments": [_attachment(notification, alert) for alert in shown],
    }
    if channel:
        body["channel"] = channel
    return body


def colour(notification: Notification, alert: Alert) -> str:
    """The attachment's bar: green resolved, grey acknowledged, else by severity."""
    if not alert.firing:
        return RESOLVED_COLOUR
    if notification.kind == "acknowledged":
        return ACKNOWLEDGED_COLOUR
    return SEVERITY_COLOURS.get(alert.severity, SEVERITY_COLOURS["warning"])


def _attachment(notification: Notification, alert: Alert) -> dict[str, Any]:
    name = alert.name or alert.fingerprint
    summary = alert.annotations.get("summary") or alert.annotations.get("description", "")
    others = {k: v for k, v in alert.annotations.items() if k != "summary"}
    text = "\n".join(
        ([_escape(summary)] if summary else [])
        + [f"*{_escape(k)}*: {_escape(v)}" for k, v in sorted(others.items()) if v != summary]
    )
    times = f"since {rfc3339(alert.starts_at)}"
    if alert.ends_at is not None:
        times += f", ended {rfc3339(alert.ends_at)}"
    return {
        "color": colour(notification, alert),
        "fallback": _escape(
            f"[{alert.state.upper()}] {name}" + (f": {summary}" if summary else "")
        ),
        "title": _escape(f"[{alert.state.upper()}] {name}"),
        "text": truncate(text, SECTION_CHARS),
        "fields": [
            {"title": _escape(k), "value": _escape(v), "short": True}
            for k, v in sorted(alert.labels.items())
            if k != "alertname"
        ],
        "footer": times,
        "ts": int(alert.starts_at.timestamp()),
        "mrkdwn_in": ["text"],
    }


def _paging(notification: Notification) -> str | None:
    person = notification.person
    if person is None:
        return None
    level = f", level {notification.level}" if notification.level is not None else ""
    return f"{person.name} <{person.email}>{level}"


def _escape(text: str) -> str:
    """Slack's three control characters, escaped as Slack asks for text it formats."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackNotifier(JSONNotifier[SlackConfig]):
    """POSTs `slack_body` to the incoming webhook's URL; Slack answers 200 `ok`."""

    integration = "slack"

    def body(self, notification: Notification) -> dict[str, Any]:
        return slack_body(notification, channel=self.config.channel)
