"""Rollups: what one request adds, exact merges across workers, and the worker's buffer."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelfleet.stats import Histogram, LatencySketch
from modelfleet.telemetry import (
    CONFIDENCE_EDGES,
    Rollup,
    RollupBuffer,
    RollupKey,
    merge_all,
)

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
KEY = RollupKey("acme", "churn", "v3", "eu-west", T0)
EDGES = {"age": (18.0, 30.0, 45.0, 65.0), "spend": (0.0, 100.0)}
THRESHOLDS = (0.1, 0.25, 0.5, 1.0)


@dataclass(frozen=True)
class Request:
    status: int
    latency_s: float
    confidences: list[float] | None
    features: dict[str, list[float]] | None = field(default=None)

    @property
    def rows(self) -> int:
        return len(self.confidences) if self.confidences is not None else 1


@st.composite
def requests(draw: st.DrawFn) -> Request:
    rows = draw(st.integers(min_value=1, max_value=3))
    with_outputs = draw(st.booleans())
    value = st.floats(min_value=-10.0, max_value=200.0) | st.just(float("nan"))
    return Request(
        status=draw(st.sampled_from([200, 201, 400, 404, 422, 500, 503])),
        latency_s=draw(st.sampled_from(THRESHOLDS) | st.floats(min_value=0.0, max_value=3.0)),
        confidences=draw(st.lists(st.floats(0.0, 1.0), min_size=rows, max_size=rows))
        if with_outputs
        else None,
        features=draw(
            st.dictionaries(
                st.sampled_from(["age", "spend", "untracked"]),
                st.lists(value, min_size=rows, max_size=rows),
            )
        )
        if with_outputs
        else None,
    )


def record(rollup: Rollup, r: Request) -> None:
    features = None if r.features is None else {k: np.asarray(v) for k, v in r.features.items()}
    rollup.record(r.status, r.latency_s, r.confidences, features, rows=r.rows)


def rollup_of(rs: list[Request], key: RollupKey = KEY) -> Rollup:
    rollup = Rollup(key, thresholds=THRESHOLDS, feature_edges=EDGES)
    for r in rs:
        record(rollup, r)
    return rollup


def test_a_key_is_the_utc_minute_holding_the_time() -> None:
    paris = timezone(timedelta(hours=1))
    key = RollupKey.at(
        "acme", "churn", "v3", "eu-west", datetime(2026, 11, 2, 10, 30, 59, 999, paris)
    )
    assert key.minute == T0 and key.minute.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "minute", [T0.replace(second=1), T0.replace(microsecond=1), T0.replace(tzinfo=None)]
)
def test_a_key_refuses_a_minute_that_is_not_whole_and_utc(minute: datetime) -> None:
    with pytest.raises(ValueError, match="minute"):
        RollupKey("acme", "churn", "v3", "eu-west", minute)


def test_a_key_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        RollupKey.at("acme", "churn", "v3", "eu-west", datetime(2026, 11, 2, 9, 30))


def test_a_request_adds_its_status_latency_rows_confidences_and_features() -> None:
    rollup = Rollup(KEY, thresholds=THRESHOLDS, feature_edges=EDGES)
    rollup.record(
        200,
        0.25,
        np.array([0.95, 0.4]),
        {"age": np.array([25.0, np.nan]), "untracked": np.array([1.0, 2.0])},
        rows=2,
    )
    rollup.record(503, 2.0)
    rollup.record_rejection()
    assert rollup.status == {"2xx": 1, "4xx": 0, "5xx": 1, "rejected": 1}
    assert (rollup.requests, rollup.rows, rollup.latency.count) == (3, 3, 2)
    assert rollup.under_threshold == {0.1: 0, 0.25: 1, 0.5: 1, 1.0: 1}  # <= counts as under
    assert rollup.confidence.counts[5] == rollup.confidence.counts[10] == 1
    assert (rollup.features["age"].counts, rollup.features["age"].missing) == ((0, 1, 0, 0, 0), 1)
    assert rollup.features["spend"].missing == 2  # absent from a request: missing in each row
    assert set(rollup.features) == {"age", "spend"}


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((302, 0.1), {}, "status"),
        ((200, -0.1), {}, "latency"),
        ((200, float("nan")), {}, "latency"),
        ((200, 0.1, [0.5]), {"rows": 2}, "confidences"),
        ((200, 0.1, None, {"age": np.array([1.0])}), {"rows": 2}, "age"),
        ((200, 0.1), {"rows": 0}, "row"),
    ],
)
def test_a_refused_request_changes_nothing(
    args: tuple[object, ...], kwargs: dict[str, int], match: str
) -> None:
    rollup = rollup_of([Request(200, 0.2, [0.9])])
    with pytest.raises(ValueError, match=match):
        rollup.record(*args, **kwargs)  # type: ignore[arg-type]
    assert rollup == rollup_of([Request(200, 0.2, [0.9])])


@settings(max_examples=60)
@given(st.lists(requests(), max_size=30), st.lists(st.integers(0, 30), max_size=4))
def test_merging_rollups_equals_recording_every_request_into_one(
    rs: list[Request], cuts: list[int]
) -> None:
    bounds = [0, *sorted(cuts), len(rs)]
    parts = [rollup_of(rs[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]
    merged = parts[0].copy()
    for part in parts[1:]:
        merged.merge(part)
    assert merged == rollup_of(rs)
    assert merge_all(reversed(parts)) == {KEY: rollup_of(rs)}


@settings(max_examples=60)
@given(st.lists(requests(), max_size=20))
def test_a_rollup_survives_json_unchanged(rs: list[Request]) -> None:
    rollup = rollup_of(rs)
    rollup.record_rejection()
    assert Rollup.from_dict(json.loads(json.dumps(rollup.to_dict()))) == rollup


def test_rollups_of_different_keys_thresholds_or_edges_do_not_merge() -> None:
    other_minute = RollupKey("acme", "churn", "v3", "eu-west", T0 + timedelta(minutes=1))
    for other, match in [
        (Rollup(other_minute, thresholds=THRESHOLDS, feature_edges=EDGES), "different keys"),
        (Rollup(KEY, thresholds=(0.2,), feature_edges=EDGES), "thresholds"),
        (Rollup(KEY, thresholds=THRESHOLDS, feature_edges={"age": (1.0,)}), "edges"),
        (Rollup(KEY, thresholds=THRESHOLDS), "features"),
    ]:
        with pytest.raises(ValueError, match=match):
            rollup_of([]).merge(other)


def test_a_rollup_whose_sketch_has_another_accuracy_does_not_merge_and_changes_nothing() -> None:
    other = rollup_of([Request(200, 0.2, [0.9])])
    other.latency = LatencySketch(0.05)
    rollup = rollup_of([])
    with pytest.raises(ValueError, match="accuracy"):
        rollup.merge(other)
    assert rollup == rollup_of([])


def test_merge_all_leaves_its_inputs_unchanged() -> None:
    a, b = rollup_of([Request(200, 0.2, [0.9])]), rollup_of([Request(500, 1.5, None)])
    merged = merge_all([a, b])
    assert merged[KEY].requests == 2
    assert a == rollup_of([Request(200, 0.2, [0.9])]) and b == rollup_of([Request(500, 1.5, None)])


@pytest.mark.parametrize("thresholds", [(0.5, 0.1), (0.0,), (float("inf"),), (0.1, 0.1)])
def test_thresholds_must_be_increasing_positive_seconds(thresholds: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="thresholds"):
        Rollup(KEY, thresholds=thresholds)


def test_the_confidence_histogram_has_tenth_edges() -> None:
    assert CONFIDENCE_EDGES == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    assert Rollup(KEY).confidence == Histogram(CONFIDENCE_EDGES)


def edges_for(model: str, version: str) -> dict[str, tuple[float, ...]]:
    return {"age": EDGES["age"]} if (model, version) == ("churn", "v3") else {}


@settings(max_examples=40)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["acme", "globex"]),
            st.sampled_from(["v3", "v4"]),
            st.integers(min_value=0, max_value=5 * 60 * 1_000_000),  # microseconds after T0
            st.booleans(),  # drain after this request
        ),
        max_size=40,
    )
)
def test_drain_returns_every_request_exactly_once_in_its_minute(
    events: list[tuple[str, str, int, bool]],
) -> None:
    buffer = RollupBuffer(edges_for, thresholds=THRESHOLDS)
    drained: list[Rollup] = []
    expected: dict[tuple[str, str, datetime], int] = {}
    for tenant, version, offset_us, drain_now in events:
        now = T0 + timedelta(microseconds=offset_us)
        buffer.record(tenant, "churn", version, "eu-west", now, 200, 0.05, [0.9])
        minute = now.replace(second=0, microsecond=0)
        expected[tenant, version, minute] = expected.get((tenant, version, minute), 0) + 1
        if drain_now:
            drained += buffer.drain()
    drained += buffer.drain()
    assert buffer.drain() == []
    combined = merge_all(drained)
    assert {(k.tenant, k.version, k.minute): r.requests for k, r in combined.items()} == expected
    assert sum(r.requests for r in drained) == len(events)
    for key, rollup in combined.items():
        assert key.minute.second == key.minute.microsecond == 0
        assert set(rollup.features) == ({"age"} if key.version == "v3" else set())


def test_drain_sorts_by_key_and_counts_rejections() -> None:
    buffer = RollupBuffer()
    buffer.record("globex", "churn", "v3", "eu-west", T0, 200, 0.05)
    buffer.record_rejection("acme", "churn", "v3", "eu-west", T0 + timedelta(seconds=59))
    drained = buffer.drain()
    assert [r.key.tenant for r in drained] == ["acme", "globex"]
    assert drained[0].status["rejected"] == drained[0].requests == 1
    assert drained[0].latency.count == 0


def test_a_refused_request_leaves_no_rollup_in_the_buffer() -> None:
    buffer = RollupBuffer()
    with pytest.raises(ValueError, match="status"):
        buffer.record("acme", "churn", "v3", "eu-west", T0, 302, 0.05)
    assert buffer.drain() == []


def test_requests_recorded_from_several_threads_are_all_counted() -> None:
    buffer = RollupBuffer(edges_for)
    per_thread, threads = 2_000, 4
    start = threading.Barrier(threads)

    def serve(i: int) -> None:
        start.wait()
        for n in range(per_thread):
            now = T0 + timedelta(seconds=n % 120)
            buffer.record("acme", "churn", "v3", f"region-{i % 2}", now, 200, 0.01 * i)

    workers = [threading.Thread(target=serve, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    drained = buffer.drain()
    for w in workers:
        w.join()
    drained += buffer.drain()
    assert sum(r.requests for r in drained) == per_thread * threads
    assert sum(r.latency.count for r in merge_all(drained).values()) == per_thread * threads


def test_predicted_classes_are_counted_merged_and_stored() -> None:

    key = RollupKey.at("acme", "m", "v1", "eu", datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC))
    a, b = Rollup(key), Rollup(key)
    a.record(200, 0.01, classes=np.array([3, 3, 1]), rows=3)
    b.record(200, 0.01, classes=[1], rows=1)
    a.merge(b)
    assert a.classes == {3: 2, 1: 2}
    assert Rollup.from_dict(a.to_dict()) == a
    with pytest.raises(ValueError, match="expected 2 predicted classes"):
        a.record(200, 0.01, classes=[1], rows=2)


def test_a_rollup_counts_valid_requests_within_each_threshold_apart_from_client_errors() -> None:
    rollup = Rollup(KEY, thresholds=THRESHOLDS)
    rollup.record(200, 0.1)
    rollup.record(404, 0.05)  # a client error: within every threshold, but not valid
    rollup.record(503, 0.3)  # a server error is valid: it counts if it was fast enough
    rollup.record(200, 2.0)
    rollup.record_rejection()
    assert rollup.under_threshold == {0.1: 2, 0.25: 2, 0.5: 3, 1.0: 3}
    assert rollup.valid_under_threshold == {0.1: 1, 0.25: 1, 0.5: 2, 1.0: 2}


@settings(max_examples=60)
@given(st.lists(requests(), max_size=30), st.integers(0, 30))
def test_valid_counts_within_thresholds_merge_by_addition_and_survive_a_round_trip(
    rs: list[Request], cut: int
) -> None:
    left, right = rollup_of(rs[:cut]), rollup_of(rs[cut:])
    left.merge(right)
    expected = {t: sum(r.status // 100 != 4 and r.latency_s <= t for r in rs) for t in THRESHOLDS}
    assert left.valid_under_threshold == expected
    assert Rollup.from_dict(json.loads(json.dumps(left.to_dict()))) == left


def test_a_rollup_stored_before_valid_counts_existed_reads_them_capped_at_its_valid_requests() -> (
    None
):
    rollup = Rollup(KEY, thresholds=THRESHOLDS)
    for status, latency_s in [(200, 0.3), (404, 0.05), (404, 0.05), (200, 0.05)]:
        rollup.record(status, latency_s)
    old = rollup.to_dict()
    del old["valid_under_threshold"]
    read = Rollup.from_dict(old)
    # under_threshold is 3 at 0.1s (two of them 4xx) but only 2 requests were valid
    assert read.under_threshold == rollup.under_threshold
    assert read.valid_under_threshold == {0.1: 2, 0.25: 2, 0.5: 2, 1.0: 2}


def test_a_stored_rollup_with_more_valid_answers_within_a_threshold_than_served_is_refused() -> (
    None
):
    data = rollup_of([Request(200, 0.05, None)]).to_dict()
    data["valid_under_threshold"] = [2, 2, 2, 2]
    with pytest.raises(ValueError, match="valid"):
        Rollup.from_dict(data)
