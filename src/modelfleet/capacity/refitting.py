"""A forecaster for trace replay: `DemandForecaster`, refitted on a schedule as history grows."""

from __future__ import annotations

import numpy as np

from modelfleet.capacity.forecast import DemandForecaster, Forecast
from modelfleet.capacity.replay import DAY_S, seasonal_naive_upper


class RefittingForecaster:
    """`replay`'s forecaster: a `DemandForecaster` refitted every `refit_every` intervals.

    Between refits the fitted mean path is read further ahead, shifted by the latest error
    (the last observed interval minus its forecast mean), and given the interval width of a
    fresh fit (the first `h` steps'): what a refit would roughly do, at the cost of none.
    Before `warm_days` days of history it is `seasonal_naive_upper`.
    """

    def __init__(
        self, interval_s: float, *, refit_every: int = 24, level: float = 0.9, warm_days: int = 2
    ) -> None:
        self.interval_s = interval_s
        self.refit_every = refit_every
        self.level = level
        self.warm_days = warm_days
        self.forecast_: Forecast | None = None
        self.fitted_on_ = 0

    def __call__(self, history: np.ndarray, h: int) -> np.ndarray:
        """The upper bound of each of the next `h` intervals after `history`."""
        per_day = max(1, round(DAY_S / self.interval_s))
        n = len(history)
        if n < self.warm_days * per_day:
            return seasonal_naive_upper(self.interval_s)(history, h)
        if self.forecast_ is None or n - self.fitted_on_ >= self.refit_every:
            model = DemandForecaster((per_day, 7 * per_day), level=self.level).fit(history)
            self.forecast_ = model.predict(self.refit_every + h)
            self.fitted_on_ = n
        ahead = n - self.fitted_on_
        mean, width = self.forecast_.mean, self.forecast_.upper - self.forecast_.mean
        shift = float(history[-1] - mean[ahead - 1]) if ahead > 0 else 0.0
        return np.maximum(mean[ahead : ahead + h] + shift + width[:h], 0.0)
