"""Drift statistics: how far a window of traffic has moved from the reference profile.

The gateway keeps, per feature, counts per bin over fixed edges (`Histogram`); the reference
profile has counts on the same edges. The binned statistics here compare the reference counts
e_1..e_k with the window's counts a_1..a_k, bins in order, as proportions p_i = e_i / sum(e)
and q_i = a_i / sum(a). They cost O(bins), whatever the traffic.

- Population stability index (Siddiqi, "Credit Risk Scorecards", 2006, ch. 11):

      PSI = sum_i (q_i - p_i) * ln(q_i / p_i)

  with the proportion of an empty bin replaced by `epsilon` (1e-4 by default) on either side, so
  a bin that only one side fills counts heavily but finitely. Every term is >= 0 (a difference
  and its log ratio share a sign). Usual reading: < 0.1 stable, 0.1-0.25 moderate shift,
  >= 0.25 significant shift.
- Kolmogorov-Smirnov distance, binned: max_j |P_j - Q_j| over the cumulative proportions at
  the bin boundaries. The raw-data KS statistic is a supremum over every value, boundaries
  included, so the binned one is a lower bound of it.
- Jensen-Shannon distance (Lin 1991; Endres and Schindelin 2003), base 2, in [0, 1]:

      JS = sqrt(KL(p || m) / 2 + KL(q || m) / 2),   m = (p + q) / 2,   0 log 0 = 0

  as scipy.spatial.distance.jensenshannon(p, q, base=2).
- Chi-square test of homogeneity of the 2 x k contingency table (e, a), bins empty on both
  sides dropped (Agresti, "Categorical Data Analysis", section 3.2), no continuity correction:

      X^2 = sum over cells of (O - E)^2 / E,   E = row total * column total / N,   dof = k' - 1
      p   = Q(dof / 2, X^2 / 2), the regularized upper incomplete gamma function

  evaluated by its series or its continued fraction (Press et al., "Numerical Recipes", 3rd
  ed., section 6.2).
- Wasserstein-1 (earth mover's) distance with each bin's mass at its midpoint, the open outer
  bins (-inf, e_0) and [e_last, +inf) at e_0 and e_last: the integral of |P(x) - Q(x)| dx over
  those points (Ramdas, Garcia, Cuturi 2017), as scipy.stats.wasserstein_distance on them.

`drift_raw` computes PSI, JS and the exact two-sample KS statistic from raw values for many
columns at once. The bins are the reference's quantile edges (`quantile_edges`, the same
values bit for bit), so raw and binned PSI and JS agree exactly. Sorting a million floats
costs ~50 ms on our machines, too much for 40 columns in well under a second, so no column is
sorted. Every value goes to one of up to 65,536 fine buckets by a monotone arithmetic map
(even over the middle 99.8 % of a sample of both sides); bucket counts give both CDFs at the
bucket boundaries; and only the values of the few buckets that can matter are gathered and
sorted: those holding the order statistics that make the quantile edges, those holding an
edge, and those inside which |F_ref - F_cur| could exceed its largest value at a boundary
(it can move by at most the bucket's share of either sample). The results are exact, the
same as from sorted data.

`learned_threshold` replaces a fixed threshold by the reference's own variation: the statistic
of each of its consecutive chunks against the whole, mean + sigmas * standard deviation.

>>> reference = (100, 200, 400, 200, 100)
>>> round(psi(reference, reference), 6), round(js_distance(reference, reference), 6)
(0.0, 0.0)
>>> window = (50, 150, 400, 250, 150)
>>> round(psi(reference, window), 4), round(ks_binned(reference, window), 4)
(0.0805, 0.1)
>>> round(wasserstein_binned((0.0, 1.0, 2.0, 3.0), reference, window), 4)
0.25
>>> chi_square(reference, reference).p_value
1.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from modelfleet.stats.histogram import Edges

Floats = npt.NDArray[np.float64]
Indices = npt.NDArray[np.intp]

STATISTICS = ("psi", "ks", "js")


@dataclass(frozen=True)
class ChiSquare:
    """The chi-square test of homogeneity of two count vectors over the same bins."""

    statistic: float
    dof: int  # non-empty bins - 1; 0 when fewer than two bins hold anything
    p_value: float  # P(X^2 >= statistic) when both come from one distribution


@dataclass(frozen=True, eq=False)
class RawDrift:
    """Per-column drift of current raw values from reference raw values (column j at [j])."""

    psi: Floats
    ks: Floats  # exact two-sample KS statistic, as scipy.stats.ks_2samp's
    js: Floats
    edges: tuple[Edges, ...]  # the reference's quantile edges, the bins of psi and js


def psi(expected: npt.ArrayLike, actual: npt.ArrayLike, epsilon: float = 1e-4) -> float:
    """Population stability index of `actual` counts against `expected` (empty bins: epsilon).

    Read as < 0.1 stable, 0.1-0.25 moderate shift, >= 0.25 significant shift.
    """
    if not epsilon > 0.0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    p, q = _proportions(expected, actual)
    p = np.where(p > 0.0, p, epsilon)
    q = np.where(q > 0.0, q, epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


def ks_binned(expected: npt.ArrayLike, actual: npt.ArrayLike) -> float:
    """Largest gap between the two cumulative distributions at the bin boundaries."""
    e, a = _counts(expected, actual)
    gaps = np.cumsum(e) / e.sum() - np.cumsum(a) / a.sum()
    return float(np.max(np.abs(gaps)))


def js_distance(expected: npt.ArrayLike, actual: npt.ArrayLike) -> float:
    """Jensen-Shannon distance, base 2: 0 for the same proportions, 1 for disjoint bins."""
    p, q = _proportions(expected, actual)
    m = (p + q) / 2.0
    divergence = (_kl_bits(p, m) + _kl_bits(q, m)) / 2.0
    return math.sqrt(min(max(divergence, 0.0), 1.0))


def chi_square(expected: npt.ArrayLike, actual: npt.ArrayLike) -> ChiSquare:
    """Chi-square test that both count vectors come from one distribution over the bins."""
    e, a = _counts(expected, actual)
    filled = (e + a) > 0.0
    table = np.stack([e[filled], a[filled]])
    dof = table.shape[1] - 1
    if dof < 1:
        return ChiSquare(0.0, 0, 1.0)
    rows = table.sum(axis=1, keepdims=True)
    columns = table.sum(axis=0, keepdims=True)
    fitted = rows * columns / table.sum()
    statistic = float(np.sum((table - fitted) ** 2 / fitted))
    return ChiSquare(statistic, dof, _chi2_sf(statistic, dof))


def wasserstein_binned(
    edges: Sequence[float], expected: npt.ArrayLike, actual: npt.ArrayLike
) -> float:
    """Earth mover's distance, each bin's mass at its midpoint (outer bins at the outer edges)."""
    e, a = _counts(expected, actual)
    bounds = np.asarray(edges, dtype=np.float64)
    if bounds.ndim != 1 or bounds.size != e.size - 1:
        raise ValueError(f"{e.size} bins need {e.size - 1} edges, got {bounds.size}")
    if not (np.all(np.isfinite(bounds)) and np.all(np.diff(bounds) > 0.0)):
        raise ValueError("edges must be finite and strictly increasing")
    points = np.concatenate([bounds[:1], (bounds[:-1] + bounds[1:]) / 2.0, bounds[-1:]])
    gaps = np.cumsum(e)[:-1] / e.sum() - np.cumsum(a)[:-1] / a.sum()
    return float(np.sum(np.abs(gaps) * np.diff(points)))


def drift_raw(reference: npt.ArrayLike, current: npt.ArrayLike, bins: int = 10) -> RawDrift:
    """PSI, exact KS and JS of every column of `current` (m, k) against `reference` (n, k).

    NaN is missing and left out, as a `Histogram` does; infinities count in the outer bins and
    in KS. PSI and JS use the reference's `quantile_edges(column, bins)`.
    """
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    ref_columns, cur_columns = _columns(reference), _columns(current)
    if ref_columns.shape[0] != cur_columns.shape[0]:
        raise ValueError(
            f"reference has {ref_columns.shape[0]} columns, current {cur_columns.shape[0]}"
        )
    levels = np.arange(1, bins) / bins
    results = [_column_drift(r, c, levels) for r, c in zip(ref_columns, cur_columns, strict=True)]
    return RawDrift(
        psi=np.array([r[0] for r in results], dtype=np.float64),
        ks=np.array([r[1] for r in results], dtype=np.float64),
        js=np.array([r[2] for r in results], dtype=np.float64),
        edges=tuple(r[3] for r in results),
    )


def learned_threshold(
    reference: npt.ArrayLike,
    statistic: str,
    chunks: int = 10,
    sigmas: float = 3.0,
    bins: int = 10,
) -> float:
    """Mean + sigmas * sd of `statistic` ("psi", "ks" or "js") of each consecutive chunk of
    `reference` against the whole reference, on its bins.

    The statistic's noise shrinks as the window grows, so the threshold fits windows of about
    len(reference) / chunks values. A chunk is part of the whole, which brings its statistic a
    little closer to 0 than an independent window's (KS by about sqrt(1 - 1 / chunks)); the
    sigmas more than cover that.
    """
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
    values = np.asarray(reference, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"reference must be one column, got shape {values.shape}")
    if chunks < 2 or values.size < chunks:
        raise ValueError(f"need chunks >= 2 and at least one value each, got {chunks} chunks")
    column = values[:, np.newaxis]
    scores = [
        float(getattr(drift_raw(column, chunk[:, np.newaxis], bins), statistic)[0])
        for chunk in np.array_split(values, chunks)
    ]
    return float(np.mean(scores) + sigmas * np.std(scores))


def _counts(expected: npt.ArrayLike, actual: npt.ArrayLike) -> tuple[Floats, Floats]:
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.ndim != 1 or e.shape != a.shape or e.size == 0:
        raise ValueError(f"need two count vectors over the same bins, got {e.shape}, {a.shape}")
    for name, counts in (("expected", e), ("actual", a)):
        if not np.all(np.isfinite(counts)) or np.any(counts < 0.0):
            raise ValueError(f"{name} counts must be finite and >= 0")
        if not counts.sum() > 0.0:
            raise ValueError(f"{name} counts are all zero: no distribution to compare")
    return e, a


def _proportions(expected: npt.ArrayLike, actual: npt.ArrayLike) -> tuple[Floats, Floats]:
    e, a = _counts(expected, actual)
    return e / e.sum(), a / a.sum()


def _kl_bits(p: Floats, m: Floats) -> float:
    """KL(p || m) in bits, 0 log 0 = 0 (m > 0 wherever p > 0)."""
    held = p > 0.0
    return float(np.sum(p[held] * np.log2(p[held] / m[held])))


# Numerical Recipes' limits: relative accuracy, and a floor that keeps Lentz's method off zero.
_EPS = 1e-15
_TINY = 1e-300


def _chi2_sf(statistic: float, dof: int) -> float:
    """P(X >= statistic) for X ~ chi-square(dof) = Q(dof / 2, statistic / 2)."""
    a, x = dof / 2.0, statistic / 2.0
    if x <= 0.0:
        return 1.0
    # Terms of both expansions shrink after about sqrt(a) steps; this bound is never reached.
    steps = 1000 + int(20.0 * math.sqrt(a))
    log_front = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:  # series for the lower function P(a, x), which converges fastest here
        term = total = 1.0 / a
        for n in range(1, steps):
            term *= x / (a + n)
            total += term
            if abs(term) < abs(total) * _EPS:
                return max(0.0, 1.0 - total * math.exp(log_front))
    else:  # continued fraction for Q(a, x), evaluated by the modified Lentz method
        b = x + 1.0 - a
        c = 1.0 / _TINY
        d = 1.0 / b
        h = d
        for i in range(1, steps):
            an = -i * (i - a)
            b += 2.0
            d = an * d + b
            d = d if abs(d) > _TINY else _TINY
            c = b + an / c
            c = c if abs(c) > _TINY else _TINY
            d = 1.0 / d
            delta = d * c
            h *= delta
            if abs(delta - 1.0) < _EPS:
                return min(1.0, math.exp(log_front) * h)
    raise ArithmeticError(f"chi-square tail did not converge for {statistic=}, {dof=}")


# ---- raw data ----------------------------------------------------------------------------------

# Fine buckets per column: about 16 reference values each, at most this many.
_MAX_BUCKETS = 65_536
_SAMPLE = 4_096  # values (strided) of each side that place the buckets
_TRANSPOSE_ROWS = 16_384  # rows per block when making columns contiguous


def _columns(data: npt.ArrayLike) -> Floats:
    """The columns of a 2-D array as contiguous rows: shape (k, n)."""
    array = np.asarray(data, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(f"need a 2-D array (rows, columns) with rows, got shape {array.shape}")
    if array.flags.f_contiguous:
        return array.T
    # Copying block by block keeps both sides in cache; a strided copy is ~3x slower.
    columns = np.empty((array.shape[1], array.shape[0]), dtype=np.float64)
    for start in range(0, array.shape[0], _TRANSPOSE_ROWS):
        columns[:, start : start + _TRANSPOSE_ROWS] = array[start : start + _TRANSPOSE_ROWS].T
    return columns


@dataclass(frozen=True)
class _Buckets:
    """A monotone map of values to fine buckets: x < y implies bucket(x) <= bucket(y)."""

    low: float
    scale: float
    size: int

    @classmethod
    def fit(cls, reference: Floats, current: Floats) -> _Buckets:
        """Buckets evenly over the middle 99.8 % of both samples, about 16 values each."""
        size = int(np.clip((reference.size + current.size) // 32, 64, _MAX_BUCKETS))
        sample = np.concatenate(
            [values[:: max(1, values.size // _SAMPLE)] for values in (reference, current)]
        )
        sample = np.sort(sample[np.isfinite(sample)])
        if sample.size == 0:
            return cls(0.0, 1.0, size)
        low = float(sample[int(0.001 * (sample.size - 1))])
        high = float(sample[int(0.999 * (sample.size - 1))])
        scale = (size - 1) / (high - low) if high > low else 1.0
        return cls(low, scale if 0.0 < scale < math.inf else 1.0, size)

    def of(self, values: Floats) -> Indices:
        # Subtraction, multiplication by a positive number, clipping and truncation are each
        # monotone in IEEE arithmetic, so the composition is too; overflow to inf is clipped.
        with np.errstate(over="ignore"):
            position = values - self.low
            position *= self.scale
        np.clip(position, 0.0, self.size - 1.0, out=position)
        return position.astype(np.intp)


@dataclass(frozen=True)
class _Sample:
    """One column's values in buckets, with the values of chosen buckets gathered and sorted."""

    values: Floats
    buckets: Indices
    counts: npt.NDArray[np.int64]
    below: npt.NDArray[np.int64]  # values in lower buckets
    n: int

    @classmethod
    def of(cls, values: Floats, buckets: _Buckets) -> _Sample:
        index = buckets.of(values)
        counts = np.bincount(index, minlength=buckets.size).astype(np.int64)
        below = np.concatenate([[0], np.cumsum(counts)[:-1]])
        return cls(values, index, counts, below, int(values.size))

    def gather(self, chosen: npt.NDArray[np.bool_]) -> _Gathered:
        sorted_values = np.sort(self.values[chosen[self.buckets]])
        gathered_below = np.concatenate([[0], np.cumsum(self.counts * chosen)[:-1]])
        return _Gathered(sorted_values, self.below - gathered_below)


@dataclass(frozen=True)
class _Gathered:
    """Sorted values of the chosen buckets; rank of x = offset[bucket(x)] + rank among them."""

    values: Floats
    offset: npt.NDArray[np.int64]

    def at_most(self, points: Floats, buckets: Indices) -> npt.NDArray[np.int64]:
        """How many values are <= each point (its bucket must be chosen, or empty)."""
        ranks = np.searchsorted(self.values, points, side="right")
        return np.asarray(self.offset[buckets] + ranks, dtype=np.int64)

    def below(self, points: Floats, buckets: Indices) -> npt.NDArray[np.int64]:
        """How many values are < each point (its bucket must be chosen, or empty)."""
        ranks = np.searchsorted(self.values, points, side="left")
        return np.asarray(self.offset[buckets] + ranks, dtype=np.int64)


def _present(values: Floats) -> tuple[Floats, bool]:
    """The values that are not NaN, and whether they are all finite."""
    if np.all(np.isfinite(values)):
        return values, True
    return values[~np.isnan(values)], False


def _column_drift(
    ref_values: Floats, cur_values: Floats, levels: Floats
) -> tuple[float, float, float, Edges]:
    (ref_values, ref_finite), (cur_values, _) = _present(ref_values), _present(cur_values)
    if ref_values.size == 0 or cur_values.size == 0:
        raise ValueError("every column needs at least one value that is not NaN on each side")
    buckets = _Buckets.fit(ref_values, cur_values)
    ref, cur = _Sample.of(ref_values, buckets), _Sample.of(cur_values, buckets)

    # KS at the bucket boundaries, and the buckets inside which it could be larger.
    cum_ref = (ref.below + ref.counts) / ref.n
    cum_cur = (cur.below + cur.counts) / cur.n
    at_boundaries = float(np.max(np.abs(cum_ref - cum_cur)))
    start = ref.below / ref.n - cur.below / cur.n
    reach = np.maximum(np.abs(start + ref.counts / ref.n), np.abs(start - cur.counts / cur.n))
    # The margin only widens the search, against rounding in the bound; it cannot miss one.
    inside = ((ref.counts + cur.counts) > 0) & (reach >= at_boundaries - 1e-12)

    # The order statistics numpy.quantile interpolates between, among the finite values.
    neg_inf = 0 if ref_finite else int(np.count_nonzero(ref_values == -math.inf))
    finite = ref.n - neg_inf
    finite -= 0 if ref_finite else int(np.count_nonzero(ref_values == math.inf))
    if finite == 0:
        raise ValueError("quantile edges need at least one finite reference value")
    virtual = (finite - 1) * levels
    lower = np.floor(virtual)
    upper = np.where(virtual >= finite - 1, lower, lower + 1.0)
    ranks = neg_inf + np.concatenate([lower, upper]).astype(np.intp)
    rank_buckets = np.searchsorted(ref.below + ref.counts, ranks, side="right")

    ref_chosen = inside.copy()
    ref_chosen[rank_buckets] = True
    ref_gathered = ref.gather(ref_chosen)
    order = ref_gathered.values[ranks - ref_gathered.offset[rank_buckets]]
    edges = np.unique(_lerp(order[: levels.size], order[levels.size :], virtual - lower))
    if not np.all(np.isfinite(edges)):  # the gap between two order statistics overflowed
        raise ValueError(f"reference values too far apart to interpolate quantiles: {edges}")
    edge_buckets = buckets.of(edges)

    cur_chosen = inside.copy()
    cur_chosen[edge_buckets] = True
    cur_gathered = cur.gather(cur_chosen)

    # An edge lies between its two order statistics (the interpolation cannot round past
    # either), so its bucket is one of theirs, gathered, or one the reference leaves empty.
    ref_below = ref_gathered.below(edges, edge_buckets)
    cur_below = cur_gathered.below(edges, edge_buckets)
    ref_counts = np.diff(np.concatenate([[0], ref_below, [ref.n]]))
    cur_counts = np.diff(np.concatenate([[0], cur_below, [cur.n]]))

    # Exact KS inside the candidate buckets: at every value there, F(x) = #(values <= x) / n.
    points = np.concatenate([ref_gathered.values, cur_gathered.values])
    point_buckets = buckets.of(points)
    keep = inside[point_buckets]
    points, point_buckets = points[keep], point_buckets[keep]
    gaps = (
        ref_gathered.at_most(points, point_buckets) / ref.n
        - cur_gathered.at_most(points, point_buckets) / cur.n
    )
    ks = max(at_boundaries, float(np.max(np.abs(gaps)))) if gaps.size else at_boundaries

    return (
        psi(ref_counts, cur_counts),
        ks,
        js_distance(ref_counts, cur_counts),
        tuple(float(e) for e in edges),
    )


def _lerp(a: Floats, b: Floats, t: Floats) -> Floats:
    """numpy.quantile's linear interpolation, term for term, so the edges are its edges."""
    diff = b - a
    result: Any = np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)
    return np.asarray(result, dtype=np.float64)
