"""The notification outbox: every notification is stored first, then delivered and retried.

A group's notification becomes one row per integration of its receiver (and, for a page, per
person paged), in the same transaction as the decision to notify, so a crash never loses one.
Delivery happens outside any transaction (a slow receiver must not hold the store); each
attempt's result is written back, and a failed one is retried after `backoff(attempts)`, up to
`MAX_ATTEMPTS`. Every attempt that ends a row (delivered, or given up) is an `alert.notified`
event, which is how incidents count pages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, or_, select, update

from modelfleet.alerts.notification import Notification, from_dict, to_dict
from modelfleet.alerts.notifiers.delivery import MAX_ATTEMPTS, backoff, deliver, notifier_for
from modelfleet.config.alerting import ReceiverSpec
from modelfleet.errors import DeliveryFailed
from modelfleet.registry.events import Event, record_event
from modelfleet.store import Store
from modelfleet.store.tables import notifications

SOURCE = "alerts"
INTEGRATIONS = ("webhook", "slack", "pagerduty", "email")


@dataclass(frozen=True)
class Pending:
    id: int
    group_id: int | None
    receiver: str
    integration: str
    target: dict[str, Any]
    notification: Notification
    attempts: int


def enqueue(
    conn: Connection,
    group_id: int,
    receiver: ReceiverSpec,
    notification: Notification,
    now: datetime,
    *,
    not_before: datetime | None = None,
) -> int:
    """Store one row per integration of `receiver`, to be sent from `not_before` (default:
    now); returns how many."""
    rows = []
    for integration in INTEGRATIONS:
        for config in getattr(receiver, integration):
            if notification.kind == "acknowledged" and integration != "pagerduty":
                continue  # only PagerDuty keeps an incident state to acknowledge
            rows.append(
                {
                    "group_id": group_id,
                    "receiver": notification.receiver,
                    "integration": integration,
                    "kind": notification.kind,
                    "page": notification.page,
                    "person": notification.person.name if notification.person else None,
                    "level": notification.level,
                    "target": config.model_dump(mode="json", by_alias=True),
                    "body": to_dict(notification),
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": not_before or now,
                    "last_error": None,
                    "created_at": now,
                    "delivered_at": None,
                }
            )
    if rows:
        conn.execute(insert(notifications), rows)
    return len(rows)


def cancel_pending(conn: Connection, group_id: int, kind: str) -> int:
    """Drop a group's notifications of `kind` not sent yet; returns how many."""
    return conn.execute(
        delete(notifications).where(
            notifications.c.group_id == group_id,
            notifications.c.kind == kind,
            notifications.c.status == "pending",
            notifications.c.attempts == 0,
        )
    ).rowcount


def due(conn: Connection, now: datetime, *, limit: int = 200) -> list[Pending]:
    rows = conn.execute(
        select(notifications)
        .where(
            notifications.c.status == "pending",
            or_(notifications.c.next_attempt_at.is_(None), notifications.c.next_attempt_at <= now),
        )
        .order_by(notifications.c.id)
        .limit(limit)
    )
    return [
        Pending(
            r.id,
            r.group_id,
            r.receiver,
            r.integration,
            dict(r.target),
            from_dict(r.body),
            r.attempts,
        )
        for r in rows
    ]


def deliver_due(store: Store, now: datetime, *, secrets: Mapping[str, str]) -> list[Event]:
    """Try every notification that is due; returns an event for each that ended."""
    with store.begin() as conn:
        pending = due(conn, now)
    results: list[tuple[Pending, bool, str | None, bool]] = []
    for item in pending:
        try:
            notifier = notifier_for(item.integration, item.target, secrets=secrets)  # type: ignore[arg-type]
        except DeliveryFailed as exc:
            results.append((item, False, f"misconfigured: {exc.reason}", False))
            continue
        result = deliver(notifier, item.notification)
        results.append((item, result.ok, result.error, result.retryable))
    events = []
    with store.begin() as conn:
        for item, ok, error, retryable in results:
            attempts = item.attempts + 1
            if ok:
                values: dict[str, Any] = {"status": "delivered", "delivered_at": now}
            elif retryable and attempts < MAX_ATTEMPTS:
                values = {"next_attempt_at": now + backoff(attempts)}
            else:
                values = {"status": "failed", "next_attempt_at": None}
            conn.execute(
                update(notifications)
                .where(notifications.c.id == item.id)
                .values(attempts=attempts, last_error=error, **values)
            )
            if values.get("status") is None:
                continue
            event = _notified(item, ok=ok, error=error, attempts=attempts, now=now)
            record_event(conn, event)
            events.append(event)
    return events


def _notified(item: Pending, *, ok: bool, error: str | None, attempts: int, now: datetime) -> Event:
    n = item.notification
    who = f" paging {n.person.name} (level {n.level})" if n.page and n.person else ""
    outcome = "delivered" if ok else f"failed after {attempts} attempt(s): {error}"
    return Event(
        at=now,
        source=SOURCE,
        kind="alert.notified",
        severity="info" if ok else "warning",
        subject=item.receiver,
        message=f"{n.kind} notification to {item.receiver} by {item.integration}{who}: {outcome}",
        details={
            "group_id": item.group_id,
            "notification_id": item.id,
            "receiver": item.receiver,
            "integration": item.integration,
            "kind": n.kind,
            "page": n.page,
            "person": n.person.name if n.person else None,
            "level": n.level,
            "delivered": ok,
            "attempts": attempts,
            "error": error,
        },
    )
