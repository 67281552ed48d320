"""Significance tests on binned counts: the same answers as scipy on the expanded samples."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from modelfleet.stats import (
    LatencySketch,
    fisher_exact_greater,
    mann_whitney_binned,
    significance,
    two_proportion_test,
)

# Few bins and small counts, so ties are frequent; -inf is the sketch's zero bucket.
bin_keys = st.sampled_from([-math.inf, -2, -1, 0, 1, 2, 3, 5, 8])
binned = st.dictionaries(bin_keys, st.integers(min_value=0, max_value=12), max_size=9)


def expanded(counts: dict[float, int]) -> np.ndarray:
    """The raw sample that `counts` summarises (the zero bucket as a very low finite value)."""
    values = [(-1e9 if key == -math.inf else key) for key, n in counts.items() for _ in range(n)]
    return np.asarray(values, dtype=np.float64)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def test_the_module_example_runs() -> None:
    assert doctest.testmod(significance, raise_on_error=True).attempted > 0


@settings(max_examples=300)
@given(binned, binned)
def test_the_binned_u_test_agrees_with_scipy_on_the_expanded_samples(
    a: dict[float, int], b: dict[float, int]
) -> None:
    x, y = expanded(a), expanded(b)
    if x.size == 0 or y.size == 0:
        return  # scipy refuses empty samples; covered by its own test below
    result = mann_whitney_binned(a, b)
    greater = scipy_stats.mannwhitneyu(
        x, y, alternative="greater", use_continuity=True, method="asymptotic"
    )
    two_sided = scipy_stats.mannwhitneyu(
        x, y, alternative="two-sided", use_continuity=True, method="asymptotic"
    )
    assert result.u == float(greater.statistic)
    assert (result.n_a, result.n_b) == (x.size, y.size)
    assert close(result.p_greater, float(greater.pvalue))
    assert close(result.p_two_sided, float(two_sided.pvalue))
    assert result.probability_greater == result.u / (x.size * y.size)


@given(binned, binned)
def test_swapping_the_samples_mirrors_u_and_z(a: dict[float, int], b: dict[float, int]) -> None:
    ab, ba = mann_whitney_binned(a, b), mann_whitney_binned(b, a)
    assert ab.u + ba.u == ab.n_a * ab.n_b
    assert ab.z == -ba.z
    assert ab.p_two_sided == ba.p_two_sided


@given(binned)
def test_identical_samples_show_no_difference(a: dict[float, int]) -> None:
    result = mann_whitney_binned(a, dict(a))
    assert result.probability_greater == 0.5
    assert result.z == 0.0
    assert result.p_two_sided == pytest.approx(1.0)


def test_empty_or_constant_samples_are_no_evidence() -> None:
    for a, b in [({}, {1: 5}), ({1: 5}, {}), ({}, {}), ({1: 5}, {1: 7}), ({2: 0}, {1: 3})]:
        result = mann_whitney_binned(a, b)
        assert (result.p_greater, result.p_two_sided) == (1.0, 1.0)
        assert result.probability_greater == 0.5


def test_a_sample_shifted_up_is_significantly_greater() -> None:
    rng = np.random.default_rng(7)
    low = np.bincount(rng.poisson(10, size=400))
    high = np.bincount(rng.poisson(13, size=400))
    a = {k: int(n) for k, n in enumerate(high) if n}
    b = {k: int(n) for k, n in enumerate(low) if n}
    result = mann_whitney_binned(a, b)
    assert result.p_greater < 1e-12
    assert result.probability_greater > 0.7
    assert mann_whitney_binned(b, a).p_greater > 0.99


def test_sketch_buckets_are_bins_in_the_order_of_values() -> None:
    sketch = LatencySketch()
    for latency_s in (0.0, 0.0, 0.003, 0.003, 0.2):
        sketch.add(latency_s)
    counts = sketch.bucket_counts()
    assert list(counts) == sorted(counts)
    assert list(counts.values()) == [2, 2, 1]
    assert next(iter(counts)) == -math.inf
    assert LatencySketch().bucket_counts() == {}


# Each of these latencies lies in a bucket of its own, so bucketing loses no order.
separated = st.sampled_from([0.0, 0.001, 0.004, 0.02, 0.1, 0.5, 3.0])


@settings(max_examples=100)
@given(st.lists(separated, min_size=1, max_size=40), st.lists(separated, min_size=1, max_size=40))
def test_the_test_on_sketches_is_the_test_on_the_latencies_they_hold(
    x: list[float], y: list[float]
) -> None:
    sa, sb = LatencySketch(), LatencySketch()
    for v in x:
        sa.add(v)
    for v in y:
        sb.add(v)
    result = mann_whitney_binned(sa.bucket_counts(), sb.bucket_counts())
    expected = scipy_stats.mannwhitneyu(
        x, y, alternative="greater", use_continuity=True, method="asymptotic"
    )
    assert result.u == float(expected.statistic)
    assert close(result.p_greater, float(expected.pvalue))


def test_refuses_negative_counts_and_nan_keys() -> None:
    with pytest.raises(ValueError, match="counts must be >= 0"):
        mann_whitney_binned({1: -1}, {1: 2})
    with pytest.raises(ValueError, match="NaN"):
        mann_whitney_binned({math.nan: 1}, {1: 2})


def test_the_proportion_test_matches_a_hand_computation() -> None:
    # 30 of 100 against 20 of 100: pooled 0.25, se = sqrt(0.25 * 0.75 * (1/100 + 1/100)).
    result = two_proportion_test(30, 100, 20, 100)
    z = 0.1 / math.sqrt(0.25 * 0.75 * 0.02)
    assert (result.rate_a, result.rate_b) == (0.3, 0.2)
    assert result.difference == pytest.approx(0.1)
    assert result.z == pytest.approx(z, rel=1e-12)
    assert result.z == pytest.approx(1.632993, rel=1e-6)
    assert result.p_greater == pytest.approx(float(scipy_stats.norm.sf(z)), rel=1e-9)
    assert result.p_two_sided == pytest.approx(0.1024704, rel=1e-6)


@given(
    st.integers(min_value=0, max_value=500).flatmap(
        lambda n: st.tuples(st.integers(0, n), st.just(n))
    ),
    st.integers(min_value=0, max_value=500).flatmap(
        lambda n: st.tuples(st.integers(0, n), st.just(n))
    ),
)
def test_swapping_the_proportions_mirrors_z(a: tuple[int, int], b: tuple[int, int]) -> None:
    ab = two_proportion_test(*a, *b)
    ba = two_proportion_test(*b, *a)
    assert ab.z == -ba.z
    assert ab.difference == -ba.difference
    assert ab.p_two_sided == ba.p_two_sided
    assert 0.0 <= ab.p_greater <= 1.0 and 0.0 <= ab.p_two_sided <= 1.0
    if ab.z != 0.0:
        assert ab.p_greater + ba.p_greater == pytest.approx(1.0)
        assert ab.p_two_sided == pytest.approx(2 * min(ab.p_greater, ba.p_greater))


def test_proportions_without_trials_or_variation_are_no_evidence() -> None:
    for args in [(0, 0, 3, 10), (3, 10, 0, 0), (0, 10, 0, 10), (10, 10, 5, 5)]:
        result = two_proportion_test(*args)
        assert (result.p_greater, result.p_two_sided, result.z) == (1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="successes"):
        two_proportion_test(11, 10, 0, 10)


@given(st.integers(0, 60), st.integers(0, 60), st.integers(1, 80), st.integers(1, 80))
def test_fisher_exact_greater_agrees_with_scipy(x_a: int, x_b: int, n_a: int, n_b: int) -> None:
    x_a, x_b = min(x_a, n_a), min(x_b, n_b)
    ours = fisher_exact_greater(x_a, n_a, x_b, n_b)
    _, theirs = scipy_stats.fisher_exact(
        [[x_a, n_a - x_a], [x_b, n_b - x_b]], alternative="greater"
    )
    assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-12)


def test_one_error_in_a_small_canary_is_not_significant() -> None:
    # The z-test calls this p = 1e-6; exactly, the one error lands among the canary's 26 of 600
    # requests with probability 26 / 600.
    assert fisher_exact_greater(1, 26, 0, 574) == pytest.approx(26 / 600)
    assert two_proportion_test(1, 26, 0, 574).p_greater < 1e-5
    assert fisher_exact_greater(3, 60, 0, 1140) < 0.001  # three errors in 60 are
