"""Demand over the next few intervals, for scaling: a seasonal forecast, corrected by what was
just seen, bounded by its own recent errors.

A scaling decision needs the load of the next start-up lead, often at a finer step than the
hourly seasonal model's. `OnlineForecaster` has three parts:

1. **A seasonal base.** `DemandForecaster` (MSTL + damped ETS, spikes cleaned) is fitted on
   the history summed into hours, and refitted every `refit_every` seconds. Its hourly means
   sit at the hours' centres and are interpolated linearly to the trace's step, so a morning
   ramp is followed within the hour instead of as a staircase.
2. **A level correction.** The forecast is the base times an exponentially weighted mean of
   ``actual / base`` over the intervals just seen. Demand running 20 % above its seasonal
   pattern today is forecast 20 % above it next. How much weight the newest interval gets
   is chosen, as exponential smoothing chooses its alpha, from the data: a mean is kept for
   each of `alphas`, and the one whose one-step forecasts erred least (mean absolute
   relative error over the window) is used. Noisy minutes want a small alpha; hours whose
   level wanders, a large one.
3. **An upper bound from its own errors.** This is split-conformal on a sliding window, as
   adaptive conformal inference does (Gibbs & Candès 2021, "Adaptive Conformal Inference
   Under Distribution Shift"). For h steps ahead, take the `level` quantile of the relative
   errors ``actual / forecast − 1`` of the last `window` forecasts made h steps ahead; then
   ``upper = forecast × (1 + quantile)``. The bound is calibrated on this stream's own
   behaviour, whatever the model assumed. Errors are measured against the uncleaned
   demand, so spikes widen it only as often as they happen.

Until the base is fitted (in a replay, after `warm` seconds of history) the forecast is the
last value; until the window holds `min_errors` errors for a step, the bound is the forecast
times ``1 + initial_margin``.

Intervals are numbered by the caller: positions in a trace, or minutes since the epoch.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from modelfleet.capacity.forecast import DemandForecaster

HOUR_S = 3600.0
DAY_S = 86_400.0
# Hours of history placed before the base's first forecast hour, so an interval just past an
# hour boundary interpolates between history and forecast rather than clamping.
_LEAD_IN_HOURS = 3
# The base never falls below this share of the last day's mean: a near-zero base would turn
# the first request of the morning into an enormous ratio.
_BASE_FLOOR = 0.05
_HISTORY_DAYS = 28


@dataclass(frozen=True)
class Outlook:
    """The forecast of the next intervals: mean and upper bound, requests per interval."""

    mean: np.ndarray
    upper: np.ndarray


class OnlineForecaster:
    """Seasonal base × level correction, with a self-calibrated upper bound; see the module."""

    def __init__(
        self,
        interval_s: float,
        *,
        level: float = 0.9,
        alphas: tuple[float, ...] = (0.2, 0.5, 0.8),
        window_s: float = 7 * DAY_S,
        refit_every_s: float = DAY_S,
        warm_s: float = 2 * DAY_S,
        initial_margin: float = 0.3,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
        if not alphas or not all(0.0 < a <= 1.0 for a in alphas):
            raise ValueError(f"alphas must lie in (0, 1], got {alphas}")
        self.interval_s = interval_s
        self.level = level
        self.alphas = alphas
        self.initial_margin = initial_margin
        self.per_hour = max(1, round(HOUR_S / interval_s))
        self.per_day = max(1, round(DAY_S / interval_s))
        self.window = max(1, round(window_s / interval_s))
        self.refit_every = max(1, round(refit_every_s / interval_s))
        self.warm = max(1, round(warm_s / interval_s))
        self.min_errors = max(24, 2 * self.per_hour)
        self.seen_ = 0
        self.next_ = 0
        self.ratios_ = dict.fromkeys(alphas, 1.0)
        self.misses_: dict[float, deque[float]] = {a: deque(maxlen=self.window) for a in alphas}
        self.alpha_ = alphas[len(alphas) // 2]
        self.base_: np.ndarray | None = None
        self.base_start_ = 0
        self.fitted_at_: int | None = None
        self.recent_: deque[tuple[int, float]] = deque(maxlen=2 * self.per_hour)
        self.errors_: dict[int, deque[float]] = {}
        self.pending_: dict[int, list[tuple[int, float]]] = {}
        self.quantiles_: dict[int, float] = {}
        self.quantiles_at_ = -1

    # -- learning ---------------------------------------------------------------------------

    def observe(self, t: int, requests: float) -> None:
        """Interval `t` is over and held `requests`: score the forecasts made for it."""
        for h, forecast in self.pending_.pop(t, []):
            if forecast > 0:
                errors = self.errors_.setdefault(h, deque(maxlen=self.window))
                errors.append(requests / forecast - 1.0)
        for old in [k for k in self.pending_ if k < t]:
            del self.pending_[old]  # forecasts for intervals that were never observed
        if self.base_ is not None:
            base = self._base(t)
            for a, ratio in self.ratios_.items():
                if ratio > 0:
                    self.misses_[a].append(abs(requests / (base * ratio) - 1.0))
                self.ratios_[a] = ratio + a * (requests / base - ratio)
        self.recent_.append((t, requests))
        self.seen_ += 1
        self.next_ = t + 1

    def refit(self, hourly: np.ndarray, end: int) -> None:
        """Fit the seasonal base on requests per hour whose last hour ends at interval `end`."""
        hours = np.asarray(hourly, dtype=np.float64)[-_HISTORY_DAYS * 24 :]
        if hours.size >= 2:
            self.rebase(DemandForecaster((24, 168)).fit(hours), end)

    def rebase(self, model: DemandForecaster, end: int) -> None:
        """Take the seasonal base from `model`, fitted on hours whose last ends at `end` (the
        capacity controller's hourly forecast, so that the hour's fit is done once)."""
        forecast = model.predict(48)
        cleaned = model.history_
        b = self.per_hour
        lead_in = cleaned[-_LEAD_IN_HOURS:]
        values = np.concatenate((lead_in, forecast.mean)) / b
        centres = (np.arange(values.size) - lead_in.size + 0.5) * b
        offsets = np.arange(-lead_in.size * b, forecast.mean.size * b)
        floor = _BASE_FLOOR * float(np.mean(cleaned[-24:])) / b
        self.base_ = np.maximum(np.interp(offsets + 0.5, centres, values), max(floor, 1e-9))
        self.base_start_ = end - lead_in.size * b
        self.fitted_at_ = end
        # Re-anchor the level on the new base: the old ratios were relative to the old one.
        for a in self.alphas:
            ratio = None
            for t, requests in self.recent_:
                r = requests / self._base(t)
                ratio = r if ratio is None else ratio + a * (r - ratio)
            self.ratios_[a] = 1.0 if ratio is None else ratio

    def _base(self, t: int) -> float:
        assert self.base_ is not None
        k = min(max(t - self.base_start_, 0), self.base_.size - 1)
        return float(self.base_[k])

    # -- forecasting ------------------------------------------------------------------------

    def outlook(self, t: int, h: int) -> Outlook:
        """Mean and upper bound of intervals t … t + h − 1 (t is the next interval)."""
        if self.base_ is None:
            last = self.recent_[-1][1] if self.recent_ else 0.0
            mean = np.full(h, last)
            return Outlook(mean, mean * (1.0 + self.initial_margin))
        if self.quantiles_at_ != t // self.per_hour:
            # Quantiles move slowly: recomputing them once an hour is enough and keeps a
            # minute-level replay fast.
            self.quantiles_at_ = t // self.per_hour
            self.alpha_ = min(
                self.alphas,
                key=lambda a: (
                    sum(self.misses_[a]) / len(self.misses_[a]) if self.misses_[a] else float("inf")
                ),
            )
            self.quantiles_ = {
                k: float(np.quantile(np.fromiter(e, float), self.level))
                for k, e in self.errors_.items()
                if len(e) >= self.min_errors
            }
        ratio = self.ratios_[self.alpha_]
        mean = np.array([self._base(t + k) * ratio for k in range(h)])
        upper = np.empty(h)
        for k in range(h):
            self.pending_.setdefault(t + k, []).append((k + 1, float(mean[k])))
            margin = self.quantiles_.get(k + 1, self.initial_margin)
            upper[k] = mean[k] * (1.0 + margin)
        return Outlook(np.maximum(mean, 0.0), np.maximum(upper, 0.0))

    # -- trace replay -----------------------------------------------------------------------

    def __call__(self, history: np.ndarray, h: int) -> np.ndarray:
        """`replay`'s forecaster: the upper bounds of the h intervals after `history`."""
        n = len(history)
        for t in range(self.next_, n):
            self.observe(t, float(history[t]))
        due = self.fitted_at_ is None or n - self.fitted_at_ >= self.refit_every
        if n >= self.warm and due:
            whole = (n // self.per_hour) * self.per_hour
            hours = np.asarray(history[n - whole :], dtype=np.float64)
            self.refit(hours.reshape(-1, self.per_hour).sum(axis=1), n)
        return self.outlook(n, h).upper
