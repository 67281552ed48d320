"""Demand forecasts from request rates: hourly history in, mean and prediction interval out.

The method is forecasting with a multiple seasonal decomposition, as R's
``forecast::stlf``/``mstl`` do (Hyndman & Athanasopoulos, *Forecasting: Principles and
Practice*, 3rd ed., §5.7 "Forecasting with decomposition" and §12.1 "Complex seasonality"):

1. Decompose ``y = trend + seasonal_daily + seasonal_weekly + remainder`` with MSTL
   (Bandara, Hyndman & Bergmeir 2021, "MSTL: A Seasonal-Trend Decomposition Algorithm for
   Time Series with Multiple Seasonal Patterns").
2. Forecast the seasonally adjusted series ``trend + remainder`` with additive
   damped-trend exponential smoothing, ETS(A,Ad,N).
3. Reseasonalize by repeating the last full cycle of each seasonal component (a
   seasonal-naive forecast of the seasonal components).

The interval's half-width is ``q * sqrt(v_h)``. Its shape ``v_h`` is the ETS(A,Ad,N) variance
ratio (Hyndman, Koehler, Ord & Snyder 2008, *Forecasting with Exponential Smoothing*, ch. 6,
class 1): ``v_h = 1 + sum_{j=1}^{h-1} c_j^2``, ``c_j = alpha + beta*phi*(1-phi^j)/(1-phi)``.
Its scale ``q`` is split-conformal (Vovk, Gammerman & Shafer 2005; Stankeviciute et al. 2021
for time series): refit without the last longest cycle, forecast that cycle, and take the
``level`` quantile of ``|e_h| / sqrt(v_h)``. The model's own sigma is not used: MSTL's seasonal
components absorb part of the noise, and ``stlf``-style intervals cover far too little (about
60 % for a nominal 90 % on the test series). When the history cannot spare a cycle, ``q`` is
the ``level`` quantile of the in-sample seasonal-naive absolute errors, which errs wide.

Spikes are taken out before fitting, as R's ``forecast::tsclean`` does: a robust STL on the
shortest season flags points whose remainder lies more than 5 robust standard deviations
(1.4826 × MAD) from the median, and they are replaced by STL's trend plus season (repeated
while new points stand out). Its seasonal smoother spans 13 cycles, not STL's default 7, so
a spike near the end of the history is not taken for a change of the seasonal shape. Left in, a
spike of last week is copied into next week by the weekly component, and into every interval
width. A point is an outlier only if it is also at least
half again (or half) of STL's fit: a daily STL does not know weekends, and a quiet Sunday
must not be taken for one.

A season is used only when the history holds at least two of its cycles. When none fits,
the forecaster falls back to seasonal-naive on the longest season with one full cycle in the
history (plain naive when even that is short), with the interval from the in-sample
residual quantiles scaled by ``sqrt(k + 1)``, ``k = floor((h - 1) / m)`` (FPP3 §5.5).

Demand cannot be negative: mean and bounds are clipped at zero.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from statsmodels.tools.sm_exceptions import ConvergenceWarning
from statsmodels.tsa.exponential_smoothing.ets import ETSModel
from statsmodels.tsa.seasonal import MSTL, STL

FloatArray = NDArray[np.float64]

OUTLIER_MADS = 5.0
OUTLIER_SHARE = 0.5
# STL's seasonal smoother for cleaning, in cycles: wider than its default 7, so a spike near
# the end of the history is not taken for a change of the seasonal shape.
_CLEANING_SEASONAL = 13


@dataclass(frozen=True, eq=False)
class Forecast:
    """A demand forecast: the mean path and the bounds of its prediction interval."""

    mean: FloatArray
    lower: FloatArray
    upper: FloatArray


def _as_series(y: ArrayLike, name: str = "y") -> FloatArray:
    arr = np.asarray(y, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must hold only finite values")
    return arr


def seasonal_naive(y: ArrayLike, season: int, horizon: int) -> FloatArray:
    """Repeat the last full season of ``y`` for ``horizon`` steps: ``ŷ[n+h] = y[n+h-m*(k+1)]``."""
    arr = _as_series(y)
    if season < 1:
        raise ValueError(f"season must be at least 1, got {season}")
    if horizon < 0:
        raise ValueError(f"horizon must not be negative, got {horizon}")
    if arr.size < season:
        raise ValueError(f"need at least one season ({season} points), got {arr.size}")
    last = arr[arr.size - season :]
    return np.asarray(last[np.arange(horizon) % season], dtype=np.float64)


def mase(actual: ArrayLike, forecast: ArrayLike, insample: ArrayLike, season: int) -> float:
    """Mean absolute scaled error (Hyndman & Koehler 2006).

    ``MASE = mean|actual - forecast| / mean_t |y_t - y_{t-m}|`` over the in-sample history;
    below 1 means the forecast beats the in-sample seasonal-naive one.
    """
    a = _as_series(actual, "actual")
    f = _as_series(forecast, "forecast")
    history = _as_series(insample, "insample")
    if a.shape != f.shape or a.size == 0:
        raise ValueError(
            f"actual and forecast must be non-empty and alike, got {a.shape}, {f.shape}"
        )
    if season < 1 or history.size <= season:
        raise ValueError(f"insample needs more than one season ({season}), got {history.size}")
    scale = float(np.mean(np.abs(history[season:] - history[:-season])))
    if scale == 0.0:
        raise ValueError("insample seasonal-naive error is zero: MASE is undefined")
    return float(np.mean(np.abs(a - f))) / scale


def two_sided(upper_quantile: float) -> float:
    """The level of a symmetric interval whose upper bound is this quantile: 0.9 → 0.8."""
    return 2.0 * upper_quantile - 1.0


def holdout_mase(history: ArrayLike, **settings: Any) -> tuple[float, int] | None:
    """The forecaster's MASE on the last cycle of `history`, fitted on the rest, and the cycle.

    The held-out cycle is a week when three weeks are there (two to learn from), else a day
    when three days are; the scale is the seasonal-naive error of the same season in sample.
    None when the history is too short or the in-sample scale is zero.
    """
    arr = _as_series(history)
    season = 168 if arr.size >= 3 * 168 else 24 if arr.size >= 3 * 24 else None
    if season is None:
        return None
    past, held = arr[:-season], arr[-season:]
    forecast = DemandForecaster(**settings).fit(past).predict(season)
    try:
        return mase(held, forecast.mean, past, season), season
    except ValueError:
        return None


class DemandForecaster:
    """Forecast hourly demand with MSTL + damped ETS, falling back to seasonal-naive.

    >>> hours = np.arange(24 * 21)
    >>> y = 100 + 30 * np.sin(2 * np.pi * hours / 24) + 0.1 * hours
    >>> fc = DemandForecaster().fit(y).predict(48)
    >>> fc.mean.shape, bool(np.all(fc.lower <= fc.upper))
    ((48,), True)
    """

    def __init__(
        self, season_lengths: tuple[int, ...] = (24, 168), level: float = 0.9, robust: bool = True
    ) -> None:
        self.season_lengths = season_lengths
        self.level = level
        self.robust = robust

    def fit(self, y: ArrayLike) -> Self:
        """Learn the seasonal cycles and the adjusted series' model from history ``y``."""
        history = _as_series(y)
        if not 0.0 < self.level < 1.0:
            raise ValueError(f"level must lie strictly between 0 and 1, got {self.level}")
        if any(s < 2 for s in self.season_lengths):
            raise ValueError(f"season lengths must be at least 2, got {self.season_lengths}")
        if history.size < 2:
            raise ValueError(f"need at least 2 points of history, got {history.size}")
        seasons = tuple(sorted(s for s in set(self.season_lengths) if history.size > 2 * s))
        self.n_ = history.size
        self.seasons_ = seasons
        self.outliers_ = np.zeros(history.size, dtype=bool)
        if self.robust and seasons:
            history, self.outliers_ = clean_outliers(history, min(seasons))
        self.history_ = history
        if seasons:
            self._fit_decomposition(history, seasons)
        else:
            self._fit_seasonal_naive(history)
        return self

    def _fit_decomposition(self, history: FloatArray, seasons: tuple[int, ...]) -> None:
        self.method_ = "mstl-ets"
        self.cycles_, self.ets_ = _decompose_and_smooth(history, seasons)
        # Split-conformal calibration on the last longest cycle: refit without it, forecast it,
        # and scale the interval by the errors' |e_h| / sqrt(v_h) quantile.
        hold = max(seasons)
        if history.size - hold > 2 * min(seasons):
            train = history[: history.size - hold]
            inner = tuple(s for s in seasons if train.size > 2 * s)
            cycles, ets = _decompose_and_smooth(train, inner)
            held = history[train.size :]
            errors = held - _mean_path(cycles, ets, hold)
            scores = np.abs(errors) / np.sqrt(_variance_ratio(ets, hold))
            self.scale_ = float(np.quantile(scores, self.level))
        else:
            # Too short to hold a cycle out: the in-sample seasonal-naive errors, which err wide.
            m = min(seasons)
            self.scale_ = float(np.quantile(np.abs(history[m:] - history[:-m]), self.level))

    def _fit_seasonal_naive(self, history: FloatArray) -> None:
        self.method_ = "seasonal-naive"
        fitting = [s for s in self.season_lengths if s < history.size]
        self.naive_season_ = max(fitting) if fitting else 1
        m = self.naive_season_
        self.last_cycle_ = history[history.size - m :].copy()
        self.residuals_ = history[m:] - history[:-m]

    def predict(self, horizon: int) -> Forecast:
        """Forecast the next ``horizon`` points with a ``level`` prediction interval."""
        if horizon < 0:
            raise ValueError(f"horizon must not be negative, got {horizon}")
        if not hasattr(self, "method_"):
            raise RuntimeError("DemandForecaster is not fitted: call fit(y) first")
        steps = np.arange(horizon)
        if self.method_ == "mstl-ets":
            mean = _mean_path(self.cycles_, self.ets_, horizon)
            half = self.scale_ * np.sqrt(_variance_ratio(self.ets_, horizon))
            lower, upper = mean - half, mean + half
        else:
            m = self.naive_season_
            mean = self.last_cycle_[steps % m]
            tail = (1.0 - self.level) / 2.0
            lo, hi = np.quantile(self.residuals_, [tail, 1.0 - tail])
            scale = np.sqrt(steps // m + 1.0)
            lower, upper = mean + lo * scale, mean + hi * scale
        return Forecast(
            mean=np.maximum(mean, 0.0),
            lower=np.maximum(lower, 0.0),
            upper=np.maximum(upper, 0.0),
        )


def clean_outliers(y: ArrayLike, season: int) -> tuple[FloatArray, NDArray[np.bool_]]:
    """``y`` with its outliers replaced by a robust STL's trend + season, and where they were.

    A spike of several points can hide its tail in STL's trend; cleaning is repeated (three
    passes at most) until no new point stands out. Needs more than two cycles of `season`;
    shorter series come back unchanged.
    """
    cleaned = _as_series(y).copy()
    flagged = np.zeros(cleaned.size, dtype=bool)
    if cleaned.size <= 2 * season or season < 2:
        return cleaned, flagged
    for _ in range(3):
        fit: Any = STL(cleaned, period=season, seasonal=_CLEANING_SEASONAL, robust=True).fit()
        remainder = np.asarray(fit.resid, dtype=np.float64)
        centre = float(np.median(remainder))
        spread = 1.4826 * float(np.median(np.abs(remainder - centre)))
        fitted = cleaned - remainder
        far = np.abs(remainder - centre) > OUTLIER_MADS * spread
        large = np.abs(remainder) > OUTLIER_SHARE * np.abs(fitted)
        new = far & large & ~flagged
        if spread == 0.0 or not np.any(new):
            break
        cleaned[new] = np.maximum(cleaned[new] - remainder[new], 0.0)
        flagged |= new
    return cleaned, flagged


def _decompose_and_smooth(
    history: FloatArray, seasons: tuple[int, ...]
) -> tuple[list[FloatArray], Any]:
    """MSTL, then damped ETS on the adjusted series; return each season's last cycle and ETS."""
    decomposition: Any = MSTL(history, periods=seasons).fit()
    seasonal = np.asarray(decomposition.seasonal, dtype=np.float64).reshape(history.size, -1)
    cycles = [seasonal[history.size - s :, i].copy() for i, s in enumerate(seasons)]
    adjusted = history - seasonal.sum(axis=1)
    with warnings.catch_warnings():
        # The optimizer's "did not converge" leaves usable parameters; real errors still raise.
        warnings.simplefilter("ignore", ConvergenceWarning)
        ets = ETSModel(adjusted, error="add", trend="add", damped_trend=True).fit(disp=False)
    return cycles, ets


def _mean_path(cycles: list[FloatArray], ets: Any, horizon: int) -> FloatArray:
    """ETS forecast of the adjusted series plus each seasonal cycle repeated forward."""
    steps = np.arange(horizon)
    mean = np.asarray(ets.forecast(horizon), dtype=np.float64).reshape(horizon)
    for cycle in cycles:
        mean = mean + cycle[steps % cycle.size]
    return mean


def _variance_ratio(ets: Any, horizon: int) -> FloatArray:
    """ETS(A,Ad,N) ``var_h / sigma^2 = 1 + sum_{j<h} c_j^2`` (Hyndman et al. 2008, ch. 6)."""
    alpha = float(ets.smoothing_level)
    beta = float(ets.smoothing_trend)
    phi = float(ets.damping_trend)
    j = np.arange(1, max(horizon, 1))
    c = alpha + beta * phi * (1.0 - phi**j) / (1.0 - phi)
    return 1.0 + np.concatenate(([0.0], np.cumsum(c**2)))[:horizon]
