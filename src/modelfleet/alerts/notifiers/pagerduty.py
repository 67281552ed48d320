"""The PagerDuty notifier: alert events of PagerDuty's Events API v2.

A group is one PagerDuty alert: every event of the group carries the same `dedup_key`, the
SHA-256 of the group key (64 hex digits, within the API's 255), as Alertmanager derives it, so
trigger, acknowledge and resolve address one incident across the group's whole life.

Per the API: `routing_key`, `event_action` (trigger, acknowledge, resolve) and `dedup_key` on
every event; only a trigger carries `payload` (summary of at most 1024 characters, source,
severity of critical, error, warning or info, and the optional timestamp, component, group,
class, custom_details) and the `client`, `client_url` and `links` shown on the incident.
PagerDuty answers 202 when it accepted the event, 400 when the event is invalid (not retried)
and 429 when rate-limited (retried).
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from modelfleet.alerts.alert import Alert
from modelfleet.alerts.notification import Notification
from modelfleet.alerts.notifiers.base import JSONNotifier, rfc3339, truncate
from modelfleet.config.alerting import PagerDutyConfig

EventAction = Literal["trigger", "acknowledge", "resolve"]
PagerDutySeverity = Literal["critical", "error", "warning", "info"]

SUMMARY_CHARS = 1024
CLIENT = "modelfleet"
# PagerDuty's severities, most severe first; an alert's other severities count as warning,
# the severity an alert without a `severity` label has.
SEVERITIES: tuple[PagerDutySeverity, ...] = ("critical", "error", "warning", "info")
# Labels that say which part of the fleet is affected, most general first.
_SOURCE_LABELS = ("region", "model", "version")

_ACTIONS: dict[str, EventAction] = {
    "firing": "trigger",
    "acknowledged": "acknowledge",
    "resolved": "resolve",
}


def dedup_key(group_key: str) -> str:
    """The group's PagerDuty dedup key: stable for the group's whole life, unique to it."""
    return hashlib.sha256(group_key.encode()).hexdigest()


def pagerduty_severity(severity: str) -> PagerDutySeverity:
    """An alert's `severity` label as one of PagerDuty's four; unknown values are warnings."""
    for known in SEVERITIES:
        if severity == known:
            return known
    return "warning"


def pagerduty_body(notification: Notification, *, routing_key: str) -> dict[str, Any]:
    """The Events API v2 event for the notification: trigger, acknowledge or resolve."""
    action = _ACTIONS[notification.kind]
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key(notification.group_key),
    }
    if action == "trigger":
        event["payload"] = _payload(notification)
        event["client"] = CLIENT
        event["client_url"] = notification.external_url
        event["links"] = [{"href": notification.external_url, "text": "Open modelfleet"}]
    return event


def _payload(notification: Notification) -> dict[str, Any]:
    firing = [a for a in notification.alerts if a.firing]
    judged = firing or notification.alerts
    common = notification.common_labels
    payload: dict[str, Any] = {
        "summary": truncate(_summary(notification, firing), SUMMARY_CHARS),
        "source": _source(common),
        "severity": min(
            (pagerduty_severity(a.severity) for a in judged),
            key=SEVERITIES.index,
            default="warning",
        ),
    }
    if judged:
        payload["timestamp"] = rfc3339(min(a.starts_at for a in judged))
    optional = {
        "component": common.get("model"),
        "group": common.get("deployment") or common.get("tenant"),
        "class": common.get("alertname"),
    }
    payload.update({k: v for k, v in optional.items() if v})
    person = notification.person
    payload["custom_details"] = {
        "firing": len(firing),
        "resolved": len(notification.alerts) - len(firing),
        "truncated": notification.truncated,
        "group_labels": dict(notification.group_labels),
        "person": None if person is None else {"name": person.name, "email": person.email},
        "level": notification.level,
        "notes": list(notification.notes),
        "alerts": [_details(a) for a in notification.alerts],
    }
    return payload


def _summary(notification: Notification, firing: list[Alert]) -> str:
    """The title, and the first firing alert's summary annotation where there is one."""
    first = next((a.annotations["summary"] for a in firing if "summary" in a.annotations), None)
    return f"{notification.title}: {first}" if first else notification.title


def _source(common: dict[str, str]) -> str:
    parts = [common[k] for k in _SOURCE_LABELS if common.get(k)]
    return f"{CLIENT}:{'/'.join(parts)}" if parts else CLIENT


def _details(alert: Alert) -> dict[str, Any]:
    return {
        "status": alert.state,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "starts_at": rfc3339(alert.starts_at),
        "ends_at": rfc3339(alert.ends_at) if alert.ends_at is not None else None,
        "anomaly_at": rfc3339(alert.anomaly_at) if alert.anomaly_at is not None else None,
        "fingerprint": alert.fingerprint,
    }


class PagerDutyNotifier(JSONNotifier[PagerDutyConfig]):
    """Sends `pagerduty_body` to the Events API (`config.url`); PagerDuty answers 202."""

    integration = "pagerduty"

    def body(self, notification: Notification) -> dict[str, Any]:
        return pagerduty_body(notification, routing_key=self.config.routing_key)
