"""What people do to alerts: acknowledge a group (stops its escalation), resolve alerts by hand.

Both are written as events too, so incidents put them on their timelines, and both are
audited with the actor's name.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from modelfleet.alerts.controller import load_config
from modelfleet.alerts.groups import Group, get_group, open_groups, save
from modelfleet.alerts.notification import Notification
from modelfleet.alerts.outbox import enqueue
from modelfleet.alerts.records import alerts_by_fingerprint, resolve_by_hand
from modelfleet.errors import InvalidInput, NotFound
from modelfleet.registry.audit import record
from modelfleet.registry.events import Event, recent_events, record_event

SOURCE = "alerts"


def find_groups(conn: Connection, target: str) -> list[Group]:
    """The groups `target` names: a group id (`12`, `g12`), or an alert's fingerprint (the
    open groups it fires in, as its alert events recorded them)."""
    text = target.removeprefix("g")
    if text.isdigit():
        group = get_group(conn, int(text))
        if group is None:
            raise NotFound("alert group", target)
        return [group]
    if not alerts_by_fingerprint(conn, [target]):
        raise NotFound("alert group or alert fingerprint", target)
    ids: set[int] = set()
    for event in recent_events(conn, source=SOURCE, limit=1000):
        if event.kind == "alert.firing" and event.details.get("fingerprint") == target:
            ids.update(event.details.get("group_ids", []))
    return [g for g in open_groups(conn) if g.id in ids]


def acknowledge(conn: Connection, target: str, *, actor: str, now: datetime) -> list[Group]:
    """Acknowledge the groups `target` names: their escalation stops; PagerDuty is told."""
    groups = [g for g in find_groups(conn, target) if g.state == "open"]
    if not groups:
        raise InvalidInput(f"{target} names no open alert group")
    config = load_config(conn)
    for group in groups:
        if group.acknowledged:
            continue
        group.acknowledged_at, group.acknowledged_by = now, actor
        save(conn, group)
        receiver = config.receivers.get(group.receiver)
        if receiver is not None and group.paged_at is not None:
            firing = alerts_by_fingerprint(conn, group.notified_firing)
            note = Notification(
                receiver=receiver.name,
                kind="acknowledged",
                group_key=group.key,
                group_labels=group.labels,
                alerts=list(firing.values()),
            )
            enqueue(conn, group.id, receiver.spec, note, now)
        record_event(
            conn,
            Event(
                at=now,
                source=SOURCE,
                kind="alert.acknowledged",
                severity="info",
                subject=group.receiver,
                message=f"group {group.id} acknowledged by {actor}",
                details={"group_id": group.id, "by": actor},
            ),
        )
        record(
            conn,
            at=now,
            actor=actor,
            action="acknowledge",
            kind="AlertGroup",
            name=str(group.id),
            old=None,
            new={"acknowledged_by": actor},
        )
    return groups


def resolve(conn: Connection, target: str, *, actor: str, now: datetime) -> list[str]:
    """Resolve by hand the firing alerts `target` names (a fingerprint, or a group's alerts)."""
    if alerts_by_fingerprint(conn, [target]):
        fingerprints = [target]
    else:
        fingerprints = [fp for g in find_groups(conn, target) for fp in g.notified_firing]
    done = resolve_by_hand(conn, fingerprints, now)
    if not done:
        raise InvalidInput(f"{target} names no firing alert")
    for alert in done:
        record_event(
            conn,
            Event(
                at=now,
                source=SOURCE,
                kind="alert.resolved",
                severity="info",
                subject=alert.name,
                message=f"{alert.name} resolved by {actor}",
                details={
                    "fingerprint": alert.fingerprint,
                    "labels": alert.labels,
                    "ends_at": now.isoformat(),
                    "group_ids": [],
                    "by": actor,
                },
                tenant=alert.labels.get("tenant"),
            ),
        )
        record(
            conn,
            at=now,
            actor=actor,
            action="resolve",
            kind="Alert",
            name=alert.fingerprint,
            old={"state": "firing"},
            new={"state": "resolved"},
        )
    return [a.fingerprint for a in done]
