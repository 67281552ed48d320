"""What a notifier is asked to deliver: one aggregation group's state, for one receiver.

The body each integration sends (Alertmanager webhook, Slack, PagerDuty, e-mail) is built
from this by the notifier, so every integration says the same thing in its own format.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from modelfleet.alerts.alert import Alert

Kind = Literal["firing", "resolved", "acknowledged"]


@dataclass(frozen=True)
class OnCallPerson:
    name: str
    email: str


@dataclass(frozen=True)
class Notification:
    """A group's alerts as they stand, sent to `receiver`.

    kind: `firing` while any alert of the group fires, `resolved` once all have resolved,
        `acknowledged` when a person took it (PagerDuty's acknowledge).
    group_key: stable for the group's whole life: PagerDuty's dedup key derives from it, so
        trigger, acknowledge and resolve address one PagerDuty incident.
    page: this notification pages `person` (level `level` of an escalation policy).
    """

    receiver: str
    kind: Kind
    group_key: str
    group_labels: dict[str, str]
    alerts: list[Alert]
    external_url: str = "http://localhost:8080"
    page: bool = False
    person: OnCallPerson | None = None
    level: int | None = None
    truncated: int = 0  # alerts left out of `alerts` (max_alerts)
    notes: list[str] = field(default_factory=list)  # e.g. "escalated: unacknowledged 15m"

    @property
    def status(self) -> Literal["firing", "resolved"]:
        return "resolved" if self.kind == "resolved" else "firing"

    @property
    def common_labels(self) -> dict[str, str]:
        """Labels every alert of the group shares (Alertmanager's commonLabels)."""
        return _common([a.labels for a in self.alerts])

    @property
    def common_annotations(self) -> dict[str, str]:
        return _common([a.annotations for a in self.alerts])

    @property
    def title(self) -> str:
        """One line: `[FIRING:2] HighErrorRate model=retail-vision`."""
        firing = sum(1 for a in self.alerts if a.firing)
        head = f"[{self.kind.upper()}" + (f":{firing}]" if self.kind != "resolved" else "]")
        labels = " ".join(f"{k}={v}" for k, v in sorted(self.group_labels.items()))
        return f"{head} {labels}".strip()


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = maps[0]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


def to_dict(notification: Notification) -> dict[str, Any]:
    """JSON-ready, as the outbox keeps it until delivered."""
    return {
        "receiver": notification.receiver,
        "kind": notification.kind,
        "group_key": notification.group_key,
        "group_labels": notification.group_labels,
        "alerts": [_alert_dict(a) for a in notification.alerts],
        "external_url": notification.external_url,
        "page": notification.page,
        "person": asdict(notification.person) if notification.person else None,
        "level": notification.level,
        "truncated": notification.truncated,
        "notes": notification.notes,
    }


def from_dict(data: dict[str, Any]) -> Notification:
    person = data.get("person")
    return Notification(
        receiver=data["receiver"],
        kind=data["kind"],
        group_key=data["group_key"],
        group_labels=dict(data["group_labels"]),
        alerts=[_alert_of(a) for a in data["alerts"]],
        external_url=data["external_url"],
        page=bool(data["page"]),
        person=OnCallPerson(**person) if person else None,
        level=data.get("level"),
        truncated=int(data.get("truncated", 0)),
        notes=list(data.get("notes", [])),
    )


def _alert_dict(alert: Alert) -> dict[str, Any]:
    return {
        "labels": alert.labels,
        "annotations": alert.annotations,
        "state": alert.state,
        "starts_at": alert.starts_at.isoformat(),
        "ends_at": alert.ends_at.isoformat() if alert.ends_at else None,
        "anomaly_at": alert.anomaly_at.isoformat() if alert.anomaly_at else None,
        "source": alert.source,
        "flaps": alert.flaps,
    }


def _alert_of(data: dict[str, Any]) -> Alert:
    def at(name: str) -> datetime | None:
        value = data.get(name)
        return datetime.fromisoformat(value) if value else None

    starts_at = at("starts_at")
    assert starts_at is not None
    return Alert(
        labels=dict(data["labels"]),
        annotations=dict(data["annotations"]),
        state=data["state"],
        starts_at=starts_at,
        ends_at=at("ends_at"),
        anomaly_at=at("anomaly_at"),
        source=data.get("source", "rules"),
        flaps=int(data.get("flaps", 0)),
    )
