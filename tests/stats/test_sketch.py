"""The latency sketch: quantiles within relative error alpha, exact merges, lossless storage."""

from __future__ import annotations

import doctest
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelfleet.stats import LatencySketch, sketch

ALPHA = 0.01
# ceil(log(x) / log(gamma)) is computed in floating point, so a value within a few ulps of a
# bucket boundary may land in the neighbouring bucket: the bound then holds to ~1e-15, not 0.
ROUNDING = 1e-9

latencies = st.floats(min_value=1e-9, max_value=1e6, exclude_min=True)
latency_lists = st.lists(latencies, max_size=60)


def sketch_of(values: list[float], alpha: float = ALPHA) -> LatencySketch:
    s = LatencySketch(alpha)
    for v in values:
        s.add(v)
    return s


def test_the_module_example_runs() -> None:
    assert doctest.testmod(sketch, raise_on_error=True).attempted > 0


@settings(max_examples=150)
@given(
    st.lists(latencies, min_size=1, max_size=200),
    st.floats(min_value=0.0, max_value=1.0),
    st.sampled_from([0.01, 0.05]),
)
def test_every_quantile_is_within_alpha_of_the_value_at_its_rank(
    values: list[float], q: float, alpha: float
) -> None:
    estimate = sketch_of(values, alpha).quantile(q)
    true = sorted(values)[math.floor(q * (len(values) - 1))]
    assert estimate is not None
    assert abs(estimate - true) <= alpha * true * (1 + ROUNDING)


@given(st.lists(latencies, min_size=1, max_size=60))
def test_the_extreme_quantiles_are_the_exact_min_and_max(values: list[float]) -> None:
    s = sketch_of(values)
    assert (s.quantile(0.0), s.quantile(1.0)) == (min(values), max(values))
    assert (s.min, s.max, s.count) == (min(values), max(values), len(values))


@given(latency_lists, latency_lists)
def test_merging_two_sketches_gives_exactly_the_sketch_of_all_values(
    a: list[float], b: list[float]
) -> None:
    merged = sketch_of(a)
    merged.merge(sketch_of(b))
    assert merged == sketch_of(a + b)
    assert merged.to_dict() == sketch_of(a + b).to_dict()


@given(latency_lists, latency_lists, latency_lists)
def test_merge_is_commutative_and_associative(
    a: list[float], b: list[float], c: list[float]
) -> None:
    ab, ba = sketch_of(a), sketch_of(b)
    ab.merge(sketch_of(b))
    ba.merge(sketch_of(a))
    assert ab == ba
    left = ab.copy()
    left.merge(sketch_of(c))
    bc = sketch_of(b)
    bc.merge(sketch_of(c))
    right = sketch_of(a)
    right.merge(bc)
    assert left == right
    assert left.sum == right.sum  # exact, whatever the grouping


@given(latency_lists)
def test_a_sketch_survives_json_unchanged(values: list[float]) -> None:
    s = sketch_of(values)
    restored = LatencySketch.from_dict(json.loads(json.dumps(s.to_dict())))
    assert restored == s
    assert restored.quantile(0.5) == s.quantile(0.5)
    assert (restored.count, restored.sum) == (s.count, s.sum)


@given(latency_lists)
def test_the_sum_is_the_sum_of_the_values(values: list[float]) -> None:
    assert sketch_of(values).sum == pytest.approx(math.fsum(values), rel=1e-12, abs=1e-18)


def test_adding_with_a_count_equals_adding_that_many_times() -> None:
    once = LatencySketch()
    once.add(0.25, count=3)
    once.add(0.0, count=2)
    assert once == sketch_of([0.25, 0.25, 0.25, 0.0, 0.0])
    assert once.count == 5


def test_zero_and_sub_nanosecond_latencies_count_as_zero() -> None:
    s = sketch_of([0.0, 1e-10, 0.5, 0.5, 0.5])
    assert s.quantile(0.25) == 0.0  # rank 1 is a zero: estimated by 0, clamped to min 0.0
    assert s.to_dict()["zero_count"] == 2
    assert s.quantile(0.75) == pytest.approx(0.5, rel=ALPHA)


def test_an_empty_sketch_has_no_quantiles_min_or_max() -> None:
    s = LatencySketch()
    assert (s.count, s.sum, s.min, s.max, s.quantile(0.5)) == (0, 0.0, None, None, None)
    assert LatencySketch.from_dict(json.loads(json.dumps(s.to_dict()))) == s


@pytest.mark.parametrize("value", [-0.001, math.nan, math.inf, -math.inf])
def test_a_negative_or_non_finite_latency_is_refused_and_changes_nothing(value: float) -> None:
    s = sketch_of([0.1])
    with pytest.raises(ValueError, match="latency"):
        s.add(value)
    assert s == sketch_of([0.1])


def test_a_count_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="count"):
        LatencySketch().add(0.1, count=0)


def test_sketches_of_different_accuracy_do_not_merge() -> None:
    with pytest.raises(ValueError, match="different accuracy"):
        LatencySketch(0.01).merge(LatencySketch(0.02))


@pytest.mark.parametrize("q", [-0.1, 1.1, math.nan])
def test_a_quantile_outside_zero_to_one_is_refused(q: float) -> None:
    with pytest.raises(ValueError, match="q must be"):
        sketch_of([0.1]).quantile(q)


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, math.nan])
def test_an_accuracy_outside_zero_to_one_is_refused(alpha: float) -> None:
    with pytest.raises(ValueError, match="alpha"):
        LatencySketch(alpha)


@pytest.mark.parametrize(
    "change",
    [
        {"counts": [1, 2]},
        {"counts": [0]},
        {"indexes": [1.5]},
        {"min": None},
        {"sum_units": 12},
        {"sum_units": "-12"},
    ],
)
def test_a_malformed_stored_sketch_is_refused(change: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="not a latency sketch"):
        LatencySketch.from_dict({**sketch_of([0.1]).to_dict(), **change})


def test_a_stored_sketch_missing_a_field_is_refused() -> None:
    data = sketch_of([0.1]).to_dict()
    del data["indexes"]
    with pytest.raises(ValueError, match="not a latency sketch"):
        LatencySketch.from_dict(data)


def test_a_sketch_with_a_huge_sum_round_trips_through_strict_json() -> None:
    import orjson

    sketch = sketch_of([30.0] * 1000)  # 30,000 s: far past 2**64 internal units
    assert LatencySketch.from_dict(orjson.loads(orjson.dumps(sketch.to_dict()))) == sketch
