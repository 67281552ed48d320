"""Drift statistics: binned ones against direct formulas and scipy, raw ones against the binned."""

from __future__ import annotations

import doctest
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats
from scipy.spatial.distance import jensenshannon

from modelfleet.stats import (
    Histogram,
    chi_square,
    drift_raw,
    js_distance,
    ks_binned,
    learned_threshold,
    psi,
    quantile_edges,
    wasserstein_binned,
)
from modelfleet.stats import drift as drift_module

# Count vectors over the same bins, each with something in it.
bins = st.integers(min_value=1, max_value=12)
count = st.integers(min_value=0, max_value=1000)


@st.composite
def count_pairs(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    k = draw(bins)
    expected = draw(st.lists(count, min_size=k, max_size=k).filter(lambda c: sum(c) > 0))
    actual = draw(st.lists(count, min_size=k, max_size=k).filter(lambda c: sum(c) > 0))
    return expected, actual


# Raw values: moderate magnitudes, with ties, NaN and infinities mixed in.
raw_value = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.sampled_from([0.0, 1.0, 2.5, -3.0, math.nan, math.inf, -math.inf]),
)
raw_column = st.lists(raw_value, min_size=1, max_size=120)


def histogram_counts(edges: tuple[float, ...], values: np.ndarray) -> tuple[int, ...]:
    histogram = Histogram(edges)
    histogram.add_many(values)
    return histogram.counts


def scipy_ks(reference: np.ndarray, current: np.ndarray) -> float:
    """scipy's two-sample KS statistic; its p-value, not needed here, warns on tiny samples."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(scipy_stats.ks_2samp(reference, current, method="asymp").statistic)


def test_the_module_example_runs() -> None:
    assert doctest.testmod(drift_module, raise_on_error=True).attempted > 0


# ---- PSI ---------------------------------------------------------------------------------------


@given(count_pairs())
def test_psi_is_zero_on_identical_counts_and_never_negative(
    pair: tuple[list[int], list[int]],
) -> None:
    expected, actual = pair
    assert psi(expected, expected) == 0.0
    assert psi(expected, [3 * c for c in expected]) == pytest.approx(0.0, abs=1e-12)
    assert psi(expected, actual) >= 0.0


def test_psi_matches_the_formula_written_out() -> None:
    expected = np.array([120, 80, 0, 300, 500])
    actual = np.array([100, 0, 40, 260, 600])
    p, q = expected / expected.sum(), actual / actual.sum()
    p[p == 0] = 1e-4
    q[q == 0] = 1e-4
    direct = float(np.sum((q - p) * np.log(q / p)))
    assert psi(expected, actual) == pytest.approx(direct, abs=1e-9)
    assert psi(expected, actual, epsilon=1e-3) < psi(expected, actual)


def test_psi_grows_as_the_distribution_shifts_further() -> None:
    rng = np.random.default_rng(7)
    reference = rng.normal(size=20_000)
    edges = quantile_edges(reference)
    expected = histogram_counts(edges, reference)
    shifts = [0.0, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.5]
    values = [psi(expected, histogram_counts(edges, rng.normal(mu, size=20_000))) for mu in shifts]
    assert values == sorted(values)
    assert values[0] < 0.01 and values[3] > 0.1 and values[-1] > 0.25


# ---- KS, JS ------------------------------------------------------------------------------------


@given(count_pairs())
def test_js_is_a_symmetric_distance_in_the_unit_interval(pair: tuple[list[int], list[int]]) -> None:
    expected, actual = pair
    distance = js_distance(expected, actual)
    assert 0.0 <= distance <= 1.0
    assert distance == pytest.approx(js_distance(actual, expected), abs=1e-12)
    assert js_distance(expected, expected) == pytest.approx(0.0, abs=1e-7)
    assert distance == pytest.approx(float(jensenshannon(expected, actual, base=2)), abs=1e-9)


def test_js_is_one_on_disjoint_bins_and_matches_the_formula_written_out() -> None:
    assert js_distance([5, 0, 0], [0, 3, 4]) == 1.0
    expected = np.array([10.0, 20.0, 30.0, 0.0])
    actual = np.array([15.0, 5.0, 30.0, 10.0])
    p, q = expected / expected.sum(), actual / actual.sum()
    m = (p + q) / 2
    kl_p = sum(pi * math.log2(pi / mi) for pi, mi in zip(p, m, strict=True) if pi > 0)
    kl_q = sum(qi * math.log2(qi / mi) for qi, mi in zip(q, m, strict=True) if qi > 0)
    assert js_distance(expected, actual) == pytest.approx(math.sqrt((kl_p + kl_q) / 2), abs=1e-9)


@settings(max_examples=200)
@given(raw_column, raw_column)
def test_binned_ks_is_a_lower_bound_of_the_raw_ks(ref: list[float], cur: list[float]) -> None:
    reference, current = np.array(ref), np.array(cur)
    reference, current = reference[~np.isnan(reference)], current[~np.isnan(current)]
    if not np.isfinite(reference).any() or current.size == 0:
        return
    edges = quantile_edges(reference)
    binned = ks_binned(histogram_counts(edges, reference), histogram_counts(edges, current))
    assert binned <= scipy_ks(reference, current) + 1e-15


def test_binned_ks_is_the_largest_gap_between_cumulative_proportions() -> None:
    assert ks_binned([1, 1, 2], [2, 1, 1]) == pytest.approx(0.25)
    assert ks_binned([4, 0], [0, 4]) == 1.0


# ---- chi-square --------------------------------------------------------------------------------


@settings(max_examples=200)
@given(count_pairs())
def test_chi_square_agrees_with_scipy_on_the_contingency_table(
    pair: tuple[list[int], list[int]],
) -> None:
    expected, actual = pair
    result = chi_square(expected, actual)
    table = np.array([expected, actual])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        assert (result.statistic, result.dof, result.p_value) == (0.0, 0, 1.0)
        return
    statistic, p_value, dof, _ = scipy_stats.chi2_contingency(table, correction=False)
    assert result.dof == dof
    assert result.statistic == pytest.approx(statistic, rel=1e-9, abs=1e-9)
    assert result.p_value == pytest.approx(p_value, rel=1e-9, abs=1e-300)


def test_chi_square_p_is_one_on_identical_counts_and_tiny_on_a_clear_shift() -> None:
    counts = [100, 200, 400, 200, 100]
    assert chi_square(counts, counts).p_value == pytest.approx(1.0)
    assert chi_square(counts, [2 * c for c in counts]).p_value == pytest.approx(1.0)
    shifted = chi_square(counts, [50, 100, 300, 300, 250])
    assert shifted.dof == 4 and shifted.p_value < 1e-12


@pytest.mark.parametrize("dof", [1, 2, 3, 9, 30, 99, 1000, 20_000])
@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.3, 0.9, 1.0, 1.1, 2.0, 5.0, 40.0])
def test_the_chi_square_tail_matches_scipy(dof: int, fraction: float) -> None:
    statistic = fraction * dof
    assert drift_module._chi2_sf(statistic, dof) == pytest.approx(
        scipy_stats.chi2.sf(statistic, dof), rel=1e-9, abs=1e-300
    )


# ---- Wasserstein -------------------------------------------------------------------------------


@given(count_pairs(), st.data())
def test_wasserstein_is_scipys_on_the_bin_midpoints(
    pair: tuple[list[int], list[int]], data: st.DataObject
) -> None:
    expected, actual = pair
    steps = data.draw(
        st.lists(st.floats(0.01, 100.0), min_size=len(expected) - 1, max_size=len(expected) - 1)
    )
    start = data.draw(st.floats(-100.0, 100.0))
    edges = start + np.cumsum([0.0, *steps])[1:] if steps else np.array([start])
    edges = edges[: len(expected) - 1] if len(expected) > 1 else np.array([])
    if len(expected) == 1:
        with pytest.raises(ValueError, match="need 0 edges"):
            wasserstein_binned([start], expected, actual)
        return
    points = np.concatenate([edges[:1], (edges[:-1] + edges[1:]) / 2, edges[-1:]])
    reference = scipy_stats.wasserstein_distance(points, points, expected, actual)
    assert wasserstein_binned(edges.tolist(), expected, actual) == pytest.approx(
        reference, rel=1e-9, abs=1e-9
    )


def test_wasserstein_puts_the_open_outer_bins_at_the_outer_edges() -> None:
    # All mass moves from (-inf, 0) to [10, inf): from 0 to 10.
    assert wasserstein_binned([0.0, 10.0], [5, 0, 0], [0, 0, 5]) == 10.0
    assert wasserstein_binned([0.0, 10.0], [5, 0, 0], [0, 5, 0]) == 5.0


# ---- input checks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "actual", "message"),
    [
        ([1, 2], [1, 2, 3], "same bins"),
        ([], [], "same bins"),
        ([1, -1], [1, 1], "finite and >= 0"),
        ([0, 0], [1, 1], "all zero"),
        ([1, 1], [math.nan, 1], "finite and >= 0"),
    ],
)
def test_count_vectors_that_cannot_be_compared_are_refused(
    expected: list[float], actual: list[float], message: str
) -> None:
    for statistic in (psi, ks_binned, js_distance, chi_square):
        with pytest.raises(ValueError, match=message):
            statistic(expected, actual)


# ---- raw data ----------------------------------------------------------------------------------


def assert_raw_agrees_with_binned(reference: np.ndarray, current: np.ndarray, bins: int) -> None:
    result = drift_raw(reference, current, bins)
    for j in range(reference.shape[1]):
        ref, cur = reference[:, j], current[:, j]
        edges = quantile_edges(ref, bins)
        assert result.edges[j] == edges
        expected, actual = histogram_counts(edges, ref), histogram_counts(edges, cur)
        assert result.psi[j] == pytest.approx(psi(expected, actual), abs=1e-9)
        assert result.js[j] == pytest.approx(js_distance(expected, actual), abs=1e-9)
        ks = scipy_ks(ref[~np.isnan(ref)], cur[~np.isnan(cur)])
        assert result.ks[j] == pytest.approx(ks, abs=1e-12)


@settings(max_examples=300)
@given(
    st.lists(raw_column, min_size=1, max_size=3),
    raw_column,
    st.integers(min_value=2, max_value=12),
)
def test_raw_drift_agrees_with_the_binned_statistics_and_scipys_ks(
    columns: list[list[float]], cur: list[float], bins: int
) -> None:
    n = min(len(c) for c in columns)
    reference = np.array([c[:n] for c in columns]).T
    current = np.array([cur for _ in columns]).T
    usable = all(
        np.isfinite(reference[:, j]).any() and not np.isnan(current[:, j]).all()
        for j in range(reference.shape[1])
    )
    if not usable:
        with pytest.raises(ValueError):
            drift_raw(reference, current, bins)
        return
    assert_raw_agrees_with_binned(reference, current, bins)


@pytest.mark.parametrize(
    "shape",
    ["normal", "shifted", "integers", "cauchy", "with_gaps", "constant", "fortran"],
)
def test_raw_drift_is_exact_on_large_samples(shape: str) -> None:
    rng = np.random.default_rng(11)
    n, m = 60_000, 45_000
    reference = rng.normal(size=(n, 3))
    current = rng.normal(size=(m, 3))
    if shape == "shifted":
        current = current * [1.0, 1.5, 1.0] + [0.0, 0.0, 0.3]
    elif shape == "integers":
        reference = rng.integers(0, 6, size=(n, 3)).astype(float)
        current = rng.integers(0, 7, size=(m, 3)).astype(float)
    elif shape == "cauchy":
        reference, current = rng.standard_cauchy((n, 3)), rng.standard_cauchy((m, 3))
    elif shape == "with_gaps":
        reference[rng.random((n, 3)) < 0.1] = np.nan
        reference[rng.random((n, 3)) < 0.01] = np.inf
        current[rng.random((m, 3)) < 0.01] = -np.inf
    elif shape == "constant":
        reference[:, 0] = 2.0
        current[:, 1] = reference[:m, 1]  # identical values: every boundary gap is 0
    elif shape == "fortran":
        reference, current = np.asfortranarray(reference), np.asfortranarray(current)
    assert_raw_agrees_with_binned(reference, current, 10)


def test_raw_drift_is_zero_on_identical_data() -> None:
    values = np.random.default_rng(5).normal(size=(30_000, 2))
    result = drift_raw(values, values.copy())
    assert result.psi.tolist() == [0.0, 0.0]
    assert result.ks.tolist() == [0.0, 0.0]
    assert result.js.tolist() == pytest.approx([0.0, 0.0], abs=1e-7)


def test_raw_drift_refuses_mismatched_or_empty_columns() -> None:
    with pytest.raises(ValueError, match="columns"):
        drift_raw(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="not NaN"):
        drift_raw(np.zeros((5, 1)), np.full((5, 1), np.nan))
    with pytest.raises(ValueError, match="finite reference value"):
        drift_raw(np.full((5, 1), np.inf), np.zeros((5, 1)))
    with pytest.raises(ValueError, match="2-D"):
        drift_raw(np.zeros(5), np.zeros(5))
    with pytest.raises(ValueError, match="bins"):
        drift_raw(np.zeros((5, 1)), np.zeros((5, 1)), bins=1)


# ---- learned thresholds ------------------------------------------------------------------------


@pytest.mark.parametrize("statistic", ["psi", "ks", "js"])
def test_a_learned_threshold_passes_fresh_stationary_data_and_flags_a_shift(
    statistic: str,
) -> None:
    rng = np.random.default_rng(3)
    reference = rng.normal(size=20_000)
    threshold = learned_threshold(reference, statistic, chunks=10)
    window = 2_000  # the chunk size the threshold was learned at

    def score(values: np.ndarray) -> float:
        return float(getattr(drift_raw(reference[:, None], values[:, None]), statistic)[0])

    passed = sum(score(rng.normal(size=window)) <= threshold for _ in range(40))
    assert passed >= 36
    assert score(rng.normal(0.5, 1.0, size=window)) > threshold
    assert score(rng.normal(0.0, 1.5, size=window)) > threshold


def test_learned_threshold_refuses_unknown_statistics_and_too_few_values() -> None:
    with pytest.raises(ValueError, match="statistic"):
        learned_threshold(np.zeros(100), "wasserstein")
    with pytest.raises(ValueError, match="chunks"):
        learned_threshold(np.zeros(5), "psi", chunks=10)
    with pytest.raises(ValueError, match="one column"):
        learned_threshold(np.zeros((100, 2)), "psi")
