"""Tail probabilities learned from a stream: peaks over a threshold and the generalized Pareto.

The anomaly detector (`modelfleet.monitors.anomaly`) standardizes each residual to z and asks
how rare a z at least this large is. Metric residuals are rarely normal (latencies are
heavy-tailed, error counts are discrete), so the answer comes from the stream's own tail.

By the Pickands-Balkema-de Haan theorem, the excesses y = z - u of a random variable over a
high threshold u follow, approximately, a generalized Pareto distribution (GPD) whatever the
variable's distribution; so (Coles, "An Introduction to Statistical Modeling of Extreme
Values", 2001, section 4.3; used on streams by Siffer et al., "Anomaly Detection in Streams
with Extreme Value Theory", KDD 2017, as SPOT):

    P(Z > z) = rate * (1 + xi * (z - u) / sigma) ** (-1 / xi)     for z > u
             = rate * exp(-(z - u) / sigma)                       when xi = 0

where rate = P(Z > u). A tail learns rate as the (exponentially weighted) fraction of points
over u, and xi and sigma from the weighted mean m and variance v of the excesses by the method
of moments (Hosking and Wallis, Technometrics 29, 1987):

    xi = (1 - m^2 / v) / 2,        sigma = m * (1 - xi)

Two guards make it conservative where data are few or odd. xi is held in [0, 0.45]: a tail is
never taken as lighter than exponential (a bounded tail would call anything past the largest
value seen "impossible"), nor so heavy that its variance, which the moments need, is
infinite. sigma is at least 0.25 (in units of z), so that discrete data, whose excesses can
all be equal, do not make the next value up look infinitely rare. And the answer is never
below the normal tail: P(Z > z) >= Phi_c(z), the tail is assumed no lighter than the normal's.

One excess moves the moments by little: it is learned as at most the current fit's
99 % quantile of excesses (winsorized), so that a few outliers that were not quite significant
do not make the tail heavy; a tail that really is heavier keeps hitting that cap, which rises
with the fit.

Before data arrive, a tail holds a prior worth 200 points and 5 excesses: rate = 0.0228 and
exponential excesses of mean 0.4, about the normal's (rate 0.0228 and mean excess 0.37 at
u = 2). Its state is a list of five floats, [rate, m, mean of squares, points, excesses], so
that it serializes as JSON.

>>> tail = new_tail()
>>> round(tail_sf(tail, 2.0), 4), tail_sf(tail, 5.0) < 1e-4
(0.0228, True)
>>> for _ in range(1000):
...     tail_learn(tail, 3.0)  # a stream that is always far out: its tail is heavy
>>> tail_sf(tail, 5.0) > 0.01
True
>>> round(tail_isf(new_tail(), tail_sf(new_tail(), 4.5)), 6)
4.5
"""

from __future__ import annotations

import math
from statistics import NormalDist

THRESHOLD = 2.0  # u, in units of the standardized residual z
_PRIOR_RATE = 0.0228  # P(Z > 2) for the standard normal
_PRIOR_MEAN = 0.4
_PRIOR_POINTS = 200.0
_PRIOR_EXCESSES = 5.0
_POINTS_MEMORY = 2000.0  # the rate forgets with weight 1/2000 per point, once that many are in
_EXCESS_MEMORY = 100.0  # the excesses' moments forget with weight 1/100 per excess
_XI_MAX = 0.45
_SIGMA_MIN = 0.25
_WINSOR = 100.0  # an excess is learned as at most the fit's quantile 1 - 1/100
_LOG_WINSOR = math.log(_WINSOR)
_SQRT2 = math.sqrt(2.0)


def new_tail() -> list[float]:
    """A tail that has seen no data: the prior alone."""
    return [_PRIOR_RATE, _PRIOR_MEAN, 2.0 * _PRIOR_MEAN**2, 0.0, 0.0]


def normal_sf(z: float) -> float:
    """P(Z > z) for the standard normal."""
    return 0.5 * math.erfc(z / _SQRT2)


def gpd_parameters(tail: list[float]) -> tuple[float, float]:
    """(xi, sigma) of the excesses, by the method of moments within the guards."""
    mean = tail[1]
    variance = tail[2] - mean * mean
    xi = 0.5 * (1.0 - mean * mean / variance) if variance > 1e-12 else 0.0
    xi = min(max(xi, 0.0), _XI_MAX)
    return xi, max(mean * (1.0 - xi), _SIGMA_MIN)


def tail_sf(tail: list[float], z: float) -> float:
    """P(Z > z) under the learned tail, never below the normal's."""
    normal = normal_sf(z)
    if z <= THRESHOLD:
        return max(normal, tail[0])
    xi, sigma = gpd_parameters(tail)
    y = (z - THRESHOLD) / sigma
    pareto = math.exp(-y) if xi < 1e-9 else (1.0 + xi * y) ** (-1.0 / xi)
    return max(normal, tail[0] * pareto)


def tail_isf(tail: list[float], p: float) -> float:
    """The z whose tail probability is p: the inverse of `tail_sf` (for 0 < p < 1)."""
    normal = NormalDist().inv_cdf(1.0 - p)
    rate = tail[0]
    if p >= rate:
        return normal
    xi, sigma = gpd_parameters(tail)
    ratio = rate / p
    pareto = sigma * math.log(ratio) if xi < 1e-9 else sigma / xi * (ratio**xi - 1.0)
    return max(normal, THRESHOLD + pareto)


def tail_learn(tail: list[float], z: float) -> None:
    """Learn one standardized residual z into the tail (in place)."""
    _learn_rate(tail, z > THRESHOLD)
    if z > THRESHOLD:
        _learn_excess(tail, z)


def tail_learn_runs(tail: list[float], z: float, peak: float) -> float:
    """Learn z of a serially dependent statistic, declustered by runs (Coles 2001, section
    5.3.2): an excursion over the threshold counts once, at its end, by its peak; the rate is
    then of excursions per point. `peak` is the excursion's peak so far (0 outside one);
    returns the new one, which the caller keeps."""
    if z > THRESHOLD:
        return max(peak, z)
    _learn_rate(tail, peak > 0.0)
    if peak > 0.0:
        _learn_excess(tail, peak)
    return 0.0


def _learn_rate(tail: list[float], over: bool) -> None:
    points = tail[3] + 1.0
    tail[3] = points
    weight = 1.0 / min(points + _PRIOR_POINTS, _POINTS_MEMORY)
    tail[0] += weight * (float(over) - tail[0])


def _learn_excess(tail: list[float], z: float) -> None:
    excesses = tail[4] + 1.0
    tail[4] = excesses
    weight = 1.0 / min(excesses + _PRIOR_EXCESSES, _EXCESS_MEMORY)
    xi, sigma = gpd_parameters(tail)
    cap = sigma * _LOG_WINSOR if xi < 1e-9 else sigma / xi * (_WINSOR**xi - 1.0)
    y = min(z - THRESHOLD, cap)
    tail[1] += weight * (y - tail[1])
    tail[2] += weight * (y * y - tail[2])
