"""Rollups to and from the store.

A worker's flush inserts one row per rollup it holds, all in one transaction; nothing is ever
updated in place, so any number of workers and gateways flush concurrently without conflict.
Reading merges the rows of each key by addition, which is exact.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from modelfleet.store.tables import rollups as rollups_table
from modelfleet.store.tables import samples as samples_table
from modelfleet.telemetry.rollup import Rollup, RollupKey, merge_all


def write_rollups(
    conn: Connection, rollups: Iterable[Rollup], *, now: datetime, resolution: str = "minute"
) -> int:
    """Insert rollups as flushed at `now`; returns how many rows were written. `resolution`
    "hour": each rollup holds a whole hour, keyed at its start (retention's compaction)."""
    rows = [
        {
            "tenant": r.key.tenant,
            "model": r.key.model,
            "version": r.key.version,
            "region": r.key.region,
            "minute": r.key.minute,
            "shadow": r.key.shadow,
            "payload": r.to_dict(),
            "flushed_at": now,
            "resolution": resolution,
        }
        for r in rollups
    ]
    if rows:
        conn.execute(insert(rollups_table), rows)
    return len(rows)


def read_rollups(
    conn: Connection,
    *,
    since: datetime,
    until: datetime,
    tenant: str | None = None,
    model: str | None = None,
    version: str | None = None,
    shadow: bool = False,
) -> dict[RollupKey, Rollup]:
    """Every rollup with since <= minute < until, merged per key: the requests clients were
    answered, or with `shadow` those mirrored to a shadow version."""
    t = rollups_table
    query = select(t.c.payload).where(t.c.minute >= since, t.c.minute < until, t.c.shadow == shadow)
    if tenant is not None:
        query = query.where(t.c.tenant == tenant)
    if model is not None:
        query = query.where(t.c.model == model)
    if version is not None:
        query = query.where(t.c.version == version)
    return merge_all(Rollup.from_dict(payload) for payload in conn.execute(query).scalars())


def write_samples(conn: Connection, samples: list[dict[str, Any]]) -> int:
    """Insert raw request samples (as `Gateway` keeps them); returns how many."""
    if samples:
        conn.execute(insert(samples_table), samples)
    return len(samples)
