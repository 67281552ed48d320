"""Compaction: an hour of minute rollups merged into one hourly rollup per key, exactly."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from modelfleet.stats import Histogram, LatencySketch
from modelfleet.telemetry import Rollup, RollupKey
from modelfleet.telemetry.compaction import compact, hour_start, hourly_key

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
EDGES = {"age": (18.0, 30.0, 45.0, 65.0)}
QUANTILES = (0.0, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0)


@st.composite
def minute_rollups(draw: st.DrawFn) -> Rollup:
    minute = T0 + timedelta(minutes=draw(st.integers(min_value=0, max_value=3 * 60 - 1)))
    key = RollupKey(
        draw(st.sampled_from(["acme", "globex"])),
        "churn",
        draw(st.sampled_from(["v1", "v2"])),
        draw(st.sampled_from(["eu-west", "us-east"])),
        minute,
        draw(st.booleans()),
    )
    rollup = Rollup(key, feature_edges=EDGES)
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        rows = draw(st.integers(min_value=1, max_value=2))
        rollup.record(
            draw(st.sampled_from([200, 201, 404, 422, 500, 503])),
            draw(st.sampled_from([0.1, 0.25, 0.5, 1.0]) | st.floats(0.0, 3.0)),
            draw(st.lists(st.floats(0.0, 1.0), min_size=rows, max_size=rows)),
            {"age": draw(st.lists(st.floats(0.0, 90.0), min_size=rows, max_size=rows))},
            rows=rows,
            classes=draw(st.lists(st.integers(0, 2), min_size=rows, max_size=rows)),
        )
        if key.shadow:
            rollup.record_agreement(rows, draw(st.integers(0, rows)))
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        rollup.record_rejection()
    return rollup


@settings(max_examples=150)
@given(st.lists(minute_rollups(), min_size=1, max_size=40))
def test_hourly_rollups_are_the_merge_of_the_minutes_they_replace(minutes: list[Rollup]) -> None:
    hourly = compact(minutes)

    assert set(hourly) == {hourly_key(m.key) for m in minutes}
    for key, hour in hourly.items():
        assert key.minute == hour_start(key.minute) and hour.key == key
        replaced = [m for m in minutes if hourly_key(m.key) == key]
        # Counted independently of the rollup's own merge: sums, and the sketches' merge.
        for status_class in ("2xx", "4xx", "5xx", "rejected"):
            assert hour.status[status_class] == sum(m.status[status_class] for m in replaced)
        assert hour.requests == sum(m.requests for m in replaced)
        assert hour.rows == sum(m.rows for m in replaced)
        for t in hour.thresholds:
            assert hour.under_threshold[t] == sum(m.under_threshold[t] for m in replaced)
            assert hour.valid_under_threshold[t] == sum(
                m.valid_under_threshold[t] for m in replaced
            )
        latency = LatencySketch()
        confidence = Histogram(hour.confidence.edges)
        age = Histogram(EDGES["age"])
        for m in replaced:
            latency.merge(m.latency)
            confidence.merge(m.confidence)
            age.merge(m.features["age"])
        assert hour.latency == latency
        assert hour.confidence == confidence and hour.features["age"] == age
        for q in QUANTILES:
            assert hour.latency.quantile(q) == latency.quantile(q)
        assert hour.compared == sum(m.compared for m in replaced)
        assert hour.agreed == sum(m.agreed for m in replaced)
        assert sum(hour.classes.values()) == sum(sum(m.classes.values()) for m in replaced)


@settings(max_examples=50)
@given(st.lists(minute_rollups(), min_size=1, max_size=30), st.data())
def test_compaction_is_idempotent_and_takes_late_minutes(
    minutes: list[Rollup], data: st.DataObject
) -> None:
    once = compact(minutes)
    assert compact(once.values()) == once
    # A flush that arrives after its hour was compacted: compacting the hourly rollup with the
    # late minutes gives what compacting all the minutes at once would have.
    late = data.draw(st.lists(minute_rollups(), max_size=10))
    assert compact([*once.values(), *late]) == compact([*minutes, *late])


def test_minutes_that_disagree_keep_what_they_share_and_every_count() -> None:
    a = Rollup(RollupKey("acme", "churn", "v1", "eu", T0), thresholds=(0.1, 0.5))
    b = Rollup(
        RollupKey("acme", "churn", "v1", "eu", T0 + timedelta(minutes=7)),
        thresholds=(0.5, 1.0),
        feature_edges=EDGES,
    )
    a.record(200, 0.05)
    b.record(500, 0.4, features={"age": [20.0]})
    b.record(200, 0.9, features={"age": [50.0]})

    (hour,) = compact([a, b]).values()

    assert hour.key == replace(a.key, minute=T0)
    assert hour.thresholds == (0.5,) and hour.under_threshold[0.5] == 2
    assert hour.features == {}  # a had no histogram of age: none is exact for the hour
    assert hour.status == {"2xx": 2, "4xx": 0, "5xx": 1, "rejected": 0}
    assert hour.latency.count == 3
