"""Capacity: predictive scaling against HPA-style reactive scaling and a static peak-sized fleet.

    .venv/bin/python benchmarks/capacity.py [--seed 7] [--weeks 2]

Trace (seeded, hourly): a warm-up week for the forecaster, then `--weeks` scored weeks. Demand
in requests/s is ``base × trend × daily × weekly × noise`` with a base of 1,000 rps, a trend of
+1 % a week, a daily cycle from 0.45x at night to 1.55x in the afternoon, weekends at 0.7x and
log-normal noise (sd 5 %); on top, unannounced spikes of 2-3x for 1-3 hours, about one every
four days. Each row holds the requests of one hour.

Replayed with `modelfleet.capacity.replay` at 50 rps per replica, a 2-minute start-up delay,
1-64 replicas and target utilization 0.75:

- predictive: `RefittingForecaster` (MSTL + damped ETS, refitted every 24 hours, 90 % upper
  bound over the start-up lead) with the HPA recommendation as a floor, so a spike the forecast
  missed is still answered one interval later.
- reactive:   Kubernetes HPA (tolerance 0.1, scale-down stabilization 300 s).
- static:     the scored weeks' peak at the target utilization, all the time.
- predictive (target 1): the same, but sized so the forecast's upper bound fills replicas
  (the interval is the headroom, not the 25 % HPA keeps for its lag); the HPA floor then
  answers only load beyond full capacity.

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
sys.path.insert(0, str(ROOT))

from modelfleet.capacity.autoscaler import Mode, ScalingPolicy  # noqa: E402
from modelfleet.capacity.refitting import RefittingForecaster  # noqa: E402
from modelfleet.capacity.replay import ReplayResult, replay  # noqa: E402

HOUR = 3600.0
WEEK = 168
PER_REPLICA_RPS = 50.0
STARTUP_DELAY_S = 120.0
TARGET = 0.75
PRICE = 0.10


def make_trace(weeks: int, seed: int) -> tuple[np.ndarray, list[tuple[int, float, int]]]:
    """Requests per hour for `weeks` weeks, and the spikes as (start hour, factor, hours)."""
    rng = np.random.default_rng(seed)
    hours = np.arange(weeks * WEEK)
    hour_of_day = hours % 24
    day_of_week = (hours // 24) % 7
    daily = 1.0 + 0.55 * np.sin(2 * np.pi * (hour_of_day - 9) / 24)
    weekly = np.where(day_of_week >= 5, 0.7, 1.0)
    trend = 1.0 + 0.01 * hours / WEEK
    noise = rng.lognormal(0.0, 0.05, hours.size)
    rps = 1000.0 * trend * daily * weekly * noise
    spikes: list[tuple[int, float, int]] = []
    for start in sorted(rng.choice(np.arange(WEEK, hours.size - 3), hours.size // 96, False)):
        factor, length = float(rng.uniform(2.0, 3.0)), int(rng.integers(1, 4))
        rps[start : start + length] *= factor
        spikes.append((int(start), factor, length))
    return rps * HOUR, spikes


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
    replica_hours = float(np.sum(result.billed_replicas[skip:])) * HOUR / 3600.0
    return Scored(
        name,
        int(np.sum(short)),
        int(short.size),
        float(np.mean(result.utilization[skip:])),
        replica_hours,
        replica_hours * PRICE,
        seconds,
    )


def run(trace: list[tuple[float, float]], mode: Mode, skip: int, target: float = TARGET) -> Scored:
    peak_rps = max(r for _, r in trace[skip:]) / HOUR
    peak = math.ceil(peak_rps / (PER_REPLICA_RPS * TARGET))
    policy = ScalingPolicy(
        min_replicas=1,
        max_replicas=max(64, peak),
        per_replica_rps=PER_REPLICA_RPS,
        startup_lead=STARTUP_DELAY_S,
        target_utilization=target,
    )
    started = time.perf_counter()
    result = replay(
        trace,
        policy,
        mode,
        interval_s=HOUR,
        startup_delay_s=STARTUP_DELAY_S,
        forecaster=RefittingForecaster(HOUR) if mode == "predictive" else None,
        price_per_replica_hour=PRICE,
        static_replicas=peak if mode == "static" else None,
    )
    name = mode if target == TARGET else f"{mode} (target {target:g})"
    return score(name, result, skip, time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--weeks", type=int, default=2, help="scored weeks, after one warm-up week")
    args = p.parse_args(argv)

    requests, spikes = make_trace(args.weeks + 1, args.seed)
    trace = [(i * HOUR, float(r)) for i, r in enumerate(requests)]
    print(
        f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"seed {args.seed}, {len(trace)} hourly intervals ({WEEK} warm-up, "
        f"{len(trace) - WEEK} scored), {len(spikes)} spikes: "
        + ", ".join(f"h{s} {f:.1f}x {n}h" for s, f, n in spikes)
    )
    rows = [run(trace, mode, WEEK) for mode in ("predictive", "reactive", "static")]
    rows.append(run(trace, "predictive", WEEK, target=1.0))
    print()
    print("| policy | under-provisioned | mean utilization | replica-hours | cost | replay |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r.policy} | {r.under_provisioned}/{r.intervals} "
            f"({r.under_provisioned / r.intervals:.1%}) | {r.mean_utilization:.1%} "
            f"| {r.replica_hours:,.0f} | ${r.cost:,.2f} | {r.seconds:.1f} s |"
        )
    reactive = rows[1]
    failed = 0
    for predictive in (rows[0], rows[3]):
        print()
        print(f"{predictive.policy} against reactive:")
        failed += check(predictive, reactive)
    return 1 if failed else 0


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
