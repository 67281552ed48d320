"""The webhook notifier: POSTs Prometheus Alertmanager's webhook body, version 4.

Any receiver written for Alertmanager (alertmanager-webhook-receivers, chat bridges, ticket
bots) reads modelfleet's notifications unchanged. The body, as Alertmanager documents it for
`webhook_config`:

    {"version": "4", "groupKey": ..., "truncatedAlerts": 0, "status": "firing|resolved",
     "receiver": ..., "groupLabels": {...}, "commonLabels": {...}, "commonAnnotations": {...},
     "externalURL": ..., "alerts": [{"status", "labels", "annotations", "startsAt", "endsAt",
     "generatorURL", "fingerprint"}]}

Alertmanager has no `acknowledged` status; an acknowledged group is still `firing`.
"""

from __future__ import annotations

from typing import Any

from modelfleet.alerts.alert import Alert
from modelfleet.alerts.notification import Notification
from modelfleet.alerts.notifiers.base import JSONNotifier, rfc3339
from modelfleet.config.alerting import WebhookConfig

VERSION = "4"
# Go's zero time, which Alertmanager writes for an alert that has not ended.
UNSET_TIME = "0001-01-01T00:00:00Z"


def webhook_body(notification: Notification, *, max_alerts: int = 0) -> dict[str, Any]:
    """Alertmanager's webhook payload; with `max_alerts` > 0, at most that many alerts.

    `truncatedAlerts` counts the alerts left out here plus those the notification already
    left out (`notification.truncated`).
    """
    alerts = notification.alerts
    truncated = notification.truncated
    if max_alerts > 0 and len(alerts) > max_alerts:
        truncated += len(alerts) - max_alerts
        alerts = alerts[:max_alerts]
    return {
        "version": VERSION,
        "groupKey": notification.group_key,
        "truncatedAlerts": truncated,
        "status": notification.status,
        "receiver": notification.receiver,
        "groupLabels": dict(notification.group_labels),
        "commonLabels": notification.common_labels,
        "commonAnnotations": notification.common_annotations,
        "externalURL": notification.external_url,
        "alerts": [_alert(a) for a in alerts],
    }


def _alert(alert: Alert) -> dict[str, Any]:
    return {
        "status": alert.state,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": rfc3339(alert.starts_at),
        "endsAt": rfc3339(alert.ends_at) if alert.ends_at is not None else UNSET_TIME,
        # Prometheus links the rule's expression here; modelfleet's sources have no
        # expression browser to link to, and Alertmanager sends "" for such alerts.
        "generatorURL": "",
        "fingerprint": alert.fingerprint,
    }


class WebhookNotifier(JSONNotifier[WebhookConfig]):
    """POSTs `webhook_body` to the configured URL; a 2xx answer is success."""

    integration = "webhook"

    def body(self, notification: Notification) -> dict[str, Any]:
        return webhook_body(notification, max_alerts=self.config.max_alerts)
