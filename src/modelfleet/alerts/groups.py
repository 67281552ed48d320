"""Aggregation groups: the alerts one receiver hears about together, and when it hears.

Alertmanager's timing, kept exactly: a new group waits `group_wait` before its first
notification (so alerts that start together arrive together); after that it is looked at every
`group_interval`, and notified when its alerts changed (one fired, one resolved) or, unchanged
and still firing, once `repeat_interval` has passed since the last notification. A group whose
alerts have all resolved sends its resolved notification and closes.

Flap damping: a closed group whose alert fires again within the `flap_window` reopens, the same
group, rather than a new one: its incident continues, and the people it paged are not paged
again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, insert, select, update

from modelfleet.store.tables import alert_groups

Decision = Literal["wait", "notify", "resolve", "close_silently"]


@dataclass(frozen=True)
class Timing:
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta

    def to_dict(self) -> dict[str, float]:
        return {
            "group_wait": self.group_wait.total_seconds(),
            "group_interval": self.group_interval.total_seconds(),
            "repeat_interval": self.repeat_interval.total_seconds(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Timing:
        return cls(
            timedelta(seconds=data["group_wait"]),
            timedelta(seconds=data["group_interval"]),
            timedelta(seconds=data["repeat_interval"]),
        )


@dataclass
class Group:
    """One aggregation group, as stored."""

    id: int
    key: str
    receiver: str
    labels: dict[str, str]
    timing: Timing
    state: str  # open or closed
    opened_at: datetime
    closed_at: datetime | None
    notified_firing: list[str]  # the fingerprints the last notification said were firing
    members: list[str]  # every fingerprint routed to it since it opened
    last_notified_at: datetime | None
    next_flush_at: datetime
    paged_at: datetime | None
    escalation_level: int
    acknowledged_at: datetime | None
    acknowledged_by: str | None

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None


def decide(group: Group, firing: set[str], now: datetime) -> Decision:
    """What a group should do at `now`, with `firing` the fingerprints firing in it now."""
    if now < group.next_flush_at:
        return "wait"
    if not firing:
        return "resolve" if group.notified_firing else "close_silently"
    if group.last_notified_at is None or firing != set(group.notified_firing):
        return "notify"
    if now - group.last_notified_at >= group.timing.repeat_interval:
        return "notify"
    return "wait"


def _group(row: Any) -> Group:
    return Group(
        id=row.id,
        key=row.key,
        receiver=row.receiver,
        labels=dict(row.labels),
        timing=Timing.from_dict(row.settings),
        state=row.state,
        opened_at=row.opened_at,
        closed_at=row.closed_at,
        notified_firing=list(row.notified.get("firing", [])),
        members=list(row.notified.get("members", [])),
        last_notified_at=row.last_notified_at,
        next_flush_at=row.next_flush_at,
        paged_at=row.paged_at,
        escalation_level=row.escalation_level,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
    )


def open_groups(conn: Connection) -> list[Group]:
    rows = conn.execute(
        select(alert_groups).where(alert_groups.c.state == "open").order_by(alert_groups.c.id)
    )
    return [_group(r) for r in rows]


def get_group(conn: Connection, group_id: int) -> Group | None:
    row = conn.execute(select(alert_groups).where(alert_groups.c.id == group_id)).one_or_none()
    return _group(row) if row is not None else None


def list_groups(conn: Connection, *, limit: int = 100) -> list[Group]:
    rows = conn.execute(select(alert_groups).order_by(alert_groups.c.id.desc()).limit(limit))
    return [_group(r) for r in rows]


def latest_with_key(conn: Connection, key: str) -> Group | None:
    row = conn.execute(
        select(alert_groups)
        .where(alert_groups.c.key == key)
        .order_by(alert_groups.c.id.desc())
        .limit(1)
    ).one_or_none()
    return _group(row) if row is not None else None


def create_group(
    conn: Connection,
    *,
    key: str,
    receiver: str,
    labels: dict[str, str],
    timing: Timing,
    now: datetime,
) -> Group:
    inserted = conn.execute(
        insert(alert_groups).values(
            key=key,
            receiver=receiver,
            labels=labels,
            settings=timing.to_dict(),
            state="open",
            opened_at=now,
            closed_at=None,
            notified={"firing": [], "members": []},
            last_notified_at=None,
            next_flush_at=now + timing.group_wait,
            paged_at=None,
            escalation_level=-1,
            acknowledged_at=None,
            acknowledged_by=None,
        )
    ).inserted_primary_key
    assert inserted is not None
    group = get_group(conn, int(inserted[0]))
    assert group is not None
    return group


def save(conn: Connection, group: Group) -> None:
    conn.execute(
        update(alert_groups)
        .where(alert_groups.c.id == group.id)
        .values(
            state=group.state,
            closed_at=group.closed_at,
            notified={"firing": sorted(group.notified_firing), "members": sorted(group.members)},
            last_notified_at=group.last_notified_at,
            next_flush_at=group.next_flush_at,
            paged_at=group.paged_at,
            escalation_level=group.escalation_level,
            acknowledged_at=group.acknowledged_at,
            acknowledged_by=group.acknowledged_by,
        )
    )
