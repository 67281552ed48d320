"""Alerts in the store: one row per fingerprint, moved between firing and resolved by signals.

Deduplication is the fingerprint: however many ticks or sources report a condition, it is one
row. Flap damping is the `flap_window`: an alert that fires again within it after resolving
keeps its row and its original detection time (`flaps` counts the returns), so it stays one
alert; the alert controller keeps its group's page too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from modelfleet.alerts.alert import ALERTNAME, Alert, Signal
from modelfleet.alerts.labels import fingerprint
from modelfleet.store.tables import alerts


@dataclass(frozen=True)
class Change:
    """What a signal did to an alert: `fired` (new, or again after its flap window),
    `refired` (again within it: the same alert), `resolved`, or nothing (None)."""

    alert: Alert
    what: str


def alert_of(row: Any) -> Alert:
    return Alert(
        labels=dict(row.labels),
        annotations=dict(row.annotations),
        state=row.state,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        anomaly_at=row.anomaly_at,
        source=row.source,
        flaps=row.flaps,
        suppressed_by=list(row.suppressed_by or []),
    )


def apply_signal(conn: Connection, signal: Signal, *, flap_window: timedelta) -> Change | None:
    """Record one source's signal; returns what changed, or None for a mere refresh."""
    fp = fingerprint(signal.labels)
    row = conn.execute(select(alerts).where(alerts.c.fingerprint == fp)).one_or_none()
    at = signal.at
    expires = at + timedelta(seconds=signal.expires_in_s) if signal.expires_in_s else None
    if signal.state == "resolved":
        if row is None or row.state == "resolved":
            return None
        conn.execute(
            update(alerts)
            .where(alerts.c.fingerprint == fp)
            .values(state="resolved", ends_at=at, updated_at=at)
        )
        return Change(_read(conn, fp), "resolved")
    if row is None:
        conn.execute(
            insert(alerts).values(
                fingerprint=fp,
                name=signal.labels.get(ALERTNAME, ""),
                labels=signal.labels,
                annotations=signal.annotations,
                source=signal.source,
                state="firing",
                anomaly_at=signal.anomaly_at,
                starts_at=at,
                ends_at=None,
                refreshed_at=at,
                expires_at=expires,
                flaps=0,
                suppressed_by=None,
                updated_at=at,
            )
        )
        return Change(_read(conn, fp), "fired")
    values: dict[str, Any] = {
        "refreshed_at": at,
        "expires_at": expires,
        "annotations": {**row.annotations, **signal.annotations},
        "updated_at": at,
    }
    if row.state == "firing":
        conn.execute(update(alerts).where(alerts.c.fingerprint == fp).values(**values))
        return None
    flapping = row.ends_at is not None and at - row.ends_at <= flap_window
    values |= {"state": "firing", "ends_at": None}
    if flapping:
        values["flaps"] = row.flaps + 1
    else:  # a new episode of the same alert
        values |= {"starts_at": at, "anomaly_at": signal.anomaly_at, "flaps": 0}
    conn.execute(update(alerts).where(alerts.c.fingerprint == fp).values(**values))
    return Change(_read(conn, fp), "refired" if flapping else "fired")


def expire_alerts(conn: Connection, now: datetime) -> list[Alert]:
    """Resolve firing alerts whose source stopped refreshing them; returns them."""
    due = conn.execute(
        select(alerts.c.fingerprint).where(
            alerts.c.state == "firing", alerts.c.expires_at.is_not(None), alerts.c.expires_at <= now
        )
    ).scalars()
    out = []
    for fp in list(due):
        conn.execute(
            update(alerts)
            .where(alerts.c.fingerprint == fp)
            .values(state="resolved", ends_at=now, updated_at=now)
        )
        out.append(_read(conn, fp))
    return out


def resolve_by_hand(conn: Connection, fingerprints: Iterable[str], now: datetime) -> list[Alert]:
    """Mark alerts resolved because a person said so (`modelfleet alerts resolve`)."""
    out = []
    for fp in fingerprints:
        done = conn.execute(
            update(alerts)
            .where(alerts.c.fingerprint == fp, alerts.c.state == "firing")
            .values(state="resolved", ends_at=now, updated_at=now)
        ).rowcount
        if done:
            out.append(_read(conn, fp))
    return out


def set_suppression(conn: Connection, fp: str, suppressed_by: list[str]) -> None:
    conn.execute(
        update(alerts).where(alerts.c.fingerprint == fp).values(suppressed_by=suppressed_by or None)
    )


def firing_alerts(conn: Connection) -> list[Alert]:
    rows = conn.execute(select(alerts).where(alerts.c.state == "firing").order_by(alerts.c.id))
    return [alert_of(r) for r in rows]


def alerts_by_fingerprint(conn: Connection, fingerprints: Iterable[str]) -> dict[str, Alert]:
    wanted = list(fingerprints)
    if not wanted:
        return {}
    rows = conn.execute(select(alerts).where(alerts.c.fingerprint.in_(wanted)))
    return {r.fingerprint: alert_of(r) for r in rows}


def list_alerts(
    conn: Connection, *, state: str | None = None, since: datetime | None = None, limit: int = 200
) -> list[Alert]:
    """Alerts, the most recently changed first."""
    query = select(alerts).order_by(alerts.c.updated_at.desc(), alerts.c.id.desc()).limit(limit)
    if state is not None:
        query = query.where(alerts.c.state == state)
    if since is not None:
        query = query.where(alerts.c.updated_at >= since)
    return [alert_of(r) for r in conn.execute(query)]


def _read(conn: Connection, fp: str) -> Alert:
    return alert_of(conn.execute(select(alerts).where(alerts.c.fingerprint == fp)).one())
