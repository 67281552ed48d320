"""Cursors: how far a controller has read an append-only table (the events, by id).

A controller reads past its cursor and moves it in the same transaction as the decisions it
took on what it read, so a crash between the two can neither skip nor repeat anything.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select

from modelfleet.store.tables import cursors
from modelfleet.store.upsert import upsert


def read_cursor(conn: Connection, name: str) -> int:
    """The cursor's position; 0 before the first move."""
    found = conn.execute(select(cursors.c.position).where(cursors.c.name == name)).scalar()
    return int(found or 0)


def move_cursor(conn: Connection, name: str, position: int, *, now: datetime) -> None:
    upsert(
        conn,
        cursors,
        [{"name": name, "position": position, "updated_at": now}],
        unique=["name"],
        update=["position", "updated_at"],
    )
