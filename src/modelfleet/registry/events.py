"""Events: what a controller tells the rest of the control plane and the people on call.

Controllers never call each other; a rollout that rolls back, or a gate that refuses a version,
appends an event here, and alerting (or an operator's `modelfleet events`) reads it from the
store. Events are only ever appended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, insert, select

from modelfleet.store.tables import events

Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True)
class Event:
    at: datetime
    source: str  # the controller that wrote it: rollouts, monitors, ...
    kind: str  # dotted, e.g. rollout.rolled_back
    severity: Severity
    subject: str  # what it is about: a deployment, a tenant, a model
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    tenant: str | None = None


def record_event(conn: Connection, event: Event) -> None:
    conn.execute(
        insert(events).values(
            at=event.at,
            source=event.source,
            kind=event.kind,
            severity=event.severity,
            subject=event.subject,
            tenant=event.tenant,
            message=event.message,
            details=event.details,
        )
    )


def recent_events(
    conn: Connection, *, since: datetime | None = None, source: str | None = None, limit: int = 100
) -> list[Event]:
    """The newest events first."""
    query = select(events).order_by(events.c.id.desc()).limit(limit)
    if since is not None:
        query = query.where(events.c.at >= since)
    if source is not None:
        query = query.where(events.c.source == source)
    return [_event(r) for r in conn.execute(query)]


def alert_details(
    labels: dict[str, str],
    state: str,
    *,
    annotations: dict[str, str] | None = None,
    anomaly_at: datetime | None = None,
    expires_in_s: float | None = None,
) -> dict[str, Any]:
    """What an event carries in `details["alert"]` to raise (`firing`) or clear (`resolved`)
    an alert by its labels: the alert manager reads it (alerts/sources.py)."""
    return {
        "labels": labels,
        "state": state,
        "annotations": annotations or {},
        "anomaly_at": anomaly_at.isoformat() if anomaly_at is not None else None,
        "expires_in_s": expires_in_s,  # a one-off notice resolves by itself after this long
    }


def events_after(
    conn: Connection, after_id: int, *, limit: int = 10_000
) -> list[tuple[int, Event]]:
    """Events with an id above `after_id`, oldest first, with their ids (for a cursor)."""
    query = select(events).where(events.c.id > after_id).order_by(events.c.id).limit(limit)
    return [(r.id, _event(r)) for r in conn.execute(query)]


def _event(r: Any) -> Event:
    return Event(
        r.at, r.source, r.kind, r.severity, r.subject, r.message, dict(r.details), r.tenant
    )
