"""Capacity: predictive scaling against HPA-style reactive scaling and a static peak-sized fleet.

    .venv/bin/python benchmarks/capacity.py [--seed 7] [--weeks 2] [--startup 10m]

Trace (seeded, one row per 5 minutes): a warm-up week for the forecaster, then `--weeks`
scored weeks. Demand in requests/s is ``base × daily × weekly × trend × noise``:

- a base of 1,000 rps;
- a business day: 0.3x at night, a steep morning ramp around 08:10 to 1.5x, a lunch dip, an
  evening decline from 18:30 back to the night;
- weekends at 0.55x; a trend of +1 % a week; log-normal noise (sd 5 %) per 5 minutes;
- unannounced spikes, about one every three days: 1.8-2.8x for 15 minutes to 2 hours,
  some rising over up to 15 minutes.

Replayed with `modelfleet.capacity.replay` at 50 rps per replica, 1-1000 replicas, a replica
start-up delay of `--startup` (10 minutes: a model server that pulls its image and loads its
weights), deciding every 5 minutes:

- predictive: `OnlineForecaster` (MSTL + damped ETS on hourly sums, refitted daily, level
  correction, 90 % upper bound calibrated on its own errors), sized so the bound over the
  start-up lead fills replicas to 90 %; HPA's rule corrects when a load above the bound is seen.
- reactive: Kubernetes HPA (target 0.75, tolerance 0.1, scale-down stabilization 300 s).
- static: the scored weeks' peak at HPA's target, all the time.

Then the same trace with shorter start-up delays, where reacting costs less.

Figures are over the scored weeks only. The goals checked (issue: capacity planning):
predictive has at most half the under-provisioned intervals of reactive, no more replica-hours
than reactive, and a mean utilization of at least 75 %.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from modelfleet.capacity.autoscaler import Mode, ScalingPolicy  # noqa: E402
from modelfleet.capacity.forecast import DemandForecaster, mase, seasonal_naive  # noqa: E402
from modelfleet.capacity.online import OnlineForecaster  # noqa: E402
from modelfleet.capacity.replay import ReplayResult, replay  # noqa: E402

STEP = 300.0
PER_DAY = int(86_400 / STEP)
WEEK = 7 * PER_DAY
PER_REPLICA_RPS = 50.0
TARGET = 0.75
PRICE = 0.10


def _rise(hour: np.ndarray, at: float, width: float) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-(hour - at) / width)))


def make_trace(weeks: int, seed: int) -> tuple[np.ndarray, list[tuple[int, float, int]]]:
    """Requests per 5 minutes for `weeks` weeks, and the spikes as (start, factor, steps)."""
    rng = np.random.default_rng(seed)
    t = np.arange(weeks * WEEK) * STEP
    hour = (t % 86_400) / 3600
    day = (t // 86_400) % 7
    daily = (
        0.3
        + 1.2 * _rise(hour, 8.2, 0.35)
        - 0.25 * np.exp(-(((hour - 12.5) / 0.6) ** 2))
        - 1.2 * _rise(hour, 18.5, 0.8)
    )
    weekly = np.where(day >= 5, 0.55, 1.0)
    trend = 1.0 + 0.01 * t / (7 * 86_400)
    rps = 1000.0 * daily * weekly * trend * rng.lognormal(0.0, 0.05, t.size)
    spikes: list[tuple[int, float, int]] = []
    starts = rng.choice(np.arange(WEEK, t.size - 24), weeks * 7 // 3, replace=False)
    for start in sorted(int(s) for s in starts):
        factor, steps, rising = float(rng.uniform(1.8, 2.8)), int(rng.integers(3, 25)), 0
        shape = np.full(steps, factor)
        rising = int(rng.integers(0, 4))
        shape[:rising] = 1.0 + (factor - 1.0) * np.arange(1, rising + 1) / (rising + 1)
        rps[start : start + steps] *= shape[: t.size - start]
        spikes.append((start, factor, steps))
    return rps * STEP, spikes


@dataclass(frozen=True)
class Scored:
    policy: str
    under_provisioned: int
    intervals: int
    mean_utilization: float
    replica_hours: float
    cost: float
    seconds: float


def score(name: str, result: ReplayResult, skip: int, seconds: float) -> Scored:
    """The figures of `result` over the intervals after the first `skip`."""
    short = result.demand[skip:] > result.capacity[skip:]
    replica_hours = float(np.sum(result.billed_replicas[skip:])) * STEP / 3600.0
    return Scored(
        name,
        int(np.sum(short)),
        int(short.size),
        float(np.mean(result.utilization[skip:])),
        replica_hours,
        replica_hours * PRICE,
        seconds,
    )


def run(trace: list[tuple[float, float]], mode: Mode, startup_s: float) -> Scored:
    peak = math.ceil(max(r for _, r in trace[WEEK:]) / STEP / (PER_REPLICA_RPS * TARGET))
    policy = ScalingPolicy(
        min_replicas=1,
        max_replicas=1000,
        per_replica_rps=PER_REPLICA_RPS,
        startup_lead=startup_s,
        target_utilization=TARGET,
        forecast_utilization=0.9,
    )
    started = time.perf_counter()
    result = replay(
        trace,
        policy,
        mode,
        interval_s=STEP,
        startup_delay_s=startup_s,
        forecaster=OnlineForecaster(STEP, level=0.9) if mode == "predictive" else None,
        price_per_replica_hour=PRICE,
        static_replicas=peak if mode == "static" else None,
    )
    return score(mode, result, WEEK, time.perf_counter() - started)


def table(rows: list[Scored]) -> None:
    print("| policy | under-provisioned | mean utilization | replica-hours | cost | replay |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r.policy} | {r.under_provisioned}/{r.intervals} "
            f"({r.under_provisioned / r.intervals:.1%}) | {r.mean_utilization:.1%} "
            f"| {r.replica_hours:,.0f} | ${r.cost:,.2f} | {r.seconds:.1f} s |"
        )


def minutes(text: str) -> float:
    return float(text.removesuffix("m")) * 60.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--weeks", type=int, default=2, help="scored weeks, after one warm-up week")
    p.add_argument("--startup", type=minutes, default=600.0, help="replica start-up, e.g. 10m")
    args = p.parse_args(argv)

    requests, spikes = make_trace(args.weeks + 1, args.seed)
    trace = [(i * STEP, float(r)) for i, r in enumerate(requests)]
    print(
        f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"seed {args.seed}, {len(trace)} intervals of 5 minutes ({WEEK} warm-up, "
        f"{len(trace) - WEEK} scored), {len(spikes)} spikes"
    )
    forecast_accuracy(args.seed)
    print(f"\nreplica start-up {args.startup / 60:g} minutes:\n")
    rows = [run(trace, mode, args.startup) for mode in ("predictive", "reactive", "static")]
    table(rows)
    print()
    failed = check(rows[0], rows[1])

    print("\nshorter start-ups (predictive against reactive):\n")
    print(
        "| start-up | predictive short | reactive short | predictive replica-hours "
        "| reactive replica-hours | predictive utilization | reactive utilization |"
    )
    print("|---|---|---|---|---|---|---|")
    for startup in (120.0, 300.0):
        pred, react = (run(trace, mode, startup) for mode in ("predictive", "reactive"))
        print(
            f"| {startup / 60:g} min | {pred.under_provisioned} | {react.under_provisioned} "
            f"| {pred.replica_hours:,.0f} | {react.replica_hours:,.0f} "
            f"| {pred.mean_utilization:.1%} | {react.mean_utilization:.1%} |"
        )
    return 1 if failed else 0


def forecast_accuracy(seed: int) -> None:
    """A week's hourly forecast from the four weeks before it: MASE and 90 % coverage, and
    the mean relative error on the hours that neither it nor the week before had a spike in."""
    requests, spikes = make_trace(5, seed)
    hours = requests.reshape(-1, 12).sum(axis=1)
    spiked = np.zeros(hours.size, dtype=bool)
    for start, _, steps in spikes:
        spiked[start // 12 : (start + steps) // 12 + 1] = True
    past, week = hours[:-168], hours[-168:]
    calm = ~spiked[-168:] & ~spiked[-336:-168]

    def calm_error(forecast: np.ndarray) -> float:
        return float(np.mean((np.abs(week - forecast) / week)[calm]))

    print("\nthe fifth week's hourly demand, forecast from four weeks of the same process:")
    for name, robust in (("spikes cleaned", True), ("spikes left in", False)):
        forecast = DemandForecaster(level=0.9, robust=robust).fit(past).predict(168)
        covered = float(np.mean((week >= forecast.lower) & (week <= forecast.upper)))
        score = mase(week, forecast.mean, past, 168)
        print(
            f"  MSTL + ETS, {name}: MASE {score:.3f}, 90 % interval covers {covered:.1%}, "
            f"{calm_error(forecast.mean):.1%} off on calm hours"
        )
    naive_path = seasonal_naive(past, 168, 168)
    naive = mase(week, naive_path, past, 168)
    print(
        f"  seasonal-naive (last week again): MASE {naive:.3f}, "
        f"{calm_error(naive_path):.1%} off on calm hours"
    )


def check(predictive: Scored, reactive: Scored) -> int:
    """Print each goal as met or MISSED; return how many were missed."""
    goals = [
        (
            "predictive has at most half the under-provisioned intervals of reactive",
            predictive.under_provisioned <= reactive.under_provisioned / 2,
            f"{predictive.under_provisioned} against {reactive.under_provisioned}",
        ),
        (
            "predictive uses no more replica-hours than reactive",
            predictive.replica_hours <= reactive.replica_hours,
            f"{predictive.replica_hours:,.0f} against {reactive.replica_hours:,.0f}",
        ),
        (
            "predictive's mean utilization is at least 75 %",
            predictive.mean_utilization >= 0.75,
            f"{predictive.mean_utilization:.1%}",
        ),
    ]
    for goal, met, figures in goals:
        print(f"  {'met' if met else 'MISSED'}: {goal} ({figures})")
    return sum(not met for _, met, _ in goals)


if __name__ == "__main__":
    sys.exit(main())
