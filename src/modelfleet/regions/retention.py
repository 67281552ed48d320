"""Tiered retention: raw records for days, minute rollups for weeks, hourly rollups for a year.

Per tenant tier, the fleet's `RetentionPolicy` (or, for a tier without one, the defaults: raw
7 days, minute rollups 35 days, hourly rollups 365 days) says how long each kind of data stays.
Each pass of the `RetentionController`, for the tenants of each policy:

1. **Expired rollups**: rows (of either resolution) of hours that ended more than
   `hourly_rollups` ago are deleted.
2. **Raw records** older than `raw` are deleted: closed review items (by creation), then
   samples that no review item refers to any more (an open review item keeps its sample until
   someone closes it), the prediction log, and feedback (by receipt).
3. **Compaction**: every hour that ended more than `minute_rollups` ago and still holds minute
   rows is compacted, oldest first, one transaction per hour: the hour's rows of each key that
   has minute rows are merged into one row (`resolution = "hour"`, keyed at the hour's start,
   `modelfleet.telemetry.compaction`), inserted, and the rows it replaces deleted. Totals stay
   exact; a per-minute chart of a compacted hour shows it as one point.

When the policy names an `archive` directory, every row is first written there as Parquet,
`<archive>/<table>/date=YYYY-MM-DD/part-<uuid>.parquet` (the date of the row's time column, in
UTC), before the transaction that deletes it commits. A file is written under a temporary name
and renamed, so a reader never sees half of one. Archiving is at least once: if the deletion
then fails (the store went away, or another process deleted the rows first, which rolls this
one back), the rows are archived again by a later pass, in another file with the same ids.

Each pass is bounded (`batch_rows` rows per table and step, `max_hours` hours compacted), so a
tick never takes long; a backlog (a first run on a year of data) drains over several ticks,
or at once with `modelfleet retention run`. Everything is decided from `now` and the store,
so a pass is idempotent: run again at the same `now`, it finds nothing left to do.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    Connection,
    Float,
    Integer,
    Table,
    and_,
    delete,
    exists,
    func,
    select,
    true,
)

from modelfleet.config.regions import RetentionPolicySpec
from modelfleet.config.schema import RetentionPolicy
from modelfleet.errors import StoreError
from modelfleet.registry.declarations import declared
from modelfleet.registry.events import Event
from modelfleet.store import Store
from modelfleet.store.tables import feedback, predictions, review_items, rollups, samples, tenants
from modelfleet.store.types import UTCDateTime
from modelfleet.telemetry.compaction import HOUR, compact, hour_start
from modelfleet.telemetry.rollup import Rollup
from modelfleet.telemetry.writer import write_rollups

SOURCE = "retention"
DEFAULT_POLICY = RetentionPolicySpec(tier="standard")  # the tier is not used: any tier's defaults

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Raw:
    """A table of raw records: the column that dates a row, and which rows may go at all."""

    table: Table
    time: str
    deletable: Callable[[], ColumnElement[bool]] = true


RAW = (
    # Closed review items before samples: a sample goes only once no review item refers to it.
    _Raw(review_items, "created_at", lambda: review_items.c.status != "open"),
    _Raw(
        samples,
        "at",
        lambda: ~exists().where(review_items.c.sample == samples.c.id),
    ),
    _Raw(predictions, "at"),
    _Raw(feedback, "received_at"),
)
# The tables retention deletes from, with the column that dates their rows.
TIME_COLUMNS = {r.table.name: r.time for r in RAW} | {rollups.name: "minute"}


@dataclass
class Pass:
    """What one pass did, and whether anything was left to do at its `now`."""

    deleted: dict[str, int] = field(default_factory=dict)  # table -> rows deleted
    compacted_hours: int = 0
    compacted_rows: int = 0  # rows replaced by hourly rows (counted in deleted["rollups"] too)
    hourly_rows: int = 0  # hourly rows written
    archived: int = 0  # rows written to Parquet
    done: bool = True

    @property
    def rows(self) -> int:
        """Rows deleted in all, compacted ones included."""
        return sum(self.deleted.values())

    def _count(self, table: str, n: int) -> None:
        self.deleted[table] = self.deleted.get(table, 0) + n


@dataclass(frozen=True)
class _Group:
    """The tenants under one policy: those named, or (None) every tenant not in `others`."""

    policy: RetentionPolicySpec
    tenants: tuple[str, ...] | None
    others: tuple[str, ...] = ()

    def has(self, column: ColumnElement[str]) -> ColumnElement[bool]:
        if self.tenants is not None:
            return column.in_(self.tenants)
        return column.not_in(self.others) if self.others else true()


class RetentionController:
    """Applies each tier's retention policy in bounded passes; see the module.

    `every`: how long a tick waits after a pass that left nothing to do (a pass that left a
    backlog is followed by another at the next tick).
    """

    def __init__(
        self,
        store: Store,
        *,
        batch_rows: int = 2000,
        max_hours: int = 24,
        every: timedelta = timedelta(minutes=5),
    ) -> None:
        self.store = store
        self.batch_rows = batch_rows
        self.max_hours = max_hours
        self.every = every
        self._next: datetime | None = None

    def tick(self, now: datetime) -> list[Event]:
        if self._next is not None and now < self._next:
            return []
        done = self.run_once(now)
        self._next = now + self.every if done.done else None
        if not done.rows:
            return []
        return [
            Event(
                at=now,
                source=SOURCE,
                kind="retention.pass",
                severity="info",
                subject="store",
                message=f"{done.rows} rows deleted, {done.compacted_hours} hours compacted "
                f"into {done.hourly_rows} rows, {done.archived} archived"
                + ("" if done.done else "; more to do"),
                details={
                    "deleted": done.deleted,
                    "compacted_hours": done.compacted_hours,
                    "hourly_rows": done.hourly_rows,
                    "archived": done.archived,
                },
            )
        ]

    def run_once(self, now: datetime) -> Pass:
        """One bounded pass at `now`; `done` says whether it finished everything due."""
        out = Pass()
        for group in self._groups():
            with self.store.begin(immediate=True) as conn:  # deletions: one transaction
                cutoff = hour_start(now - group.policy.hourly_rollups)
                self._delete_batch(conn, rollups, _expired(group, cutoff), group, out)
                for raw in RAW:
                    self._delete_batch(conn, raw.table, _due(group, raw, now), group, out)
            self._compact(group, now, out)
        return out

    def backlog(self, now: datetime) -> int:
        """Rows due at `now`: to delete, or (minute rows) to compact."""
        total = 0
        with self.store.begin() as conn:
            for group in self._groups(conn):
                policy = group.policy
                for raw in RAW:
                    total += _count(conn, raw.table, _due(group, raw, now))
                expired = hour_start(now - policy.hourly_rollups)
                total += _count(conn, rollups, _expired(group, expired))
                total += _count(conn, rollups, _compactable(group, now))
        return total

    def _groups(self, conn: Connection | None = None) -> list[_Group]:
        if conn is None:
            with self.store.begin() as own:
                return self._groups(own)
        policies: dict[str, RetentionPolicySpec] = {}
        for doc in declared(conn, RetentionPolicy):  # by name: the first of a tier counts
            policies.setdefault(doc.spec.tier, doc.spec)
        by_tier: dict[str, list[str]] = {}
        for name, tier in conn.execute(select(tenants.c.name, tenants.c.tier)):
            by_tier.setdefault(tier, []).append(name)
        groups = [
            _Group(policy, tuple(sorted(by_tier[tier])))
            for tier, policy in sorted(policies.items())
            if by_tier.get(tier)
        ]
        governed = tuple(sorted(n for g in groups for n in g.tenants or ()))
        # Every other tenant's data (and that of tenants no longer declared) has the defaults.
        return [*groups, _Group(DEFAULT_POLICY, None, governed)]

    def _delete_batch(
        self,
        conn: Connection,
        table: Table,
        condition: ColumnElement[bool],
        group: _Group,
        out: Pass,
    ) -> None:
        query = select(table).where(condition).order_by(table.c.id).limit(self.batch_rows)
        found = conn.execute(query).mappings().all()
        if not found:
            return
        if group.policy.archive is not None:
            out.archived += write_archive(Path(group.policy.archive), table, found)
        _delete_ids(conn, table, [r["id"] for r in found])
        out._count(table.name, len(found))
        out.done &= len(found) < self.batch_rows

    def _compact(self, group: _Group, now: datetime, out: Pass) -> None:
        for _ in range(self.max_hours):
            with self.store.begin(immediate=True) as conn:
                first = conn.execute(
                    select(func.min(rollups.c.minute)).where(_compactable(group, now))
                ).scalar()
                if first is None:
                    return
                self._compact_hour(conn, group, hour_start(first), now, out)
        out.done = False  # perhaps: the next pass will tell

    def _compact_hour(
        self, conn: Connection, group: _Group, hour: datetime, now: datetime, out: Pass
    ) -> None:
        """Merge each key's rows of `hour` into one hourly row, where the key has minute rows
        (a key with only its hourly row is left as it is)."""
        t = rollups
        found = (
            conn.execute(
                select(t).where(t.c.minute >= hour, t.c.minute < hour + HOUR, group.has(t.c.tenant))
            )
            .mappings()
            .all()
        )
        by_key: dict[tuple[Any, ...], list[Mapping[Any, Any]]] = {}
        for row in found:
            key = (row["tenant"], row["model"], row["version"], row["region"], row["shadow"])
            by_key.setdefault(key, []).append(row)
        replaced = [
            row
            for rows in by_key.values()
            if any(r["resolution"] == "minute" for r in rows)
            for row in rows
        ]
        hourly = compact(Rollup.from_dict(row["payload"]) for row in replaced)
        if group.policy.archive is not None:
            out.archived += write_archive(Path(group.policy.archive), t, replaced)
        write_rollups(
            conn,
            sorted(hourly.values(), key=lambda r: r.key),
            now=now,
            resolution="hour",
        )
        _delete_ids(conn, t, [r["id"] for r in replaced])
        out.compacted_hours += 1
        out.compacted_rows += len(replaced)
        out.hourly_rows += len(hourly)
        out._count(t.name, len(replaced))


def _due(group: _Group, raw: _Raw, now: datetime) -> ColumnElement[bool]:
    """Raw records older than the group's `raw` at `now`, that may go."""
    cutoff = now - group.policy.raw
    return and_(group.has(raw.table.c.tenant), raw.table.c[raw.time] < cutoff, raw.deletable())


def _expired(group: _Group, cutoff: datetime) -> ColumnElement[bool]:
    """Rollups of hours that ended by `cutoff` (an hour's start)."""
    return and_(group.has(rollups.c.tenant), rollups.c.minute < cutoff)


def _compactable(group: _Group, now: datetime) -> ColumnElement[bool]:
    """Minute rows of hours that ended before the minute horizon: only whole hours compact."""
    cutoff = hour_start(now - group.policy.minute_rollups)
    return and_(
        group.has(rollups.c.tenant), rollups.c.resolution == "minute", rollups.c.minute < cutoff
    )


def _count(conn: Connection, table: Table, condition: ColumnElement[bool]) -> int:
    return int(conn.execute(select(func.count()).select_from(table).where(condition)).scalar_one())


def _delete_ids(conn: Connection, table: Table, ids: Sequence[int]) -> None:
    """Delete exactly these rows, or roll back: rows another process deleted meanwhile (a
    second retention run) mean this transaction's view is stale, and its hourly rows would
    count their minutes twice."""
    deleted = 0
    for start in range(0, len(ids), 500):  # bounded IN lists
        chunk = ids[start : start + 500]
        deleted += conn.execute(delete(table).where(table.c.id.in_(chunk))).rowcount
    if deleted != len(ids):
        raise StoreError(
            f"retention: {len(ids) - deleted} of {len(ids)} {table.name} rows were deleted "
            "by another process meanwhile; this pass is rolled back and the next one resumes"
        )


# -- the Parquet archive ------------------------------------------------------------------------


def write_archive(root: Path, table: Table, rows: Sequence[Mapping[Any, Any]]) -> int:
    """Write `rows` of `table` under `root/<table>/date=YYYY-MM-DD/`, one new part file per
    date; returns how many rows were written. JSON columns are stored as JSON text, times as
    UTC timestamps (microseconds)."""
    import pyarrow as pa  # here: only a policy with an archive needs it
    import pyarrow.parquet as pq

    time = TIME_COLUMNS[table.name]
    schema = pa.schema([(c.name, _arrow_type(c.type)) for c in table.columns])
    by_date: dict[date, list[dict[str, Any]]] = {}
    for row in rows:
        values = {
            c.name: json.dumps(row[c.name], sort_keys=True)
            if isinstance(c.type, JSON) and row[c.name] is not None
            else row[c.name]
            for c in table.columns
        }
        by_date.setdefault(row[time].date(), []).append(values)
    for day, members in sorted(by_date.items()):
        folder = root / table.name / f"date={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"part-{uuid.uuid4()}.parquet"
        partial = folder / f".{name}.partial"
        pq.write_table(pa.Table.from_pylist(members, schema=schema), partial)
        with partial.open("rb") as written:
            os.fsync(written.fileno())  # on disk before the rows leave the store
        os.replace(partial, folder / name)
    return len(rows)


def read_archive(root: Path, table: str) -> list[dict[str, Any]]:
    """Every row archived for `table` under `root`, in no particular order (JSON columns as
    text, times as timezone-aware datetimes)."""
    import pyarrow.parquet as pq

    folder = root / table
    if not folder.is_dir():
        return []
    out: list[dict[str, Any]] = []
    for part in sorted(folder.glob("date=*/part-*.parquet")):
        out += pq.read_table(part).to_pylist()
    return out


def _arrow_type(column_type: Any) -> Any:
    import pyarrow as pa

    if isinstance(column_type, UTCDateTime):
        return pa.timestamp("us", tz="UTC")
    if isinstance(column_type, Boolean):
        return pa.bool_()
    if isinstance(column_type, Integer):
        return pa.int64()
    if isinstance(column_type, Float):
        return pa.float64()
    return pa.string()  # String, Text, and JSON as its text


# -- what the store holds ---------------------------------------------------------------------


@dataclass(frozen=True)
class TableStatus:
    """How many rows a table retention governs holds, and the time of its oldest."""

    table: str
    rows: int
    oldest: datetime | None


def retention_status(conn: Connection) -> list[TableStatus]:
    """Rows and oldest row of each table retention deletes from; rollups once per resolution."""
    out = []
    for raw in RAW:
        column = raw.table.c[raw.time]
        n, oldest = conn.execute(
            select(func.count(), func.min(column)).select_from(raw.table)
        ).one()
        out.append(TableStatus(raw.table.name, int(n), oldest))
    for resolution in ("minute", "hour"):
        n, oldest = conn.execute(
            select(func.count(), func.min(rollups.c.minute)).where(
                rollups.c.resolution == resolution
            )
        ).one()
        out.append(TableStatus(f"rollups ({resolution})", int(n), oldest))
    return out
