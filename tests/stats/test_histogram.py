"""Histograms on fixed edges: where each value falls, exact merges, and reference quantile edges."""

from __future__ import annotations

import doctest
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelfleet.stats import Histogram, histogram, quantile_edges

EDGES = (-1.0, 0.0, 0.5, 2.0)

values = st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=80)


def one_by_one(vs: list[float]) -> Histogram:
    h = Histogram(EDGES)
    for v in vs:
        h.add(v)
    return h


def test_the_module_example_runs() -> None:
    assert doctest.testmod(histogram, raise_on_error=True).attempted > 0


def test_a_value_on_an_edge_falls_in_the_bin_above_it() -> None:
    h = Histogram(EDGES)
    h.add_many([-5.0, -1.0, -0.5, 0.0, 0.49, 0.5, 2.0, 1e300, -math.inf, math.inf])
    assert h.counts == (2, 2, 2, 1, 3)
    assert h.missing == 0


def test_nan_and_none_count_as_missing() -> None:
    h = Histogram(EDGES)
    h.add(None)
    h.add(math.nan, count=2)
    h.add_many([None, 1.0])
    h.add_many(np.full(40, np.nan))
    assert (h.missing, h.total, sum(h.counts)) == (44, 45, 1)


@given(values)
def test_adding_many_at_once_counts_like_adding_one_by_one(vs: list[float]) -> None:
    # Three copies pass the size from which add_many switches to numpy.
    for batch in (vs, vs * 3):
        from_list, from_array = Histogram(EDGES), Histogram(EDGES)
        from_list.add_many(batch)
        from_array.add_many(np.asarray(batch))
        assert from_list == from_array == one_by_one(batch)


def test_a_two_dimensional_array_is_counted_value_by_value() -> None:
    h = Histogram(EDGES)
    h.add_many(np.array([[0.1, 0.2], [3.0, np.nan]]))
    assert (h.counts, h.missing) == ((0, 0, 2, 0, 1), 1)


@given(values, values)
def test_merging_two_histograms_gives_the_histogram_of_all_values(
    a: list[float], b: list[float]
) -> None:
    merged = one_by_one(a)
    merged.merge(one_by_one(b))
    assert merged == one_by_one(a + b)


@given(values)
def test_the_counts_and_missing_values_add_up_to_the_total(vs: list[float]) -> None:
    h = one_by_one(vs)
    assert sum(h.counts) + h.missing == h.total == len(vs)
    assert len(h.counts) == len(EDGES) + 1


@given(values)
def test_a_histogram_survives_json_unchanged(vs: list[float]) -> None:
    h = one_by_one(vs)
    assert Histogram.from_dict(json.loads(json.dumps(h.to_dict()))) == h


def test_histograms_on_different_edges_do_not_merge() -> None:
    with pytest.raises(ValueError, match="different edges"):
        Histogram(EDGES).merge(Histogram((0.0, 1.0)))


@pytest.mark.parametrize("edges", [(), (1.0, 0.0), (0.0, 0.0), (0.0, math.nan), (math.inf,)])
def test_edges_that_are_not_finite_and_strictly_increasing_are_refused(
    edges: tuple[float, ...],
) -> None:
    with pytest.raises(ValueError, match="edge"):
        Histogram(edges)


@pytest.mark.parametrize(
    "change", [{"counts": [1, 2]}, {"counts": [0, 0, -1, 0, 0]}, {"missing": 1.5}, {"edges": None}]
)
def test_a_malformed_stored_histogram_is_refused(change: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="not a histogram"):
        Histogram.from_dict({**Histogram(EDGES).to_dict(), **change})


def test_quantile_edges_split_the_reference_into_about_equal_bins() -> None:
    reference = np.random.default_rng(7).normal(size=10_000)
    edges = quantile_edges(reference, bins=10)
    h = Histogram(edges)
    h.add_many(reference)
    assert len(edges) == 9
    assert all(950 <= c <= 1050 for c in h.counts)  # 9 edges make 10 bins, the outer ones open


def test_quantile_edges_of_constant_data_are_that_constant() -> None:
    assert quantile_edges(np.full(100, 3.5)) == (3.5,)


def test_quantile_edges_ignore_nan_and_infinite_values() -> None:
    edges = quantile_edges(np.array([np.nan, np.inf, 1.0, 2.0, 3.0, -np.inf]), bins=2)
    assert edges == (2.0,)


def test_quantile_edges_need_a_finite_value_and_two_bins() -> None:
    with pytest.raises(ValueError, match="finite"):
        quantile_edges(np.array([np.nan]))
    with pytest.raises(ValueError, match="bins"):
        quantile_edges(np.arange(10.0), bins=1)


@settings(max_examples=50)
@given(
    st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=1, max_size=200),
    st.integers(min_value=2, max_value=20),
)
def test_quantile_edges_always_make_a_valid_histogram(data: list[float], bins: int) -> None:
    edges = quantile_edges(np.asarray(data), bins=bins)
    assert 1 <= len(edges) <= bins - 1
    assert Histogram(edges).edges == edges
