"""Significance tests for canary analysis, on counts per bin rather than on raw values.

A canary analysis (as Netflix's Kayenta does) asks whether the canary's metric is worse than
stable's by more than chance allows. Our telemetry keeps counts, never raw values: latencies in
a sketch's log-spaced buckets, confidences in a histogram, requests by status class. So the
tests here take those counts directly, cost O(number of bins) whatever the traffic, and give
the same answers as the textbook tests on the expanded samples.

Mann-Whitney U (Mann and Whitney 1947; normal approximation with tie correction and continuity
correction as in scipy.stats.mannwhitneyu, method="asymptotic"). For samples a and b of sizes
n_a, n_b counted per ordered bin, values in the same bin are ties, and

    U      = sum over bins k of a_k * (b below k + b_k / 2)      (pairs a > b, ties count half)
    mean   = n_a * n_b / 2
    var    = n_a * n_b / 12 * ((n + 1) - sum_k (t_k^3 - t_k) / (n * (n - 1))),  t_k = a_k + b_k
    p_greater   = P(Z >= (U - mean - 0.5) / sqrt(var))
    p_two_sided = min(1, 2 * P(Z >= (|U - mean| - 0.5) / sqrt(var)))

U / (n_a * n_b) estimates P(A > B) + P(A = B) / 2, the common-language effect size.

Two proportions: the pooled z-test, z = (r_a - r_b) / sqrt(p (1 - p) (1/n_a + 1/n_b)) with
p = (x_a + x_b) / (n_a + n_b) (e.g. Agresti, "Categorical Data Analysis", section 3.1).

The z-test needs a handful of events on each side; canaries mostly have none (a healthy error
rate is zero), where it calls one error in 26 requests "p = 1e-6". So error rates are judged by
Fisher's exact test: with the errors of both sides fixed, the chance that a at least as many of
them fall among a's requests, a hypergeometric tail (Fisher 1935; Agresti, section 3.5):

    p_greater = sum over k >= x_a of C(x, k) C(n - x, n_a - k) / C(n, n_a),  x = x_a + x_b

No data, or no variation in it, is no evidence: the p-values are then 1.

>>> result = mann_whitney_binned({1: 5, 2: 5}, {0: 5, 1: 5})
>>> result.u, result.probability_greater
(87.5, 0.875)
>>> result.p_greater < 0.01
True
>>> round(two_proportion_test(30, 100, 20, 100).z, 4)
1.633
>>> round(fisher_exact_greater(1, 26, 0, 574), 4)  # the one error could fall anywhere
0.0433
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

_SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True)
class MannWhitney:
    """The Mann-Whitney U test of sample a against sample b."""

    u: float  # pairs (a, b) with a > b, plus half the tied pairs
    n_a: int
    n_b: int
    mean: float  # of U when both samples come from one distribution
    variance: float  # of U under the same hypothesis, corrected for ties
    z: float  # (U - mean) / sd, continuity-corrected towards 0: > 0 when a tends larger
    p_greater: float  # one-sided: values in a tend to be larger than in b
    p_two_sided: float
    probability_greater: float  # U / (n_a * n_b): P(A > B) + P(A = B) / 2; 0.5 when empty


@dataclass(frozen=True)
class Proportions:
    """The pooled two-proportion z-test of x_a successes in n_a trials against x_b in n_b."""

    rate_a: float  # x_a / n_a, 0 when n_a is 0
    rate_b: float
    difference: float  # rate_a - rate_b
    z: float
    p_greater: float  # one-sided: a's rate is larger than b's
    p_two_sided: float


def mann_whitney_binned(a: Mapping[int | float, int], b: Mapping[int | float, int]) -> MannWhitney:
    """The Mann-Whitney U test of a against b from counts per ordered bin (equal keys are ties)."""
    for counts in (a, b):
        for key, count in counts.items():
            if key != key:
                raise ValueError("bin keys must be ordered numbers, got NaN")
            if count < 0:
                raise ValueError(f"counts must be >= 0, got {count} in bin {key}")
    n_a, n_b = sum(a.values()), sum(b.values())
    n = n_a + n_b
    # Integers throughout (twice U, and the tie term), so U is exact and zero variance is seen
    # exactly, not as a rounding residue.
    twice_u = 0
    b_below = 0
    tie_term = 0
    for key in sorted(set(a) | set(b)):
        a_k, b_k = a.get(key, 0), b.get(key, 0)
        twice_u += a_k * (2 * b_below + b_k)
        b_below += b_k
        t = a_k + b_k
        tie_term += t * t * t - t
    u = twice_u / 2
    pairs = n_a * n_b
    mean = pairs / 2
    if pairs == 0:
        return MannWhitney(u, n_a, n_b, mean, 0.0, 0.0, 1.0, 1.0, 0.5)
    # n_a n_b / 12 * ((n + 1) - T / (n (n - 1))), over one common denominator.
    variance = pairs * ((n + 1) * n * (n - 1) - tie_term) / (12 * n * (n - 1))
    if variance <= 0.0:  # every value in one bin
        return MannWhitney(u, n_a, n_b, mean, 0.0, 0.0, 1.0, 1.0, 0.5)
    sd = math.sqrt(variance)
    deviation = u - mean
    z = math.copysign(max(abs(deviation) - 0.5, 0.0), deviation) / sd
    return MannWhitney(
        u=u,
        n_a=n_a,
        n_b=n_b,
        mean=mean,
        variance=variance,
        z=z,
        p_greater=_upper_tail((deviation - 0.5) / sd),
        p_two_sided=min(1.0, 2.0 * _upper_tail((abs(deviation) - 0.5) / sd)),
        probability_greater=u / pairs,
    )


def two_proportion_test(x_a: int, n_a: int, x_b: int, n_b: int) -> Proportions:
    """The pooled two-proportion z-test: is a's rate x_a / n_a different from b's x_b / n_b?"""
    if not (0 <= x_a <= n_a and 0 <= x_b <= n_b):
        raise ValueError(f"successes must lie in [0, trials], got {x_a} of {n_a}, {x_b} of {n_b}")
    rate_a = x_a / n_a if n_a else 0.0
    rate_b = x_b / n_b if n_b else 0.0
    difference = rate_a - rate_b
    pooled = (x_a + x_b) / (n_a + n_b) if n_a and n_b else 0.0
    if pooled in (0.0, 1.0):  # no trials on a side, or no variation: no evidence
        return Proportions(rate_a, rate_b, difference, 0.0, 1.0, 1.0)
    z = difference / math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b))
    return Proportions(
        rate_a=rate_a,
        rate_b=rate_b,
        difference=difference,
        z=z,
        p_greater=_upper_tail(z),
        p_two_sided=min(1.0, 2.0 * _upper_tail(abs(z))),
    )


# Beyond this many terms the tail is summed only until its terms stop mattering.
_NEGLIGIBLE = 1e-17


def fisher_exact_greater(x_a: int, n_a: int, x_b: int, n_b: int) -> float:
    """One-sided Fisher's exact test: the p-value of "a's rate x_a / n_a exceeds b's x_b / n_b".

    Exact for any counts, in O(number of events) time: the terms of the tail fall geometrically
    once past the mode, and are summed until they stop changing the result.
    """
    if not (0 <= x_a <= n_a and 0 <= x_b <= n_b):
        raise ValueError(f"successes must lie in [0, trials], got {x_a} of {n_a}, {x_b} of {n_b}")
    n, events = n_a + n_b, x_a + x_b
    if n_a == 0 or n_b == 0 or events in (0, n):
        return 1.0
    top = min(events, n_a)
    log_total = _log_comb(n, n_a)
    p = 0.0
    for k in range(x_a, top + 1):
        term = math.exp(_log_comb(events, k) + _log_comb(n - events, n_a - k) - log_total)
        p += term
        if k > x_a and term < p * _NEGLIGIBLE:
            break
    return min(1.0, p)


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _upper_tail(z: float) -> float:
    """P(Z >= z) for a standard normal Z; erfc keeps its relative accuracy far into the tail."""
    return 0.5 * math.erfc(z / _SQRT2)
