"""Weeks of telemetry in seconds: synthetic minute rollups, as the gateway would have written them.

Detectors learn from history, and sending a week of requests through the gateway would take a
day. So the past is written here directly as rollups: per stream and minute a Poisson number of
requests around a rate with a daily cycle (and a quieter weekend), service times from the same
`LatencyModel` the drills' backend sleeps, plus the gateway's own overhead, and confidences
drawn from the model's real confidences on real inputs. Latencies come from the
`LatencyModel` or, better, from what a gateway measured in a short calibration run. Nothing but counts and sketches is
written: no features, no samples.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from modelfleet.sim.faults import LatencyModel
from modelfleet.stats import LatencySketch
from modelfleet.telemetry.rollup import Rollup, RollupKey

_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class StreamLoad:
    """One stream's traffic: requests per minute on average, and how it cycles."""

    tenant: str
    model: str
    version: str
    region: str
    per_minute: float
    daily_swing: float = 0.0  # 0.5: the rate goes from 0.5x at night to 1.5x in the afternoon
    weekend: float = 1.0  # the weekend's share of a weekday's rate

    def rate(self, at: datetime) -> float:
        """Requests expected in the minute starting `at`."""
        hours = at.hour + at.minute / 60
        daily = 1.0 + self.daily_swing * math.sin(2 * math.pi * (hours - 9.0) / 24)
        weekly = self.weekend if at.weekday() >= 5 else 1.0
        return self.per_minute * daily * weekly


LatencySampler = Callable[[np.random.Generator, int], np.ndarray]


def model_latencies(model: LatencyModel, overhead_s: float = 0.003) -> LatencySampler:
    """Service times of `model` plus a fixed overhead."""

    def draw(rng: np.random.Generator, n: int) -> np.ndarray:
        return model.median_s * np.exp(rng.normal(0.0, model.sigma, n)) + overhead_s

    return draw


def sketch_latencies(sketch: LatencySketch) -> LatencySampler:
    """Latencies as a gateway measured them: drawn from its sketch by inverse transform."""

    def draw(rng: np.random.Generator, n: int) -> np.ndarray:
        return np.array([sketch.quantile(float(u)) or 0.0 for u in rng.random(n)])

    return draw


def synthetic_rollups(
    loads: Sequence[StreamLoad],
    start: datetime,
    minutes: int,
    *,
    confidences: np.ndarray,
    latencies: LatencySampler | None = None,
    minute_jitter: float = 0.2,
    seed: int = 0,
) -> Iterator[Rollup]:
    """One rollup per stream and minute from `start` (a whole UTC minute), oldest first.

    `latencies(rng, n)` draws n latencies in seconds; by default `LatencyModel()`'s service
    times plus 3 ms of gateway overhead. Each stream's minute is also slower or faster as a
    whole, by a log-normal factor of sigma `minute_jitter`, as real minutes are (load on the
    host, garbage collection): without it, history would teach detectors a steadiness that
    no real fleet has."""
    latencies = latencies or model_latencies(LatencyModel())
    rng = np.random.default_rng(seed)
    for m in range(minutes):
        minute = start + m * _MINUTE
        for load in loads:
            n = int(rng.poisson(load.rate(minute)))
            if n == 0:
                continue
            key = RollupKey(load.tenant, load.model, load.version, load.region, minute)
            rollup = Rollup(key)
            waits = latencies(rng, n) * float(np.exp(rng.normal(0.0, minute_jitter)))
            drawn = rng.choice(confidences, n)
            for wait, confidence in zip(waits.tolist(), drawn.tolist(), strict=True):
                rollup.record(200, wait, [confidence])
            yield rollup
