"""Retention on SQLite and PostgreSQL: exact compaction, raw records by tier, the Parquet
archive, and a store whose size stays bounded under constant traffic."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, func, insert, select

from modelfleet.clock import VirtualClock
from modelfleet.config.regions import RetentionPolicySpec
from modelfleet.regions.retention import RetentionController, read_archive, retention_status
from modelfleet.sim.history import StreamLoad, synthetic_rollups
from modelfleet.stats import LatencySketch
from modelfleet.store import Store
from modelfleet.store.tables import (
    declarations,
    feedback,
    predictions,
    review_items,
    rollups,
    samples,
    tenants,
)
from modelfleet.telemetry.rollup import Rollup
from modelfleet.telemetry.writer import read_rollups, write_rollups

CONFIDENCES = np.linspace(0.3, 1.0, 15)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)


def _tenant(conn: Connection, name: str, tier: str, now: datetime) -> None:
    conn.execute(
        insert(tenants).values(
            name=name,
            display_name=name,
            tier=tier,
            home_region="eu-west",
            contact_email=f"ops@{name}.example",
            labels={},
            created_at=now,
            updated_at=now,
        )
    )


def _policy(conn: Connection, spec: RetentionPolicySpec, now: datetime) -> None:
    conn.execute(
        insert(declarations).values(
            kind="RetentionPolicy",
            name=f"{spec.tier}-retention",
            labels={},
            spec=spec.model_dump(mode="json"),
            created_at=now,
            updated_at=now,
        )
    )


def _drain(controller: RetentionController, now: datetime) -> int:
    """Passes until nothing is left to do; how many it took."""
    for n in range(1, 1000):
        if controller.run_once(now).done:
            return n
    raise AssertionError("retention never finished")


Totals = dict[tuple[Any, ...], tuple[Any, ...]]


def _totals(conn: Connection, since: datetime, until: datetime, per_hour: bool) -> Totals:
    """Per tenant and key (and hour): requests, status classes, threshold counts, sketch."""
    out: dict[tuple[Any, ...], list[Any]] = {}
    for key, r in read_rollups(conn, since=since, until=until).items():
        at = key.minute.replace(minute=0) if per_hour else None
        slot = (key.tenant, key.model, key.version, key.region, at)
        into = out.setdefault(slot, [Counter(), Counter(), Counter(), LatencySketch()])
        into[0].update(r.status)
        into[1].update(r.under_threshold)
        into[2].update(r.valid_under_threshold)
        into[3].merge(r.latency)
    return {
        k: (dict(s), dict(u), dict(v), sketch.count, [sketch.quantile(q) for q in (0.5, 0.99)])
        for k, (s, u, v, sketch) in out.items()
    }


def test_compaction_keeps_totals_exact_per_tenant_and_key(store: Store) -> None:
    start = datetime(2026, 10, 1, tzinfo=UTC)
    now = start + 12 * HOUR + timedelta(minutes=23)
    with store.begin() as conn:
        _tenant(conn, "acme", "premium", start)
        _tenant(conn, "globex", "free", start)
        _policy(conn, RetentionPolicySpec(tier="premium", minute_rollups=timedelta(hours=5)), start)
        loads = [
            StreamLoad(tenant, "churn", version, "eu-west", per_minute=2.0)
            for tenant, version in [
                ("acme", "v1"),
                ("acme", "v2"),
                ("globex", "v1"),
                ("initech", "v1"),  # no tenant row: the defaults
            ]
        ]
        minutes = int((now - start) / timedelta(minutes=1))
        # Two workers' flushes of the same minutes: rows of one key merge by addition.
        for seed in (1, 2):
            rows = synthetic_rollups(loads, start, minutes, confidences=CONFIDENCES, seed=seed)
            write_rollups(conn, rows, now=now)
        before_keys = _totals(conn, start, now, per_hour=False)
        before_hours = _totals(conn, start, now.replace(minute=0), per_hour=True)
        before = conn.execute(select(func.count()).select_from(rollups)).scalar_one()

    controller = RetentionController(store, max_hours=3)
    assert _drain(controller, now) == 3  # bounded passes: 3 hours at a time, 7 hours due
    assert controller.run_once(now).rows == 0  # idempotent

    with store.begin() as conn:
        assert _totals(conn, start, now, per_hour=False) == before_keys
        assert _totals(conn, start, now.replace(minute=0), per_hour=True) == before_hours
        by = {
            (tenant, resolution): (n, oldest, newest)
            for tenant, resolution, n, oldest, newest in conn.execute(
                select(
                    rollups.c.tenant,
                    rollups.c.resolution,
                    func.count(),
                    func.min(rollups.c.minute),
                    func.max(rollups.c.minute),
                ).group_by(rollups.c.tenant, rollups.c.resolution)
            )
        }
        after = conn.execute(select(func.count()).select_from(rollups)).scalar_one()
    # acme (premium): minutes kept 5 hours, whole hours before that compacted, one row per key.
    horizon = (now - timedelta(hours=5)).replace(minute=0)
    n, oldest, newest = by["acme", "hour"]
    assert (oldest, newest) == (start, horizon - HOUR)
    assert n == 2 * (horizon - start) / HOUR
    assert by["acme", "minute"][1] == horizon
    # globex and initech (the defaults: minutes for 14 days): nothing to compact yet.
    assert {t for t, res in by if res == "hour"} == {"acme"}
    assert after < before


def _raw_rows(conn: Connection, tenant: str, at: datetime, status: str, i: int) -> None:
    sample = conn.execute(
        insert(samples)
        .values(
            tenant=tenant,
            model="churn",
            version="v1",
            region="eu-west",
            at=at,
            reason="low_confidence",
            inputs={"age": [30 + i]},
            outputs={"label": ["stay"]},
            request_id=f"{tenant}-{i}",
        )
        .returning(samples.c.id)
    ).scalar_one()
    conn.execute(
        insert(review_items).values(
            sample=sample,
            tenant=tenant,
            model="churn",
            version="v1",
            reason="low_confidence",
            status=status,
            label=None if status == "open" else "stay",
            created_at=at,
        )
    )
    conn.execute(
        insert(predictions).values(
            tenant=tenant,
            model="churn",
            version="v1",
            request_id=f"{tenant}-{i}",
            at=at,
            predicted=["stay"],
            confidences=[0.55],
        )
    )
    conn.execute(
        insert(feedback).values(
            tenant=tenant,
            model="churn",
            request_id=f"{tenant}-{i}",
            row=0,
            label="stay",
            source="customer",
            actor="api",
            received_at=at,
        )
    )


RAW_TABLES = (samples, review_items, predictions, feedback)


def _ids(conn: Connection) -> dict[str, set[tuple[int, str]]]:
    return {
        t.name: {(r.id, r.tenant) for r in conn.execute(select(t.c.id, t.c.tenant))}
        for t in (*RAW_TABLES, rollups)
    }


def test_raw_records_go_after_their_tiers_raw_and_the_archive_holds_exactly_them(
    store: Store, tmp_path: Path
) -> None:
    now = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    archive = tmp_path / "archive"
    ages = [timedelta(hours=12), 2 * DAY, 8 * DAY]
    with store.begin() as conn:
        _tenant(conn, "acme", "premium", now)
        _tenant(conn, "globex", "free", now)
        _policy(conn, RetentionPolicySpec(tier="premium", raw=DAY, archive=str(archive)), now)
        i = 0
        for tenant in ("acme", "globex"):
            for age in ages:
                for status in ("labelled", "open"):
                    _raw_rows(conn, tenant, now - age, status, i)
                    i += 1
        # An hour of acme's minutes, old enough (36 days) to be compacted, then archived.
        loads = [StreamLoad("acme", "churn", "v1", "eu-west", per_minute=3.0)]
        old = (now - 36 * DAY).replace(minute=0)
        write_rollups(conn, synthetic_rollups(loads, old, 60, confidences=CONFIDENCES), now=old)
        before = _ids(conn)

    RetentionController(store, batch_rows=3).run_once(now)  # bounded: not all of it
    _drain(RetentionController(store, batch_rows=3), now)

    with store.begin() as conn:
        after = _ids(conn)
        kept_samples = {
            (tenant, at, status)
            for tenant, at, status in conn.execute(
                select(samples.c.tenant, samples.c.at, review_items.c.status).join(
                    review_items, review_items.c.sample == samples.c.id
                )
            )
        }
        status = {s.table: s for s in retention_status(conn)}
    # acme (raw 1 day): what is older goes, except a sample an open review item still needs;
    # globex (the default, 7 days): only what is 8 days old.
    assert kept_samples == {
        ("acme", now - ages[0], "labelled"),
        ("acme", now - ages[0], "open"),
        ("acme", now - ages[1], "open"),
        ("acme", now - ages[2], "open"),
        ("globex", now - ages[0], "labelled"),
        ("globex", now - ages[0], "open"),
        ("globex", now - ages[1], "labelled"),
        ("globex", now - ages[1], "open"),
        ("globex", now - ages[2], "open"),
    }
    for table in ("predictions", "feedback"):
        assert Counter(tenant for _, tenant in after[table]) == {"acme": 2, "globex": 4}
    assert status["samples"].rows == 9 and status["review_items"].rows == 9
    assert status["rollups (hour)"].rows == 1 and status["rollups (minute)"].rows == 0

    # The archive (acme's policy has one; the defaults have none) holds exactly what went.
    for table in (*RAW_TABLES, rollups):
        deleted = before[table.name] - after[table.name]
        archived = read_archive(archive, table.name)
        assert sorted((r["id"], r["tenant"]) for r in archived) == sorted(
            (i, t) for i, t in deleted if t == "acme"
        ), table.name
    (row,) = [r for r in read_archive(archive, "samples") if r["at"] == now - ages[2]]
    assert json.loads(row["inputs"]) == {"age": [34]}  # acme's fifth: 8 days old, labelled
    assert sorted(p.parent.name for p in (archive / "samples").glob("*/*.parquet")) == sorted(
        [f"date={(now - ages[1]).date()}", f"date={(now - ages[2]).date()}"]
    )
    hourly = read_archive(archive, "rollups")
    assert len(hourly) > 50 and {r["resolution"] for r in hourly} == {"minute"}
    assert Rollup.from_dict(json.loads(hourly[0]["payload"])).key.tenant == "acme"


def test_the_rollups_table_stays_bounded_under_constant_traffic(store: Store) -> None:
    start = datetime(2026, 10, 1, tzinfo=UTC)
    clock = VirtualClock(start)
    minute_horizon, hourly_horizon = DAY, 7 * DAY
    with store.begin() as conn:
        _tenant(conn, "acme", "premium", start)
        spec = RetentionPolicySpec(
            tier="premium", raw=DAY, minute_rollups=minute_horizon, hourly_rollups=hourly_horizon
        )
        _policy(conn, spec, start)
    streams = 1
    loads = [StreamLoad("acme", "churn", "v1", "eu-west", per_minute=10.0)]
    # Constant traffic: one synthetic day (a rollup per stream and minute), written again
    # every day, each minute's payload at its own minute.
    day = [r.to_dict() for r in synthetic_rollups(loads, start, 24 * 60, confidences=CONFIDENCES)]
    assert len(day) == streams * 24 * 60
    # Per stream, just before a tick on the hour at `now`: the minutes since the minute
    # horizon (now - 1d, whole) plus the hour written since the last tick, and one hourly row
    # per hour between the hourly horizon and the minute horizon.
    minutes_kept = int(minute_horizon / timedelta(minutes=1)) + 60
    hours_kept = int((hourly_horizon - minute_horizon) / HOUR)
    bound = streams * (minutes_kept + hours_kept)

    controller = RetentionController(store)
    counts: list[tuple[datetime, int]] = []
    for hour in range(30 * 24):
        written = start + hour * HOUR
        with store.begin() as conn:
            conn.execute(
                insert(rollups), _hour_of(day[hour % 24 * 60 : (hour % 24 + 1) * 60], written)
            )
        clock.advance(HOUR)
        with store.begin() as conn:
            counts.append((clock.now(), _count_rollups(conn)))
        controller.tick(clock.now())

    assert max(n for _, n in counts) <= bound
    # Growth stops once past the hourly horizon: from then on, every hour the same rows.
    assert {n for at, n in counts if at > start + hourly_horizon} == {bound}
    with store.begin() as conn:
        oldest = conn.execute(select(func.min(rollups.c.minute))).scalar_one()
    assert oldest == clock.now() - hourly_horizon


def _hour_of(payloads: list[dict[str, Any]], at: datetime) -> list[dict[str, Any]]:
    """Rows of an hour's rollups (payloads), as flushed in the hour starting `at`."""
    rows = []
    for payload in payloads:
        minute = at + timedelta(minutes=datetime.fromisoformat(payload["minute"]).minute)
        rows.append(
            {
                "tenant": payload["tenant"],
                "model": payload["model"],
                "version": payload["version"],
                "region": payload["region"],
                "minute": minute,
                "shadow": False,
                "payload": {**payload, "minute": minute.isoformat()},
                "flushed_at": minute + timedelta(seconds=5),
            }
        )
    return rows


def _count_rollups(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(rollups)).scalar_one())
