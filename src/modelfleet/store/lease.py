"""Leases: one holder at a time for a named role (the control loop), kept alive by renewal.

A lease is a row of the `leases` table: who holds it, until when, and its `term`, a counter that
grows each time the lease is taken afresh (a new holder, or the same one after it lapsed). The
term is a fencing token: whoever sees it change knows that someone else may have acted since.

Every change is one compare-and-set statement whose WHERE clause says when it may happen, and
its row count says whether it did; the first acquisition is an INSERT whose primary-key conflict
means that another holder got there first. So two processes racing for a lease cannot both win,
on SQLite or PostgreSQL, whatever their interleaving. Callers pass `now`: holders' clocks must
agree to well within the lease's time to live (see docs/leader-election.md).
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, select, update

from modelfleet.store.tables import leases
from modelfleet.store.upsert import insert_or_ignore


@dataclass(frozen=True)
class LeaseState:
    """A lease as stored: `holder` holds it in `term` until `expires_at` (exclusive)."""

    name: str
    holder: str
    term: int
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime

    def held_at(self, now: datetime) -> bool:
        """Whether the lease is still in force at `now`."""
        return now < self.expires_at


def new_holder() -> str:
    """A holder id unique to this process: host name, pid and a random suffix."""
    host = socket.gethostname()[:200]
    return f"{host}:{os.getpid()}:{secrets.token_hex(4)}"


def acquire(
    conn: Connection, name: str, holder: str, now: datetime, ttl: timedelta
) -> LeaseState | None:
    """Renew the lease if `holder` holds it, else take it if it is free or has lapsed.

    Returns the lease as it now stands, or None when someone else holds it. Taking it afresh
    (first ever, from another holder, or back after it lapsed) starts a new term.
    """
    if ttl <= timedelta(0):
        raise ValueError("a lease's time to live must be positive")
    ours = leases.c.name == name
    renewed = conn.execute(
        update(leases)
        .where(ours, leases.c.holder == holder, leases.c.expires_at > now)
        .values(renewed_at=now, expires_at=now + ttl)
    )
    if renewed.rowcount == 0:
        taken = conn.execute(
            update(leases)
            .where(ours, leases.c.expires_at <= now)
            .values(
                holder=holder,
                term=leases.c.term + 1,
                acquired_at=now,
                renewed_at=now,
                expires_at=now + ttl,
            )
        )
        if taken.rowcount == 0:
            first = {
                "name": name,
                "holder": holder,
                "term": 1,
                "acquired_at": now,
                "renewed_at": now,
                "expires_at": now + ttl,
            }
            # A conflict leaves the row of whoever got there first: someone else holds it.
            insert_or_ignore(conn, leases, [first], unique=["name"])
    state = current(conn, name)
    # Nobody else ever writes our holder id, so the row names us only if one step above won.
    return state if state is not None and state.holder == holder else None


def renew(
    conn: Connection, name: str, holder: str, term: int, now: datetime, ttl: timedelta
) -> LeaseState | None:
    """Extend `holder`'s lease of `term`, only if it has not lapsed; None when it has.

    Stricter than `acquire`: a holder whose lease lapsed must not carry on as if nothing
    happened, even when nobody took the lease meanwhile.
    """
    extended = conn.execute(
        update(leases)
        .where(
            leases.c.name == name,
            leases.c.holder == holder,
            leases.c.term == term,
            leases.c.expires_at > now,
        )
        .values(renewed_at=now, expires_at=now + ttl)
    )
    return current(conn, name) if extended.rowcount == 1 else None


def release(conn: Connection, name: str, holder: str, now: datetime) -> bool:
    """End `holder`'s lease at `now`, so that another may take it at once; False if not held.

    The row stays, with its holder and term, so the next holder's term still counts up.
    """
    ended = conn.execute(
        update(leases)
        .where(leases.c.name == name, leases.c.holder == holder, leases.c.expires_at > now)
        .values(expires_at=now)
    )
    return ended.rowcount == 1


def current(conn: Connection, name: str) -> LeaseState | None:
    """The lease `name` as stored, held or lapsed; None if nobody ever took it."""
    row = conn.execute(select(leases).where(leases.c.name == name)).one_or_none()
    if row is None:
        return None
    return LeaseState(
        name=row.name,
        holder=row.holder,
        term=row.term,
        acquired_at=row.acquired_at,
        renewed_at=row.renewed_at,
        expires_at=row.expires_at,
    )
