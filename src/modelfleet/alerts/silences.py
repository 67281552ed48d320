"""Silences: a person mutes the alerts that match some matchers, from one time to another.

As in Prometheus Alertmanager, a silence is active from `starts_at` (included) to `ends_at`
(excluded): before, it is pending; after, expired. It mutes an alert when every matcher
matches the alert's labels. A silence must name at least one matcher that the empty label set
does not match, so that no silence mutes every alert. Expiring a silence ends it now; silences
are never deleted, so who muted what, and why, stays on record.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from modelfleet.alerts.labels import Labels, Matcher, matches_all
from modelfleet.errors import InvalidSilence, UnknownSilence
from modelfleet.store.tables import silences as silences_table


@dataclass(frozen=True)
class Silence:
    id: int
    matchers: list[Matcher]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str

    def active(self, at: datetime) -> bool:
        """Whether the silence mutes alerts at `at`: started, and not yet ended."""
        return self.starts_at <= at < self.ends_at

    def silences(self, labels: Labels) -> bool:
        """Whether every matcher matches `labels` (whatever the time)."""
        return matches_all(self.matchers, labels)


def create_silence(
    conn: Connection,
    *,
    matchers: list[str],
    starts_at: datetime,
    ends_at: datetime,
    created_by: str,
    comment: str,
    now: datetime | None = None,
) -> Silence:
    """Record a silence; raises InvalidSilence, saying why, when it is refused.

    now: when it is created (`created_at`), and a silence must end after it; None: at
        `starts_at`.
    """
    parsed = _validate(matchers, starts_at, ends_at, now)
    created_at = starts_at if now is None else now
    result = conn.execute(
        insert(silences_table)
        .values(
            matchers=[str(m) for m in parsed],
            starts_at=starts_at,
            ends_at=ends_at,
            created_by=created_by,
            comment=comment,
            created_at=created_at,
        )
        .returning(silences_table.c.id)
    )
    return Silence(int(result.scalar_one()), parsed, starts_at, ends_at, created_by, comment)


def _validate(
    matchers: list[str], starts_at: datetime, ends_at: datetime, now: datetime | None
) -> list[Matcher]:
    if not matchers:
        raise InvalidSilence('a silence needs at least one matcher, like alertname="RegionDown"')
    parsed: list[Matcher] = []
    for text in matchers:
        try:
            matcher = Matcher.parse(text)
        except ValueError as exc:
            raise InvalidSilence(str(exc)) from exc
        if matcher.op in ("=~", "!~"):
            try:
                re.compile(matcher.value)
            except re.error as exc:
                raise InvalidSilence(f"{text}: the regular expression is invalid: {exc}") from exc
        parsed.append(matcher)
    if all(m.matches({}) for m in parsed):
        raise InvalidSilence(
            f"the matchers {', '.join(matchers)} would silence every alert: at least one must "
            f'not match an empty value, like alertname="RegionDown" or region=~"eu-.+"'
        )
    for name, value in (("starts_at", starts_at), ("ends_at", ends_at), ("now", now)):
        if value is not None and value.tzinfo is None:
            raise InvalidSilence(f"{name} must be timezone-aware, got {value.isoformat()}")
    if ends_at <= starts_at:
        raise InvalidSilence(
            f"a silence ends after it starts: starts_at {starts_at.isoformat()}, "
            f"ends_at {ends_at.isoformat()}"
        )
    if now is not None and ends_at <= now:
        raise InvalidSilence(f"ends_at {ends_at.isoformat()} has already passed")
    return parsed


def expire_silence(conn: Connection, silence_id: int, at: datetime) -> Silence:
    """End a silence at `at`; one already ended by then is returned as it is.

    A pending silence (starting after `at`) ends before it ever starts: both its times become
    `at`, as Alertmanager does. Raises UnknownSilence when no silence has this id.
    """
    row = conn.execute(
        select(silences_table).where(silences_table.c.id == silence_id)
    ).one_or_none()
    if row is None:
        raise UnknownSilence(silence_id)
    silence = _silence(row)
    if silence.ends_at <= at:
        return silence
    starts_at = min(silence.starts_at, at)
    conn.execute(
        update(silences_table)
        .where(silences_table.c.id == silence_id)
        .values(starts_at=starts_at, ends_at=at)
    )
    return Silence(silence.id, silence.matchers, starts_at, at, silence.created_by, silence.comment)


def list_silences(
    conn: Connection, *, at: datetime | None = None, include_expired: bool = False
) -> list[Silence]:
    """Silences by id. With `at`, those expired by then are left out unless `include_expired`;
    without it there is no "now" to judge by, and every silence is listed."""
    query = select(silences_table).order_by(silences_table.c.id)
    if at is not None and not include_expired:
        query = query.where(silences_table.c.ends_at > at)
    return [_silence(row) for row in conn.execute(query)]


def silencing(silences: Iterable[Silence], labels: Labels, at: datetime) -> list[int]:
    """Ids of the silences active at `at` that mute an alert with `labels`."""
    return [s.id for s in silences if s.active(at) and s.silences(labels)]


def _silence(row: Row[Any]) -> Silence:
    m = row._mapping
    return Silence(
        id=int(m["id"]),
        matchers=[Matcher.parse(text) for text in m["matchers"]],
        starts_at=m["starts_at"],
        ends_at=m["ends_at"],
        created_by=m["created_by"],
        comment=m["comment"],
    )
