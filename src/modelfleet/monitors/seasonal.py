"""The seasonal detector: a robust daily and weekly forecast, and tail tests on its residuals.

The algorithm behind `modelfleet.monitors.anomaly` (which holds the public API, the contract
and an example). A point x at time t is forecast as a level plus a daily and a weekly profile,

    x_t = level + daily(t mod day) + weekly(t mod week) + e_t

additive Holt-Winters exponential smoothing with two seasons (Holt 1957, Winters 1960; two
seasons as in Taylor, "Short-term electricity demand forecasting using double seasonal
exponential smoothing", J. Oper. Res. Soc. 54, 2003), made robust as Gelper, Fried and Croux
do ("Robust forecasting with exponential and Holt-Winters smoothing", J. Forecasting 29,
2010): a residual is clipped at 3 scales before anything learns from it (Huber's psi), and a
scale is an exponentially weighted mean absolute residual (sigma = sqrt(pi / 2) * E|e| for
normal e; memory 200 points), itself of clipped residuals.

Seasons. Wall time: the position within the day and the week of t's own clock (UTC for epoch
seconds and naive datetimes). The sampling interval is the median of the first 8 gaps; the
daily profile has a slot per point of the day (at most 288, 5 minutes), the weekly one slots
at least 3 points wide (at most 336, 30 minutes), read as steps, so that a change at midnight
on Saturday is a step, not a ramp. The first day is learned as each slot's mean value, made
relative to their mean when the day is over (no level moving meanwhile can bias it); from
then on a daily slot is the mean of its residuals with one pseudo-observation of 0 (a weekly
one: a quarter of a visit's points), until it forgets 15 % a day (daily) or 30 % a week
(weekly). The weekly profile learns what the day of the week adds, after the daily one
(backfitting), from the second day on; a weekly slot not seen yet takes the value of the one
before it on the same day, so the first weekend is learned within its first slots (it may
alarm meanwhile: a weekly pattern is known after a week).

Levels and forecasts. A slow level (a running mean on the first day, then time constant one
day) anchors the seasons; three fast ones (weight 0.25 a point), of x, of x - daily and of
x - daily - weekly, follow series that wander or trend. Six forecasts (each level with no
season, the daily, or both) keep their own scale; the tests use the slow and the fast one of
smallest scale, switching at a 5 % margin, a season fewer counting as 3 % worse (it fails the
first time the weekend comes). A series without seasons or shorter than them is so judged by
a level alone, a wandering one by its recent values.

Tests, each one-sided in both directions, P-values from the stream's own tail
(`modelfleet.monitors.tail`):

- spike: z = (x - forecast) / scale, against the best fast forecast; when that has left the
  best slow one by more than one slow scale (it followed an episode), a point back towards
  the slow one must be unusual against both, so that the end of an episode is no spike;
- level shift: an EWMA control chart (Roberts 1959; Lucas and Saccucci 1990) of z clipped at
  +-4, weight 1/8, against the best slow forecast, standardized by its own learned scale
  (never below its value for independent z, sqrt(1/15)) and its tail learned declustered, so
  that residuals that wander do not read as shifts. It starts once the first day is learned
  (before that a daily cycle reads as shifts); a shift of 2 scales shows within ~5 points.

What learns from what. The profiles learn every point, clipped (a new pattern is learned even
while it alarms; a spike moves a slot by 3 scales times its weight at most). The levels too.
A point that a test finds significant, in either direction whatever `direction` is, teaches
the tails nothing, and a scale only if its forecast explains the point (residual within the
clip): an outlier widens no scale, while a forecast that sees a new pattern can take over.
After `relearn_after` significant points in a row (5 times as many in the weekly profile's
first week, whose first weekend is a pattern to learn, not a new level) the change is the new
normal: the levels jump by the mean residual of the last few points and the scales widen to
their spread. Within
10 * relearn_after points after, a point back at the old level (within 3 scales of it, and
not of the new) undoes that jump instead of alarming: an outage that ends, a spell that
passes. A scale is never below max(min_scale, min_relative_scale * |forecast|, the quantum
(smallest change seen between points: 1 for counts)).

Cost: O(1) per point; memory: the profiles, at most 624 floats and their weights.

Three days of a point every 10 minutes that moves by 1 or 2; on the third, a permanent step
of 20. It alarms from its first point until the forecast has taken the step in (in the first
week the profiles, still young, do it before `relearn_after` points have passed):

>>> detector = SeasonalDetector(relearn_after=30)
>>> alarms = []
>>> for i in range(432):
...     score = detector.update(600.0 * i, 10.0 + i % 3 + (20.0 if i >= 350 else 0.0))
...     alarms.append(detector.alarm_)
>>> alarms.index(True), sum(alarms)
(350, 26)
>>> detector.interval_, len(detector.daily_), len(detector.weekly_)
(600.0, 144, 336)
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, Self, TypeAlias, cast

from modelfleet.monitors.tail import new_tail, tail_isf, tail_learn, tail_learn_runs, tail_sf

Timestamp: TypeAlias = datetime | float | int
Direction: TypeAlias = Literal["up", "down", "both"]
JSON: TypeAlias = str | int | float | bool | None | list["JSON"] | dict[str, "JSON"]

_DAY: Final = 86400.0
_WEEK: Final = 7 * _DAY
_MONDAY: Final = 4 * _DAY  # 1970-01-05, the first Monday: weekly slots start on Monday 00:00
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
_UNDO_WINDOW: Final = 10  # a relearn can be undone for 10 * relearn_after points
_SIMPLER: Final = 0.03  # a forecast with one season fewer counts as 3 % worse
_ABS_TO_SD: Final = math.sqrt(math.pi / 2.0)
_TINY: Final = 1e-12
_PRIOR: Final = 1.0  # pseudo-observations of 0 in each seasonal slot
_VISIT_PRIOR: Final = 0.25  # a weekly slot's prior, in visits' worth of points
_APART: Final = 1.0  # the fast forecast this many slow scales from the slow one: an episode
_YOUNG: Final = 5  # in the weekly profile's first week, relearn after 5 * relearn_after
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
        alpha: float = 3e-5,
        warm_up: int = 100,
        min_scale: float = 0.0,
        min_relative_scale: float = 1e-3,
        relearn_after: int = 30,
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
        self.fast_ = [0.0, 0.0, 0.0]  # fast levels: of x, x - daily, x - daily - weekly
        self.daily_: list[float] = []
        self.daily_weight_: list[float] = []
        self.daily_rate_ = 0.0  # least weight of a point in its slot
        self.centred_ = False  # whether the first day is over (until then: raw slot means)
        self.weekly_: list[float] = []
        self.weekly_weight_: list[float] = []
        self.weekly_rate_ = 0.0
        self.weekly_prior_ = _PRIOR  # pseudo-observations of 0 in a weekly slot
        self.scales_ = [0.0] * 6  # mean |residual| of: slow, +daily, +weekly; fast, ...
        self.slow_model_ = 0  # the slow forecast the tests use (0, 1 or 2)
        self.fast_model_ = 3  # the fast one (3, 4 or 5)
        self.shift_ = 0.0  # EWMA of the clipped z of the shift model
        self.shift_scale_ = 0.0  # mean |shift_|
        self.shift_mean_ = 0.0  # EWMA of the shift model's raw residual, and of its square
        self.shift_square_ = 0.0
        self.run_ = 0  # significant points in a row
        self.undo_ = 0.0  # what the last relearn added to the levels
        self.undo_left_ = 0  # points during which a return to the level before it is normal
        self.undo_scales_ = [0.0] * 6  # the scales before it
        # Of the spike test against the fast forecast (z up, down), of the shift test, and of the
        # spike test against the slow forecast.
        self.tails_ = [new_tail() for _ in range(6)]
        self.peaks_ = [0.0, 0.0]  # of the shift statistic's current excursions: up, down
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
        forecasts: tuple[float, ...] = (
            slow,
            slow + daily,
            slow + both,
            fast[0],
            fast[1] + daily,
            fast[2] + both,
        )
        expected = forecasts[self.slow_model_] if self.n_ else math.nan
        if x is not None:
            x = float(x)
        if x is None or not math.isfinite(x) or self.n_ == 0:
            if x is not None and math.isfinite(x) and learn:
                self._first(epoch, x)
            return Verdict(0.0, False, 1.0, expected, -math.inf, math.inf, 0.0, 0.0)

        floor = self._floor(expected)
        scales = self.scales_
        slow_i, fast_i = self.slow_model_, self.fast_model_
        slow_sigma = max(scales[slow_i] * _ABS_TO_SD, floor)
        fast_sigma = max(scales[fast_i] * _ABS_TO_SD, floor)
        shift_before = self.shift_
        if self.undo_left_ > 0:
            gap = abs(x - forecasts[slow_i])
            before = _CLIP * max(self.undo_scales_[slow_i] * _ABS_TO_SD, floor)
            if gap > _CLIP * slow_sigma and abs(x - forecasts[slow_i] + self.undo_) <= before:
                # Back where it was before the last relearn: that change was an episode.
                forecasts = tuple(forecast - self.undo_ for forecast in forecasts)
                shift_before = 0.0
                if learn:
                    self._undo()
        slow_z = (x - forecasts[slow_i]) / slow_sigma
        fast_z = (x - forecasts[fast_i]) / fast_sigma
        clipped = min(max(slow_z, -_SHIFT_CLIP), _SHIFT_CLIP)
        shift = shift_before + _SHIFT_WEIGHT * (clipped - shift_before)
        shift_scale = max(self.shift_scale_ * _ABS_TO_SD, _SHIFT_FLOOR)
        w = shift / shift_scale
        tails = self.tails_
        p_up, p_down = tail_sf(tails[0], fast_z), tail_sf(tails[1], -fast_z)
        # When the recent level has left the usual one (by one of its scales), a point back
        # towards the usual is a return, not a spike: it must be unusual for both.
        apart = (forecasts[fast_i] - forecasts[slow_i]) / slow_sigma
        if apart < -_APART:
            p_up = max(p_up, tail_sf(tails[4], slow_z))
        elif apart > _APART:
            p_down = max(p_down, tail_sf(tails[5], -slow_z))
        best = slow_i if scales[slow_i] <= scales[fast_i] else fast_i
        expected = forecasts[best]
        z = slow_z if best == slow_i else fast_z
        q_up = q_down = 1.0
        if self.centred_ or (self.interval_ is not None and not self.daily_):
            # Until the first day is learned, a daily cycle would read as level shifts.
            q_up, q_down = tail_sf(tails[2], w), tail_sf(tails[3], -w)
        spike_significant = 4.0 * min(p_up, p_down) < self.alpha
        shift_significant = 4.0 * min(q_up, q_down) < self.alpha
        if self.direction == "up":
            p = min(1.0, 2.0 * min(p_up, q_up))
        elif self.direction == "down":
            p = min(1.0, 2.0 * min(p_down, q_down))
        else:
            p = min(1.0, 4.0 * min(p_up, p_down, q_up, q_down))
        if not p >= 0.0:  # NaN: values so large (past 1e150) that their squares overflow
            p = 1.0
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
            level = self.alpha / (4.0 if self.direction == "both" else 2.0)
            if self.direction != "down":
                upper = forecasts[fast_i] + tail_isf(tails[0], level) * fast_sigma
                if apart < -_APART:
                    upper = max(upper, forecasts[slow_i] + tail_isf(tails[4], level) * slow_sigma)
            if self.direction != "up":
                lower = forecasts[fast_i] - tail_isf(tails[1], level) * fast_sigma
                if apart > _APART:
                    lower = min(lower, forecasts[slow_i] - tail_isf(tails[5], level) * slow_sigma)
        verdict = Verdict(score, alarm, p, expected, lower, upper, z, w)
        if learn:
            significant = (spike_significant or shift_significant) and self.n_ >= _SETTLE
            self._learn(
                epoch, x, forecasts, floor, (fast_z, slow_z, w), shift, day_at, week_at, significant
            )
        return verdict

    def _first(self, epoch: float, x: float) -> None:
        self.level_ = x
        self.fast_ = [x, x, x]
        self.start_ = self.t_ = epoch
        self.x_ = x
        self.n_ = 1

    def _learn(
        self,
        epoch: float,
        x: float,
        forecasts: tuple[float, ...],
        floor: float,
        zs: tuple[float, float, float],
        shift: float,
        day_at: int,
        week_at: int,
        significant: bool,
    ) -> None:
        n = self.n_
        self._learn_time(epoch, x)
        if self.undo_left_ > 0:
            self.undo_left_ -= 1
        clip_floor = floor / _ABS_TO_SD

        # The levels learn every point, clipped at _CLIP scales of their forecast.
        # A running mean at first; once the first day is learned, only the slow rate, so that
        # the weekly profile learns against a level that the weekend does not drag down.
        rate = self.slow_rate_ if self.centred_ else max(self.slow_rate_, 1.0 / (n + 1))
        self.level_ += rate * self._clip(x, forecasts, 2, floor)
        fast_rate = max(_FAST_RATE, 1.0 / (n + 1))
        fast = self.fast_
        for season in range(3):
            fast[season] += fast_rate * self._clip(x, forecasts, 3 + season, floor)

        # The shift statistic and its scale learn every point: residuals that wander must
        # widen it, or they would read as shifts.
        self.shift_ = shift
        rate = max(1.0 / _SHIFT_MEMORY, 1.0 / n)
        size = abs(shift)
        if n >= _SETTLE:
            size = min(size, _CLIP * max(self.shift_scale_, _SHIFT_FLOOR / _ABS_TO_SD))
        self.shift_scale_ += rate * (size - self.shift_scale_)
        raw = x - forecasts[self.slow_model_]
        self.shift_mean_ += _SHIFT_WEIGHT * (raw - self.shift_mean_)
        self.shift_square_ += _SHIFT_WEIGHT * (raw * raw - self.shift_square_)

        self._learn_seasons(epoch, x, clip_floor, day_at, week_at)
        self._learn_scales(x, forecasts, clip_floor, significant)
        if significant:
            self.run_ += 1
            # In the weekly profile's first week, five times later: the first weekend is a
            # pattern for the profile to learn (within a few points), not a new level.
            young = bool(self.weekly_) and self.start_ is not None and epoch - self.start_ < _WEEK
            if self.run_ >= self.relearn_after * (_YOUNG if young else 1):
                self._relearn()
        else:
            self.run_ = 0
            if n >= _SETTLE:
                tails = self.tails_
                fast_z, slow_z, w = zs
                tail_learn(tails[0], fast_z)
                tail_learn(tails[1], -fast_z)
                tail_learn(tails[4], slow_z)
                tail_learn(tails[5], -slow_z)
                peaks = self.peaks_
                peaks[0] = tail_learn_runs(tails[2], w, peaks[0])
                peaks[1] = tail_learn_runs(tails[3], -w, peaks[1])
        self.n_ = n + 1

    def _clip(self, x: float, forecasts: tuple[float, ...], i: int, floor: float) -> float:
        """Forecast i's residual, clipped at _CLIP of its scales once the stream has settled."""
        residual = x - forecasts[i]
        if self.n_ < _SETTLE:
            return residual
        bound = _CLIP * max(self.scales_[i] * _ABS_TO_SD, floor)
        return min(max(residual, -bound), bound)

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
            # Seven days of slots at least three points wide: a slot learns from one visit a
            # week, so one point a visit would be all noise.
            slots = 7 * max(1, int(min(_WEEKLY_SLOTS, per_week / 3.0) / 7))
            self.weekly_ = [0.0] * slots
            self.weekly_weight_ = [0.0] * slots
            self.weekly_rate_ = 1.0 - (1.0 - _WEEKLY_FORGET) ** (slots / per_week)
            self.weekly_prior_ = max(_PRIOR, _VISIT_PRIOR * per_week / slots)

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
        self.slow_model_ = _best(scales, self.slow_model_, range(3))
        self.fast_model_ = _best(scales, self.fast_model_, range(3, 6))

    def _learn_seasons(
        self, epoch: float, x: float, clip_floor: float, day_at: int, week_at: int
    ) -> None:
        """Learn the profiles from every point, clipped: a new pattern (the first weekend)
        is learned even while it is significant, a spike moves them by 3 scales at most."""
        if self.daily_ and not self.centred_:
            # The first day: each slot's mean value, made relative to their mean once the day
            # is over, so that no level moving meanwhile biases the profile.
            if self.start_ is not None and epoch - self.start_ >= _DAY:
                self._centre(day_at)
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
            _learn_profile(
                weekly, weights, week_at, residual, self.weekly_rate_, self.weekly_prior_
            )

    def _centre(self, day_at: int) -> None:
        """End of the first day: its mean becomes the slow level, the profile its deviations,
        and the fast levels of the seasonal forecasts what is left once they are taken out."""
        self.centred_ = True
        values, weights = self.daily_, self.daily_weight_
        seen = [i for i, w in enumerate(weights) if w > 0.0]
        if not seen:
            return
        mean = sum(values[i] for i in seen) / len(seen)
        self.level_ = mean
        # A slot the first day missed takes the value of the last one seen before it.
        last = values[seen[-1]] - mean
        for i, w in enumerate(weights):
            if w > 0.0:
                last = values[i] - mean
            values[i] = last
        fast = self.fast_
        fast[1] = fast[2] = fast[0] - values[day_at]

    def _relearn(self) -> None:
        """Take a persistent change as the new normal: move the level, widen the scales."""
        spread = math.sqrt(max(self.shift_square_ - self.shift_mean_**2, 0.0)) / _ABS_TO_SD
        self.undo_ = self.shift_mean_
        self.undo_left_ = _UNDO_WINDOW * self.relearn_after
        self.undo_scales_ = list(self.scales_)
        self.level_ += self.shift_mean_
        self.fast_ = [level + self.shift_mean_ for level in self.fast_]
        self.scales_ = [max(scale, spread) for scale in self.scales_]
        self.shift_square_ -= self.shift_mean_**2
        self.shift_mean_ = 0.0
        self.shift_ = 0.0
        self.run_ = 0

    def _undo(self) -> None:
        """Go back to the level before the last relearn."""
        self.level_ -= self.undo_
        self.fast_ = [level - self.undo_ for level in self.fast_]
        before = zip(self.scales_, self.undo_scales_, strict=True)
        self.scales_ = [max(now, then) for now, then in before]
        self.shift_ = self.shift_mean_ = 0.0
        self.undo_ = 0.0
        self.undo_left_ = 0


def _weekly(values: list[float], weights: list[float], slot: int) -> float:
    """A weekly slot's value; one never seen yet is taken to be the one before it on the same
    day (within a day, what the day of the week adds changes little from slot to slot)."""
    if weights[slot] == 0.0 and slot > 0 and weights[slot - 1] > 0.0:
        per_day = len(values) / 7.0
        if int(slot / per_day) == int((slot - 1) / per_day):
            return values[slot - 1]
    return values[slot]


def _best(scales: list[float], current: int, candidates: range) -> int:
    """The candidate of smallest scale, if it beats the current one by the margin; between
    forecasts that do about as well, the one with more seasons (it knows the weekend)."""

    def merit(i: int) -> float:
        return scales[i] * (1.0 + _SIMPLER * (2 - i % 3))

    best = min(candidates, key=merit)
    return best if merit(best) < _MARGIN * merit(current) else current


def _copy(value: object) -> object:
    """A deep copy of JSON-like data (lists of floats, numbers, strings, None)."""
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value
