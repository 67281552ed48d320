"""Streaming anomaly detection on one metric stream (request rate, error rate, latency, ...).

Role: the `Detector` of the monitors (DESIGN.md, "Contracts"): one point at a time,
`update(t, x) -> score` in [0, 1], `alarm_` for whether that point raised an alarm, and a
state that serializes to JSON so that a restart loses nothing. `step(t, x)` gives the whole
`Verdict` (score, alarm, expected value, the band a point must leave to alarm, p-value);
`peek(t, x)` judges a provisional point (a minute still filling) without learning from it.

    >>> from datetime import UTC, datetime, timedelta
    >>> detector = SeasonalDetector(direction="up", alpha=1e-5)
    >>> start = datetime(2026, 11, 2, tzinfo=UTC)
    >>> for minute in range(600):  # ten quiet hours: 100 requests a minute, give or take
    ...     score = detector.update(start + timedelta(minutes=minute), 100.0 + minute % 7)
    >>> detector.alarm_
    False
    >>> verdict = detector.step(start + timedelta(minutes=600), 180.0)
    >>> verdict.alarm, verdict.score > 0.5, round(verdict.expected)
    (True, True, 103)
    >>> detector.step(start + timedelta(minutes=601), 40.0).alarm  # a drop: not bad for "up"
    False

The model. A point x at time t is forecast as a level plus a daily and a weekly profile,

    x_t = level + daily(t mod day) + weekly(t mod week) + e_t

additive Holt-Winters exponential smoothing with two seasons (Holt 1957, Winters 1960; two
seasons as in Taylor, "Short-term electricity demand forecasting using double seasonal
exponential smoothing", J. Oper. Res. Soc. 54, 2003), made robust as Gelper, Fried and Croux
do ("Robust forecasting with exponential and Holt-Winters smoothing", J. Forecasting 29, 2010):
each residual is clipped at 3 scales before anything learns from it (Huber's psi), and the
scale is an exponentially weighted mean absolute residual, itself of clipped residuals
(sigma = sqrt(pi / 2) * E|e| for normal e).

- Seasons are wall time: the position within the day and the week of t's own clock (UTC for
  epoch seconds and naive datetimes). The sampling interval is the median of the first 8 gaps;
  a profile has one slot per point of its period, at most 288 a day and 336 a week, and is
  read by linear interpolation between slots, so irregular and missing points are fine. A
  slot's value is the mean of what it has seen, shrunk towards 0 by one pseudo-observation,
  until it forgets at 15 % a day (daily) and 30 % a week (weekly).
- Two levels: a slow one (time constant one day), which anchors the seasons, and a fast one
  (weight 0.25 per point), which follows wandering series. Six forecasts (each level with no
  season, the daily, or both) keep their own scale, and each point is judged against the one
  of smallest scale (switching at a 5 % margin): a series without seasons, or shorter than
  them, is judged by a level alone; a wandering one by its recent values.

Two tests, each one-sided in both directions (P-values from `modelfleet.monitors.tail`: the
stream's own tail, a generalized Pareto over z = 2, never lighter than the normal's):

- spike: z = (x - forecast) / scale, against the best forecast;
- level shift: an EWMA control chart (Roberts 1959; Lucas and Saccucci 1990) of z clipped at
  +-4, weight 1/8, against the best of the slow forecasts, standardized by its own learned
  scale (never below its value for independent z, sqrt(1/15)), so autocorrelated residuals
  do not read as shifts. A shift of 2 scales is seen within about 5 points, 1.5 within 9.

The p-value of a point is the smallest of the tests in the bad direction, times their number
(Bonferroni); it alarms when that is below alpha, the chance that a normal point alarms, and
its score is -ln p / (-ln p - ln alpha): 0.5 at the alarm threshold, 1 as p -> 0. Until
`warm_up` points have been learned, the score is 0 and nothing alarms.

What it learns from. A point that either test finds significant in either direction (whatever
`direction` is) teaches the seasons, the scales and the tails nothing: a spike in the history
does not inflate the baseline or the scale. The levels do learn it, clipped. After
`relearn_after` such points in a row the change is taken as the new normal: the slow level
jumps by the mean residual of the last few points and the scales widen to their spread, so a
permanent change alarms for a while, then not. The scale never goes below the floor
max(min_scale, min_relative_scale * |forecast|, the data's quantum (smallest change seen:
1 for counts)), so quantization noise and constant series do not alarm.

Cost: O(1) time per point; memory is the two profiles (at most 624 floats and their weights).
"""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, Protocol, Self, TextIO, TypeAlias, cast

from modelfleet.monitors.tail import new_tail, tail_isf, tail_learn, tail_sf

Timestamp: TypeAlias = datetime | float | int
Direction: TypeAlias = Literal["up", "down", "both"]
JSON: TypeAlias = str | int | float | bool | None | list["JSON"] | dict[str, "JSON"]

BAD_DIRECTION: Final[dict[str, Direction]] = {
    "request_rate": "both",  # a drop to zero is an outage, a spike is load
    "error_rate": "up",
    "latency_p50": "up",
    "latency_p99": "up",
    "confidence": "down",
    "drift_score": "up",
}

_DAY: Final = 86400.0
_WEEK: Final = 7 * _DAY
_MONDAY: Final = 3 * _DAY  # the epoch began on a Thursday; weekly slots start on Monday 00:00
_GAPS: Final = 8  # gaps whose median is the sampling interval
_DAILY_SLOTS: Final = 288
_WEEKLY_SLOTS: Final = 336
_DAILY_FORGET: Final = 0.15  # share of a daily slot forgotten per day
_WEEKLY_FORGET: Final = 0.30  # share of a weekly slot forgotten per week
_SLOW_TIME: Final = _DAY  # time constant of the slow level
_FAST_RATE: Final = 0.25
_SCALE_MEMORY: Final = 200.0  # points
_SHIFT_WEIGHT: Final = 1.0 / 8.0
_SHIFT_CLIP: Final = 4.0
_SHIFT_MEMORY: Final = 500.0  # points, for the scale of the shift statistic
_SHIFT_FLOOR: Final = math.sqrt(_SHIFT_WEIGHT / (2.0 - _SHIFT_WEIGHT))
_CLIP: Final = 3.0  # residuals are clipped at this many scales before learning
_MARGIN: Final = 0.95  # a forecast replaces the one in use when its scale is 5 % smaller
_ABS_TO_SD: Final = math.sqrt(math.pi / 2.0)
_TINY: Final = 1e-12
_PRIOR: Final = 1.0  # pseudo-observations of 0 in each seasonal slot
_SETTLE: Final = 20  # points before residuals are clipped, judged significant, or in the tails


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the detector says of one point."""

    score: float  # in [0, 1]; 0.5 at the alarm threshold; 0 when missing or warming up
    alarm: bool
    p_value: float  # of the most significant test in the bad direction, Bonferroni-corrected
    expected: float  # the forecast (nan before the first point)
    lower: float  # a point below this alarms on its own (-inf when down is not bad)
    upper: float  # a point above this alarms on its own (inf when up is not bad)
    z: float  # (x - expected) / scale
    shift: float  # the level-shift statistic, in its own scales


class Detector(Protocol):
    """A streaming detector: scores one point at a time; its state survives a restart."""

    @property
    def alarm_(self) -> bool:
        """Whether the last point given to `update` raised an alarm."""
        ...

    def update(self, t: Timestamp, x: float | None) -> float:
        """Score the point (t, x) in [0, 1] and learn from it."""
        ...

    def state(self) -> dict[str, JSON]:
        """Settings and learned state, as JSON-serializable data."""
        ...

    @classmethod
    def from_state(cls, state: Mapping[str, JSON]) -> Self:
        """The detector whose `state()` this was, to go on exactly where it stopped."""
        ...


def _seconds(t: Timestamp) -> tuple[float, float]:
    """(epoch seconds, wall-clock seconds) of t: its own clock's, UTC when naive or a number."""
    if isinstance(t, datetime):
        if t.tzinfo is None:
            epoch = t.replace(tzinfo=UTC).timestamp()
            return epoch, epoch
        offset = t.utcoffset()
        epoch = t.timestamp()
        return epoch, epoch + (offset.total_seconds() if offset is not None else 0.0)
    epoch = float(t)
    return epoch, epoch


def _learn_profile(
    values: list[float],
    weights: list[float],
    slot: int,
    residual: float,
    rate: float,
    prior: float,
) -> float:
    """Move a slot towards its value + residual: a mean with `prior` pseudo-observations of
    0, until its weight falls to `rate`. Returns the slot's new value."""
    weights[slot] += 1.0
    values[slot] += max(rate, 1.0 / (weights[slot] + prior)) * residual
    return values[slot]


class SeasonalDetector:
    """Robust seasonal (daily, weekly) forecast; spikes and level shifts tested on its residuals.

    Settings only; everything learned ends in `_`. See the module's docstring for the model.
    """

    def __init__(
        self,
        direction: Direction = "both",
        *,
        alpha: float = 1e-5,
        warm_up: int = 100,
        min_scale: float = 0.0,
        min_relative_scale: float = 1e-3,
        relearn_after: int = 60,
        daily: bool = True,
        weekly: bool = True,
    ) -> None:
        if direction not in ("up", "down", "both"):
            raise ValueError(f"direction must be 'up', 'down' or 'both', not {direction!r}")
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), not {alpha}")
        if warm_up < 0 or relearn_after < 1:
            raise ValueError("warm_up must be >= 0 and relearn_after >= 1")
        if min_scale < 0.0 or min_relative_scale < 0.0:
            raise ValueError("min_scale and min_relative_scale must be >= 0")
        self.direction: Direction = direction
        self.alpha = alpha
        self.warm_up = warm_up
        self.min_scale = min_scale
        self.min_relative_scale = min_relative_scale
        self.relearn_after = relearn_after
        self.daily = daily
        self.weekly = weekly
        self.n_ = 0  # points learned
        self.start_: float | None = None  # epoch seconds of the first point learned
        self.t_: float | None = None  # epoch seconds of the last point learned
        self.x_: float | None = None  # its value
        self.gaps_: list[float] = []  # the first gaps, until the interval is known
        self.interval_: float | None = None  # seconds
        self.quantum_: float | None = None  # the smallest change seen between two points
        self.slow_rate_ = 0.0  # weight of a point in the slow level (0: a running mean)
        self.level_ = 0.0  # slow level
        self.fast_ = 0.0  # fast level
        self.daily_: list[float] = []
        self.daily_weight_: list[float] = []
        self.daily_rate_ = 0.0  # least weight of a point in its slot
        self.centred_ = False  # whether the first day is over (until then: raw slot means)
        self.weekly_: list[float] = []
        self.weekly_weight_: list[float] = []
        self.weekly_rate_ = 0.0
        self.scales_ = [0.0] * 6  # mean |residual| of: slow, +daily, +weekly; fast, ...
        self.spike_model_ = 0  # which forecast the spike test uses
        self.shift_model_ = 0  # which slow forecast the shift test uses
        self.shift_ = 0.0  # EWMA of the clipped z of the shift model
        self.shift_scale_ = 0.0  # mean |shift_|
        self.shift_mean_ = 0.0  # EWMA of the shift model's raw residual, and of its square
        self.shift_square_ = 0.0
        self.run_ = 0  # significant points in a row
        self.tails_ = [new_tail() for _ in range(4)]  # spike up, down; shift up, down
        self.alarm_ = False

    # -- the Detector contract -------------------------------------------------------------

    def update(self, t: Timestamp, x: float | None) -> float:
        """Score the point (t, x) in [0, 1] and learn from it; `alarm_` says if it alarmed.

        x None or NaN is a missing point: score 0, nothing learned.
        """
        verdict = self._judge(t, x, learn=True, bounds=False)
        self.alarm_ = verdict.alarm
        return verdict.score

    def step(self, t: Timestamp, x: float | None) -> Verdict:
        """Judge the point (t, x) and learn from it."""
        verdict = self._judge(t, x, learn=True, bounds=True)
        self.alarm_ = verdict.alarm
        return verdict

    def peek(self, t: Timestamp, x: float | None) -> Verdict:
        """Judge a provisional point (t, x) without learning from it or changing `alarm_`."""
        return self._judge(t, x, learn=False, bounds=True)

    def state(self) -> dict[str, JSON]:
        """Settings and learned state, as JSON-serializable data (see `from_state`)."""
        settings: dict[str, JSON] = {
            "direction": self.direction,
            "alpha": self.alpha,
            "warm_up": self.warm_up,
            "min_scale": self.min_scale,
            "min_relative_scale": self.min_relative_scale,
            "relearn_after": self.relearn_after,
            "daily": self.daily,
            "weekly": self.weekly,
        }
        learned: dict[str, JSON] = {}
        for name, value in vars(self).items():
            if name.endswith("_") and not name.startswith("_"):
                learned[name] = cast(JSON, _copy(value))
        return {"kind": "seasonal", "version": 1, "settings": settings, "learned": learned}

    @classmethod
    def from_state(cls, state: Mapping[str, JSON]) -> Self:
        """The detector whose `state()` this was: it goes on exactly where that one stopped."""
        if state.get("kind") != "seasonal" or state.get("version") != 1:
            raise ValueError("not the state of a SeasonalDetector (kind 'seasonal', version 1)")
        settings = state["settings"]
        learned = state["learned"]
        if not isinstance(settings, dict) or not isinstance(learned, dict):
            raise ValueError("a SeasonalDetector's state has 'settings' and 'learned' objects")
        detector = cls(**cast(dict[str, Any], settings))
        expected = set(vars(detector))
        for name, value in learned.items():
            if name not in expected:
                raise ValueError(f"unknown field {name!r} in a SeasonalDetector's state")
            setattr(detector, name, _copy(value))
        return detector

    # -- the model ---------------------------------------------------------------------------

    def _floor(self, expected: float) -> float:
        """The least scale (standard deviation) a residual is measured in."""
        return max(
            self.min_scale,
            self.min_relative_scale * abs(expected),
            self.quantum_ or 0.0,
            _TINY * (1.0 + abs(expected)),
        )

    def _judge(self, t: Timestamp, x: float | None, *, learn: bool, bounds: bool) -> Verdict:
        epoch, wall = _seconds(t)
        daily = both = 0.0
        day_at = week_at = 0
        if self.daily_:
            day_at = min(int((wall % _DAY) / _DAY * len(self.daily_)), len(self.daily_) - 1)
            if self.centred_:
                daily = both = self.daily_[day_at]
        if self.weekly_:
            week_at = int(((wall - _MONDAY) % _WEEK) / _WEEK * len(self.weekly_))
            week_at = min(week_at, len(self.weekly_) - 1)
            both += _weekly(self.weekly_, self.weekly_weight_, week_at)
        slow, fast = self.level_, self.fast_
        forecasts = (slow, slow + daily, slow + both, fast, fast + daily, fast + both)
        expected = forecasts[self.spike_model_] if self.n_ else math.nan
        if x is not None:
            x = float(x)
        if x is None or not math.isfinite(x) or self.n_ == 0:
            if x is not None and math.isfinite(x) and learn:
                self._first(epoch, x)
            return Verdict(0.0, False, 1.0, expected, -math.inf, math.inf, 0.0, 0.0)

        floor = self._floor(expected)
        scales = self.scales_
        sigma = max(scales[self.spike_model_] * _ABS_TO_SD, floor)
        z = (x - expected) / sigma
        shift_expected = forecasts[self.shift_model_]
        shift_sigma = max(scales[self.shift_model_] * _ABS_TO_SD, floor)
        shift_z = (x - shift_expected) / shift_sigma
        clipped = min(max(shift_z, -_SHIFT_CLIP), _SHIFT_CLIP)
        shift = self.shift_ + _SHIFT_WEIGHT * (clipped - self.shift_)
        shift_scale = max(self.shift_scale_ * _ABS_TO_SD, _SHIFT_FLOOR)
        w = shift / shift_scale
        tails = self.tails_
        p_up, p_down = tail_sf(tails[0], z), tail_sf(tails[1], -z)
        q_up, q_down = tail_sf(tails[2], w), tail_sf(tails[3], -w)
        spike_significant = 4.0 * min(p_up, p_down) < self.alpha
        shift_significant = 4.0 * min(q_up, q_down) < self.alpha
        if self.direction == "up":
            p = min(1.0, 2.0 * min(p_up, q_up))
        elif self.direction == "down":
            p = min(1.0, 2.0 * min(p_down, q_down))
        else:
            p = min(1.0, 4.0 * min(p_up, p_down, q_up, q_down))
        warm = self.n_ >= self.warm_up
        alarm = warm and p < self.alpha
        if not warm:
            score = 0.0
        elif p <= 0.0:
            score = 1.0
        elif p >= 1.0:
            score = 0.0
        else:
            surprise = -math.log(p)
            score = surprise / (surprise - math.log(self.alpha))

        lower, upper = -math.inf, math.inf
        if bounds:
            tests = 4.0 if self.direction == "both" else 2.0
            if self.direction != "down":
                upper = expected + tail_isf(tails[0], self.alpha / tests) * sigma
            if self.direction != "up":
                lower = expected - tail_isf(tails[1], self.alpha / tests) * sigma
        verdict = Verdict(score, alarm, p, expected, lower, upper, z, w)
        if learn:
            significant = (spike_significant or shift_significant) and self.n_ >= _SETTLE
            self._learn(epoch, x, forecasts, floor, z, shift, w, day_at, week_at, significant)
        return verdict

    def _first(self, epoch: float, x: float) -> None:
        self.level_ = self.fast_ = x
        self.start_ = self.t_ = epoch
        self.x_ = x
        self.n_ = 1

    def _learn(
        self,
        epoch: float,
        x: float,
        forecasts: tuple[float, ...],
        floor: float,
        z: float,
        shift: float,
        w: float,
        day_at: int,
        week_at: int,
        significant: bool,
    ) -> None:
        n = self.n_
        self._learn_time(epoch, x)
        scales = self.scales_
        clip_floor = floor / _ABS_TO_SD

        # The levels learn every point, clipped at _CLIP scales of their full forecast.
        slow_residual = x - forecasts[2]
        fast_residual = x - forecasts[5]
        if n >= _SETTLE:
            bound = _CLIP * _ABS_TO_SD * max(scales[2], clip_floor)
            slow_residual = min(max(slow_residual, -bound), bound)
            bound = _CLIP * _ABS_TO_SD * max(scales[5], clip_floor)
            fast_residual = min(max(fast_residual, -bound), bound)
        self.level_ += max(self.slow_rate_, 1.0 / (n + 1)) * slow_residual
        self.fast_ += max(_FAST_RATE, 1.0 / (n + 1)) * fast_residual

        # The shift statistic and its scale learn every point: residuals that wander must
        # widen it, or they would read as shifts.
        self.shift_ = shift
        rate = max(1.0 / _SHIFT_MEMORY, 1.0 / n)
        size = abs(shift)
        if n >= _SETTLE:
            size = min(size, _CLIP * max(self.shift_scale_, _SHIFT_FLOOR / _ABS_TO_SD))
        self.shift_scale_ += rate * (size - self.shift_scale_)
        raw = x - forecasts[self.shift_model_]
        self.shift_mean_ += _SHIFT_WEIGHT * (raw - self.shift_mean_)
        self.shift_square_ += _SHIFT_WEIGHT * (raw * raw - self.shift_square_)

        self._learn_seasons(epoch, x, clip_floor, day_at, week_at)
        self._learn_scales(x, forecasts, clip_floor, significant)
        if significant:
            self.run_ += 1
            if self.run_ >= self.relearn_after:
                self._relearn()
        else:
            self.run_ = 0
            if n >= _SETTLE:
                tails = self.tails_
                tail_learn(tails[0], z)
                tail_learn(tails[1], -z)
                tail_learn(tails[2], w)
                tail_learn(tails[3], -w)
        self.n_ = n + 1

    def _learn_time(self, epoch: float, x: float) -> None:
        if self.t_ is not None and self.interval_ is None and epoch > self.t_:
            self.gaps_.append(epoch - self.t_)
            if len(self.gaps_) >= _GAPS:
                self._allocate(statistics.median(self.gaps_))
        if self.x_ is not None and x != self.x_:
            change = abs(x - self.x_)
            if self.quantum_ is None or change < self.quantum_:
                self.quantum_ = change
        self.t_, self.x_ = epoch, x

    def _allocate(self, interval: float) -> None:
        """Size the profiles and the rates, once the sampling interval is known."""
        self.interval_ = interval
        self.gaps_ = []
        self.slow_rate_ = min(0.1, interval / _SLOW_TIME)
        per_day = _DAY / interval
        if self.daily and per_day >= 4.0:
            slots = int(min(_DAILY_SLOTS, per_day))
            self.daily_ = [0.0] * slots
            self.daily_weight_ = [0.0] * slots
            self.daily_rate_ = 1.0 - (1.0 - _DAILY_FORGET) ** (slots / per_day)
        per_week = _WEEK / interval
        if self.weekly and per_week >= 7.0:
            slots = int(min(_WEEKLY_SLOTS, per_week))
            self.weekly_ = [0.0] * slots
            self.weekly_weight_ = [0.0] * slots
            self.weekly_rate_ = 1.0 - (1.0 - _WEEKLY_FORGET) ** (slots / per_week)

    def _learn_scales(
        self, x: float, forecasts: tuple[float, ...], clip_floor: float, significant: bool
    ) -> None:
        """Each forecast's scale learns its residual, clipped; from a significant point, only
        the forecasts that explain it (residual within the clip) learn, so that an anomaly
        widens no scale while a forecast that sees a new pattern coming can take over."""
        n = self.n_
        scales = self.scales_
        rate = max(1.0 / _SCALE_MEMORY, 1.0 / n)
        for i, forecast in enumerate(forecasts):
            size = abs(x - forecast)
            if n >= _SETTLE:
                bound = _CLIP * _ABS_TO_SD * max(scales[i], clip_floor)
                if size > bound:
                    if significant:
                        continue
                    size = bound
            scales[i] += rate * (size - scales[i])
        self.spike_model_ = _best(scales, self.spike_model_, range(6))
        self.shift_model_ = _best(scales, self.shift_model_, range(3))

    def _learn_seasons(
        self, epoch: float, x: float, clip_floor: float, day_at: int, week_at: int
    ) -> None:
        """Learn the profiles from every point, clipped: a new pattern (the first weekend)
        is learned even while it is significant, a spike moves them by 3 scales at most."""
        if self.daily_ and not self.centred_:
            # The first day: each slot's mean value, made relative to their mean once the day
            # is over, so that no level moving meanwhile biases the profile.
            if self.start_ is not None and epoch - self.start_ >= _DAY:
                self._centre()
            else:
                slot = self.daily_[day_at]
                _learn_profile(self.daily_, self.daily_weight_, day_at, x - slot, 0.0, 0.0)
        bound = _CLIP * _ABS_TO_SD * max(self.scales_[2], clip_floor)
        level = self.level_
        daily = weekly_value = 0.0
        if self.weekly_:
            weekly_value = self.weekly_[week_at] = _weekly(
                self.weekly_, self.weekly_weight_, week_at
            )
        if self.daily_ and self.centred_:
            residual = x - level - self.daily_[day_at] - weekly_value
            residual = min(max(residual, -bound), bound)
            daily = _learn_profile(
                self.daily_, self.daily_weight_, day_at, residual, self.daily_rate_, _PRIOR
            )
        if self.weekly_ and (self.centred_ or not self.daily_):
            # What the day of the week adds to the daily profile, learned after it
            # (backfitting).
            weekly, weights = self.weekly_, self.weekly_weight_
            residual = min(max(x - level - daily - weekly[week_at], -bound), bound)
            _learn_profile(weekly, weights, week_at, residual, self.weekly_rate_, _PRIOR)

    def _centre(self) -> None:
        """End of the first day: its mean becomes the slow level, the profile its deviations."""
        seen = [v for v, w in zip(self.daily_, self.daily_weight_, strict=True) if w > 0.0]
        mean = sum(seen) / len(seen) if seen else self.level_
        self.level_ = mean
        self.daily_ = [
            v - mean if w > 0.0 else 0.0
            for v, w in zip(self.daily_, self.daily_weight_, strict=True)
        ]
        self.centred_ = True

    def _relearn(self) -> None:
        """Take a persistent change as the new normal: move the level, widen the scales."""
        spread = math.sqrt(max(self.shift_square_ - self.shift_mean_**2, 0.0)) / _ABS_TO_SD
        self.level_ += self.shift_mean_
        self.fast_ += self.shift_mean_
        self.scales_ = [max(scale, spread) for scale in self.scales_]
        self.shift_square_ -= self.shift_mean_**2
        self.shift_mean_ = 0.0
        self.shift_ = 0.0
        self.run_ = 0


def _weekly(values: list[float], weights: list[float], slot: int) -> float:
    """A weekly slot's value; one never seen yet is taken to be the one before it on the same
    day (within a day, what the day of the week adds changes little from slot to slot)."""
    if weights[slot] == 0.0 and slot > 0 and weights[slot - 1] > 0.0:
        per_day = len(values) / 7.0
        if int(slot / per_day) == int((slot - 1) / per_day):
            return values[slot - 1]
    return values[slot]


def _best(scales: list[float], current: int, candidates: range) -> int:
    """The candidate of smallest scale, if it beats the current one by the margin."""
    best = min(candidates, key=scales.__getitem__)
    return best if scales[best] < _MARGIN * scales[current] else current


def _copy(value: object) -> object:
    """A deep copy of JSON-like data (lists of floats, numbers, strings, None)."""
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


class CsvRowError(ValueError):
    """A row of a metric CSV that cannot be read: which line, and what is wrong with it."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line
        self.problem = problem


@dataclass(frozen=True, slots=True)
class DetectionSummary:
    """What `detect_csv` read and found."""

    rows: int  # data rows, missing values included
    alarms: int
    missing: int  # rows whose value was empty or NaN


_MISSING: Final = frozenset({"", "nan", "null", "none", "na"})


def parse_timestamp(text: str) -> datetime | float:
    """An ISO 8601 time (naive means UTC) or epoch seconds; ValueError when it is neither."""
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        return datetime.fromisoformat(text)
    if not math.isfinite(seconds):
        raise ValueError(f"{text!r} is not a time")
    return seconds


def detect_csv(
    source: Path | TextIO,
    out: TextIO,
    *,
    direction: Direction = "both",
    alpha: float = 1e-5,
    warm_up: int = 100,
    min_scale: float = 0.0,
) -> DetectionSummary:
    """Score the `timestamp,value` rows of source in order; write `timestamp,value,score,alarm`.

    A header row is optional; columns after the second are ignored. Timestamps are ISO 8601
    or epoch seconds; an empty or NaN value is a missing point (score 0). A row that cannot be
    read raises `CsvRowError` with its line number.
    """
    if isinstance(source, Path):
        with source.open(newline="", encoding="utf-8-sig") as stream:
            return detect_csv(
                stream, out, direction=direction, alpha=alpha, warm_up=warm_up, min_scale=min_scale
            )
    detector = SeasonalDetector(direction, alpha=alpha, warm_up=warm_up, min_scale=min_scale)
    reader = csv.reader(source)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["timestamp", "value", "score", "alarm"])
    rows = alarms = missing = 0
    first = True
    for row in reader:
        if not any(field.strip() for field in row):
            continue
        line = reader.line_num
        if len(row) < 2:
            raise CsvRowError(line, "expected timestamp,value but found one field")
        stamp, text = row[0].strip(), row[1].strip()
        try:
            t = parse_timestamp(stamp)
        except ValueError:
            if first and not _is_number(text):
                first = False
                continue  # the header
            raise CsvRowError(
                line, f"timestamp {stamp!r} is neither ISO 8601 nor epoch seconds"
            ) from None
        first = False
        value: float | None = None
        if text.lower() in _MISSING:
            missing += 1
        else:
            try:
                value = float(text)
            except ValueError:
                raise CsvRowError(line, f"value {text!r} is not a number") from None
            if math.isinf(value):
                raise CsvRowError(line, f"value {text!r} is not finite")
        score = detector.update(t, value)
        rows += 1
        alarms += detector.alarm_
        writer.writerow([stamp, text, f"{score:.6f}", int(detector.alarm_)])
    return DetectionSummary(rows, alarms, missing)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
