"""The scaling forecaster: follows ramps and level shifts, and its bound covers what it says."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from modelfleet.capacity.online import OnlineForecaster

STEP = 300.0  # 5-minute intervals
PER_DAY = 288


def business_days(days: int, seed: int, noise: float = 0.05) -> np.ndarray:
    """Requests per 5 minutes: a night low, a morning ramp, an evening fall, weekends lower."""
    rng = np.random.default_rng(seed)
    t = np.arange(days * PER_DAY) * STEP
    hour = (t % 86_400) / 3600
    weekend = np.where((t // 86_400) % 7 >= 5, 0.6, 1.0)
    daily = 0.3 + 1.0 / (1 + np.exp(-(hour - 8) / 0.5)) - 1.0 / (1 + np.exp(-(hour - 18) / 0.8))
    return 1000.0 * STEP * daily * weekend * rng.lognormal(0.0, noise, t.size)


def replay_forecasts(y: np.ndarray, forecaster: OnlineForecaster, start: int) -> np.ndarray:
    """One-step-ahead upper bounds for y[start:], fed the history as it happens."""
    return np.array([forecaster(y[:i], 1)[0] for i in range(start, y.size)])


def test_the_upper_bound_covers_about_its_level_of_the_next_intervals() -> None:
    y = business_days(21, seed=3)
    start = 14 * PER_DAY
    upper = replay_forecasts(y, OnlineForecaster(STEP, level=0.9), 2 * PER_DAY)
    covered = np.mean(y[start:] <= upper[start - 2 * PER_DAY :])
    assert 0.85 <= covered <= 0.95


def test_a_higher_level_gives_a_higher_bound_and_more_coverage() -> None:
    y = business_days(12, seed=4)
    start = 10 * PER_DAY
    low = replay_forecasts(y, OnlineForecaster(STEP, level=0.8), start)
    high = replay_forecasts(y, OnlineForecaster(STEP, level=0.97), start)
    assert np.all(high >= low)
    assert np.mean(y[start:] <= high) > np.mean(y[start:] <= low)


def test_the_morning_ramp_is_forecast_within_the_hour_not_as_a_staircase() -> None:
    y = business_days(17, seed=5, noise=0.01)
    forecaster = OnlineForecaster(STEP)
    for i in range(2 * PER_DAY, 16 * PER_DAY):  # past two weeks: the weekly season is learnt
        forecaster(y[:i], 1)
    day = 16 * PER_DAY  # a Wednesday
    ramp = range(day + 7 * 12, day + 9 * 12)  # 07:00 to 09:00, rising 3x
    errors = []
    for i in ramp:
        mean = forecaster.outlook(i, 1).mean[0]
        forecaster.observe(i, float(y[i]))
        errors.append(abs(mean / y[i] - 1))
    assert np.mean(errors) < 0.1


def test_a_lasting_level_shift_is_followed_within_a_few_intervals() -> None:
    y = business_days(10, seed=6, noise=0.01)
    y[9 * PER_DAY :] *= 1.5
    forecaster = OnlineForecaster(STEP)
    for i in range(2 * PER_DAY, 9 * PER_DAY + 6):
        forecaster(y[:i], 1)
    mean = forecaster.outlook(9 * PER_DAY + 6, 1).mean[0]
    assert mean == pytest.approx(y[9 * PER_DAY + 6], rel=0.1)


def test_the_base_is_refitted_once_a_day() -> None:
    y = business_days(5, seed=7)
    forecaster = OnlineForecaster(STEP)
    fits = set()
    for i in range(PER_DAY, 5 * PER_DAY):
        forecaster(y[:i], 1)
        fits.add(forecaster.fitted_at_)
    assert fits == {None, 2 * PER_DAY, 3 * PER_DAY, 4 * PER_DAY}


def test_before_the_base_is_fitted_the_bound_is_the_last_value_plus_the_margin() -> None:
    forecaster = OnlineForecaster(STEP, initial_margin=0.3)
    assert forecaster(np.array([100.0, 200.0]), 2).tolist() == pytest.approx([260.0, 260.0])
    assert OnlineForecaster(STEP)(np.array([]), 1).tolist() == [0.0]


@pytest.mark.parametrize(
    "kwargs",
    [{"interval_s": 0.0}, {"level": 1.0}, {"level": 0.0}, {"alphas": (0.0,)}, {"alphas": ()}],
)
def test_bad_settings_are_refused(kwargs: dict[str, Any]) -> None:
    settings: dict[str, Any] = {"interval_s": STEP, **kwargs}
    interval = settings.pop("interval_s")
    with pytest.raises(ValueError):
        OnlineForecaster(interval, **settings)
