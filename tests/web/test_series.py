"""A model's chart series read off real rollups: buckets, merged sketches, tenants, drift."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from modelfleet.monitors.profile import ColumnProfile, Profile, write_profile
from modelfleet.stats import LatencySketch
from modelfleet.stats.drift import psi
from modelfleet.store import Store
from modelfleet.telemetry.rollup import Rollup, RollupKey
from modelfleet.telemetry.writer import write_rollups
from modelfleet.web.ui.series import MAX_POINTS, auto_step, model_series

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
EDGES = (0.0, 1.0, 2.0)


def minute(m: int) -> datetime:
    return START + timedelta(minutes=m)


def rollup(
    tenant: str,
    m: int,
    latencies: list[float],
    *,
    errors: int = 0,
    version: str = "v1",
    features: list[float] | None = None,
) -> Rollup:
    """digits/`version` in minute `m`: one request per latency, the first `errors` of them 5xx."""
    edges = {"x": EDGES} if features is not None else None
    r = Rollup(RollupKey.at(tenant, "digits", version, "eu", minute(m)), feature_edges=edges)
    for i, latency in enumerate(latencies):
        x = None if features is None else {"x": [features[i % len(features)]]}
        r.record(500 if i < errors else 200, latency, [0.9], x)
    return r


def test_a_bucket_merges_its_minutes_and_its_p99_is_the_merged_sketchs(store: Store) -> None:
    minutes = [
        rollup("acme", 0, [0.01] * 50, errors=5),
        rollup("acme", 2, [0.2] * 40 + [3.0] * 10),
        rollup("bolt", 4, [0.05] * 30),
        rollup("acme", 5, [0.5] * 10),  # the next bucket
    ]
    with store.begin() as conn:
        write_rollups(conn, minutes, now=minute(6))
        series = model_series(conn, "digits", since=minute(0), until=minute(10), step=300)
    merged = LatencySketch()
    for r in minutes[:3]:
        merged.merge(r.latency)
    assert series.step_s == 300
    assert series.timestamps == [int(minute(0).timestamp()), int(minute(5).timestamp())]
    assert series.requests_per_s == [130 / 300, 10 / 300]
    assert series.error_rate == [5 / 130, 0.0]
    assert series.p99_s[0] == merged.quantile(0.99)
    assert series.p50_s[0] == merged.quantile(0.5)
    assert series.p95_s[0] == merged.quantile(0.95)
    assert series.confidence[0] == pytest.approx(0.95)  # the middle of the 0.9-1.0 bin
    json.dumps(series.to_dict())  # straight to JSON for the charts


def test_minutes_without_rollups_are_none_not_zero(store: Store) -> None:
    with store.begin() as conn:
        write_rollups(conn, [rollup("acme", 1, [0.1] * 3)], now=minute(2))
        series = model_series(conn, "digits", since=minute(0), until=minute(3))
        empty = model_series(conn, "other", since=minute(0), until=minute(3))
    assert series.step_s == 60 and len(series.timestamps) == 3
    assert series.requests_per_s == [None, 3 / 60, None]
    assert series.error_rate[0] is None and series.p99_s[2] is None
    assert empty.timestamps == series.timestamps
    assert all(v is None for v in empty.requests_per_s + empty.p99_s) and empty.drift == {}


def test_the_tenant_filter_keeps_one_tenants_traffic_and_shadows_never_count(
    store: Store,
) -> None:
    shadow = Rollup(RollupKey.at("acme", "digits", "v2", "eu", minute(0), shadow=True))
    shadow.record(500, 9.0)
    with store.begin() as conn:
        write_rollups(
            conn,
            [rollup("acme", 0, [0.01] * 10), rollup("bolt", 0, [2.0] * 20, errors=20), shadow],
            now=minute(1),
        )
        acme = model_series(conn, "digits", since=minute(0), until=minute(1), tenant="acme")
        both = model_series(conn, "digits", since=minute(0), until=minute(1))
    assert acme.tenant == "acme"
    assert acme.requests_per_s == [10 / 60] and acme.error_rate == [0.0]
    assert acme.p99_s[0] is not None and acme.p99_s[0] < 0.02
    assert both.requests_per_s == [30 / 60] and both.error_rate == [20 / 30]


def test_a_month_of_minute_data_stays_under_the_point_limit(store: Store) -> None:
    month = 30 * 24 * 60
    with store.begin() as conn:
        write_rollups(conn, [rollup("acme", m, [0.01]) for m in range(month)], now=minute(month))
        series = model_series(conn, "digits", since=minute(0), until=minute(month))
    assert series.step_s == 900 and len(series.timestamps) == month // 15 <= MAX_POINTS
    assert series.requests_per_s == [15 / 900] * (month // 15)  # every minute counted once


def test_the_step_grows_with_the_window_and_a_too_fine_one_is_refused(store: Store) -> None:
    assert auto_step(minute(0), minute(60)) == 60
    assert auto_step(minute(0), minute(60 * 24 * 7)) == 300
    assert auto_step(minute(0), minute(60 * 24 * 365)) == 10800
    assert auto_step(minute(0), minute(60 * 24 * 365 * 20)) == 86400 * 3
    odd = START + timedelta(seconds=17)  # off every bucket's edge: one bucket more
    with store.begin() as conn:
        assert (
            len(model_series(conn, "m", since=odd, until=odd + timedelta(days=30)).timestamps)
            == 2881
        )
    with store.begin() as conn, pytest.raises(ValueError, match="more than"):
        model_series(conn, "digits", since=minute(0), until=minute(60 * 24 * 30), step=60)
    with store.begin() as conn, pytest.raises(ValueError, match="whole minutes"):
        model_series(conn, "digits", since=minute(0), until=minute(60), step=90)


def test_drift_is_each_buckets_psi_against_the_versions_profile(store: Store) -> None:
    reference = (10, 40, 40, 10)  # below 0, [0, 1), [1, 2), from 2
    profile = Profile(
        "digits", "v1", 100, {"x": ColumnProfile(EDGES, reference, 0, -1.0, 3.0, 1.0, 0.5)}
    )
    shifted = rollup("acme", 0, [0.01] * 100, features=[2.5, 2.5, 1.5, 0.5])
    few = rollup("acme", 1, [0.01] * 10, features=[2.5])  # too few rows to judge
    with store.begin() as conn:
        write_profile(conn, profile, now=START)
        write_rollups(conn, [shifted, few], now=minute(2))
        series = model_series(conn, "digits", since=minute(0), until=minute(2))
    assert series.drift["x"][0] == psi(reference, shifted.features["x"].counts)
    assert series.drift["x"][0] > 0.25 and series.drift["x"][1] is None
