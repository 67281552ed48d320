"""The streaming anomaly detector on labelled synthetic metric streams, against two baselines.

    .venv/bin/python benchmarks/anomaly.py [--seeds 7 8 9] [--no-river] [--set alpha=1e-4 ...]

Data (seeded; each seed draws all ten afresh, and the tables add the seeds up): ten streams of the shapes a model-serving fleet produces, each with its own
sampling interval, the anomalies injected at known points and labelled as windows (the
anomaly's own points; alarms up to 5 points after its end still count as true):

- requests_1m:    request counts a minute (Poisson), daily cycle, weekends at 60 %; 3 weeks.
                  A 3-minute spike x1.8, a 15-minute outage (x0.05), 2 hours at x0.8, 30
                  minutes at x1.3. Direction both.
- errors_1m:      error counts a minute, Poisson at 0.3 with a daily cycle; 2 weeks. Bursts:
                  5 minutes at 5/min, 30 at 2/min, 3 at 12/min. Up; a 200-minute quiet spell
                  (no errors at all, the good direction) is not an anomaly.
- latency_5m:     p99 latency every 5 minutes: lognormal about a daily cycle, with 1 % of
                  points x1.5-2.5 that are normal heavy tail, not anomalies; 3 weeks. Three
                  single points x4, 3 hours at x1.6, one point x3 at night. Up.
- cpu_5m:         CPU % every 5 minutes, an AR(1) that wanders (phi 0.98) about a daily cycle;
                  2 weeks (NAB-like). A spike of +35, a permanent step of +25 (its window: 30
                  points). Up.
- trend_1h:       hourly, growing 50 % over 10 weeks, daily and weekly seasons, normal noise
                  (Yahoo-A3-like). Six single points at +-5 to 8 standard deviations. Both.
- irregular_1m:   a minute grid with 15 % of the points absent, 2 % NaN, timestamps jittered
                  +-10 s; daily cycle, normal noise; 10 days. Two spikes, a 60-point shift of 3
                  sd, a 20-point dip of 4 sd. Both.
- weekly_5m:      every 5 minutes, weekends at 30 % of weekdays; 5 weeks. A Wednesday that
                  behaves like a Sunday for 6 hours; a 1-hour surge x1.5 on a Saturday. Both.
- confidence_1m:  mean confidence a minute, about 0.9 +- 0.01; 1 week. An hour at 0.86, a
                  10-minute drop to 0.6. Down; an hour at 0.93 (better) is not an anomaly.
- quiet_1m:       two weeks of fault-free seasonal Poisson request counts (weekday and weekend):
                  every alarm is false. Both.
- steps_1m:       a queue length: an integer that sits at 3 (+-1 now and then) for 3 days, then
                  at 9 for good. Up.

Metrics, per stream and over all: precision (alarmed points inside a window, over all
alarmed points), recall (windows with at least one alarm), false alarms per 1,000 points
(alarms outside every window), mean detection delay (points from a window's start to its
first alarm) and points per second of `update`. Baselines: a rolling z-score (the last 60
points' mean and standard deviation, alarm past 3 sd in the bad direction) and, when the river
package is installed under .bench/river, river's HalfSpaceTrees on min-max-scaled values
behind a QuantileFilter at q = 0.995 (its documented way to turn scores into alarms), in a
subprocess.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from modelfleet.monitors.anomaly import Direction, SeasonalDetector  # noqa: E402

RIVER = ROOT / ".bench" / "river"
START = 1767571200.0  # 2026-01-05 00:00 UTC, a Monday
MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0
TOLERANCE = 5  # alarms this many points after a window's end still count as true


@dataclass
class Stream:
    name: str
    direction: Direction
    t: np.ndarray
    x: np.ndarray
    windows: list[tuple[int, int]] = field(default_factory=list)  # [start, end) in points


def daily_shape(t: np.ndarray, peak_hour: float = 15.0) -> np.ndarray:
    """A smooth working-day cycle in [-1, 1]: high in the afternoon, low before dawn."""
    hour = (t % DAY) / HOUR
    phase = 2 * math.pi * (hour - peak_hour) / 24
    return np.cos(phase) * 0.8 + 0.2 * np.cos(2 * phase)


def weekend(t: np.ndarray) -> np.ndarray:
    return (((t - START) // DAY) % 7 >= 5).astype(float)


def grid(days: float, step: float) -> np.ndarray:
    return START + np.arange(int(days * DAY / step)) * step


def at(t: np.ndarray, day: float, hour: float) -> int:
    return int(np.searchsorted(t, START + day * DAY + hour * HOUR))


def requests(rng: np.random.Generator) -> Stream:
    t = grid(21, MINUTE)
    rate = 200 * (1 + 0.6 * daily_shape(t)) * (1 - 0.4 * weekend(t))
    s = Stream("requests_1m", "both", t, np.empty(0))
    for day, hour, n, factor in ((8, 11, 3, 1.8), (10, 14, 15, 0.05), (15, 9, 120, 0.8),
                                 (17, 20, 30, 1.3)):  # fmt: skip
        i = at(t, day, hour)
        rate[i : i + n] *= factor
        s.windows.append((i, i + n))
    s.x = rng.poisson(rate).astype(float)
    return s


def errors(rng: np.random.Generator) -> Stream:
    t = grid(14, MINUTE)
    rate = 0.3 * (1 + 0.5 * daily_shape(t))
    s = Stream("errors_1m", "up", t, np.empty(0))
    for day, hour, n, level in ((6, 10, 5, 5.0), (9, 3, 30, 2.0), (12, 16, 3, 12.0)):
        i = at(t, day, hour)
        rate[i : i + n] = level
        s.windows.append((i, i + n))
    quiet = at(t, 11, 8)
    rate[quiet : quiet + 200] = 0.0
    s.x = rng.poisson(rate).astype(float)
    return s


def latency(rng: np.random.Generator) -> Stream:
    t = grid(21, 5 * MINUTE)
    x = 0.120 * (1 + 0.2 * daily_shape(t)) * np.exp(rng.normal(0, 0.25, t.size))
    heavy = rng.random(t.size) < 0.01
    x[heavy] *= rng.uniform(1.5, 2.5, heavy.sum())
    s = Stream("latency_5m", "up", t, x)
    for day, hour, n, factor in ((8, 10, 1, 4.0), (11, 15, 1, 4.0), (13, 2, 1, 4.0),
                                 (16, 12, 36, 1.6), (19, 3, 1, 3.0)):  # fmt: skip
        i = at(t, day, hour)
        x[i : i + n] *= factor
        s.windows.append((i, i + n))
    return s


def cpu(rng: np.random.Generator) -> Stream:
    t = grid(14, 5 * MINUTE)
    wander = np.zeros(t.size)
    for i in range(1, t.size):
        wander[i] = 0.98 * wander[i - 1] + rng.normal(0, 1.0)
    x = 40 + 10 * daily_shape(t) + wander + rng.normal(0, 1.0, t.size)
    s = Stream("cpu_5m", "up", t, x)
    i = at(t, 6, 13)
    x[i] += 35
    s.windows.append((i, i + 1))
    i = at(t, 10, 9)
    x[i:] += 25
    s.windows.append((i, i + 50))
    np.clip(x, 0, 100, out=x)
    return s


def trend(rng: np.random.Generator) -> Stream:
    t = grid(70, HOUR)
    level = 1000 * (1 + 0.5 * (t - START) / (70 * DAY))
    x = level * (1 + 0.3 * daily_shape(t) - 0.25 * weekend(t)) + rng.normal(0, 30, t.size)
    s = Stream("trend_1h", "both", t, x)
    for day, hour, size in ((20, 14, 8), (28, 3, -6), (35, 11, 5), (44, 20, -8), (52, 9, 6),
                            (63, 16, -5)):  # fmt: skip
        i = at(t, day, hour)
        x[i] += size * 30
        s.windows.append((i, i + 1))
    return s


def irregular(rng: np.random.Generator) -> Stream:
    t = grid(10, MINUTE)
    x = 50 + 20 * daily_shape(t) + rng.normal(0, 2.0, t.size)
    marks = np.zeros(t.size, dtype=int)
    for k, (day, hour, n, size) in enumerate(((4, 10, 1, 20.0), (5, 22, 60, 6.0),
                                              (7, 13, 1, -25.0), (8, 18, 20, -8.0))):  # fmt: skip
        i = at(t, day, hour)
        x[i : i + n] += size
        marks[i : i + n] = k + 1
    keep = rng.random(t.size) >= 0.15
    keep[marks > 0] = True  # the anomalies themselves are kept, so each can be seen
    t = t[keep] + rng.uniform(-10, 10, keep.sum())
    x, marks = x[keep], marks[keep]
    nan = (rng.random(x.size) < 0.02) & (marks == 0)
    x[nan] = np.nan
    s = Stream("irregular_1m", "both", t, x)
    for k in range(1, 5):
        where = np.flatnonzero(marks == k)
        s.windows.append((int(where[0]), int(where[-1]) + 1))
    return s


def weekly(rng: np.random.Generator) -> Stream:
    t = grid(35, 5 * MINUTE)
    rate = 400 * (1 + 0.5 * daily_shape(t)) * (1 - 0.7 * weekend(t))
    s = Stream("weekly_5m", "both", t, np.empty(0))
    i = at(t, 23, 9)  # Wednesday of the fourth week
    rate[i : i + 72] *= 0.3
    s.windows.append((i, i + 72))
    i = at(t, 26, 14)  # a Saturday
    rate[i : i + 12] *= 1.5
    s.windows.append((i, i + 12))
    s.x = rng.poisson(rate).astype(float)
    return s


def confidence(rng: np.random.Generator) -> Stream:
    t = grid(7, MINUTE)
    x = 0.9 + rng.normal(0, 0.01, t.size)
    s = Stream("confidence_1m", "down", t, x)
    i = at(t, 3, 10)
    x[i : i + 60] -= 0.04
    s.windows.append((i, i + 60))
    i = at(t, 5, 15)
    x[i : i + 10] = 0.6 + rng.normal(0, 0.01, 10)
    s.windows.append((i, i + 10))
    i = at(t, 4, 12)
    x[i : i + 60] += 0.03
    return s


def quiet(rng: np.random.Generator) -> Stream:
    t = grid(14, MINUTE)
    rate = 120 * (1 + 0.6 * daily_shape(t, peak_hour=13)) * (1 - 0.35 * weekend(t))
    return Stream("quiet_1m", "both", t, rng.poisson(rate).astype(float))


def steps(rng: np.random.Generator) -> Stream:
    t = grid(4, MINUTE)
    x = np.full(t.size, 3.0)
    jitter = rng.random(t.size) < 0.05
    x[jitter] += rng.choice([-1.0, 1.0], jitter.sum())
    i = at(t, 3, 0)
    x[i:] += 6
    s = Stream("steps_1m", "up", t, x)
    s.windows.append((i, i + 30))
    return s


STREAMS: list[Callable[[np.random.Generator], Stream]] = [
    requests,
    errors,
    latency,
    cpu,
    trend,
    irregular,
    weekly,
    confidence,
    quiet,
    steps,
]


@dataclass
class Score:
    points: int
    alarms: np.ndarray  # bool per point
    seconds: float = 0.0


def evaluate(stream: Stream, alarms: np.ndarray) -> dict[str, float]:
    inside = np.zeros(stream.x.size, dtype=bool)
    delays = []
    for start, end in stream.windows:
        inside[start : min(end + TOLERANCE, inside.size)] = True
        hits = np.flatnonzero(alarms[start : end + TOLERANCE])
        if hits.size:
            delays.append(float(hits[0]))
    true = int((alarms & inside).sum())
    total = int(alarms.sum())
    false = total - true
    return {
        "windows": len(stream.windows),
        "detected": len(delays),
        "true": true,
        "alarms": total,
        "false": false,
        "points": stream.x.size,
        "delay_sum": sum(delays),
    }


def run_ours(stream: Stream, settings: dict[str, float]) -> Score:
    detector = SeasonalDetector(stream.direction, **settings)  # type: ignore[arg-type]
    alarms = np.zeros(stream.x.size, dtype=bool)
    values = [None if math.isnan(v) else float(v) for v in stream.x]
    stamps = stream.t.tolist()
    update = detector.update
    began = time.perf_counter()
    for i, (t, x) in enumerate(zip(stamps, values, strict=True)):
        update(t, x)
        alarms[i] = detector.alarm_
    return Score(stream.x.size, alarms, time.perf_counter() - began)


def run_rolling_z(stream: Stream, window: int = 60, k: float = 3.0) -> Score:
    x = stream.x
    alarms = np.zeros(x.size, dtype=bool)
    recent: list[float] = []
    began = time.perf_counter()
    for i, v in enumerate(x.tolist()):
        if math.isnan(v):
            continue
        if len(recent) >= window:
            mean = sum(recent) / window
            sd = math.sqrt(sum((r - mean) ** 2 for r in recent) / (window - 1))
            z = (
                (v - mean) / sd
                if sd > 0
                else (0.0 if v == mean else math.copysign(math.inf, v - mean))
            )
            if stream.direction == "up":
                alarms[i] = z > k
            elif stream.direction == "down":
                alarms[i] = z < -k
            else:
                alarms[i] = abs(z) > k
            recent.pop(0)
        recent.append(v)
    return Score(x.size, alarms, time.perf_counter() - began)


RIVER_SCRIPT = """
import json, sys, time
import numpy as np
from river import anomaly, compose, preprocessing
data = np.load(sys.argv[1])
out = {}
for name in json.loads(sys.argv[2]):
    x = data[name]
    model = anomaly.QuantileFilter(
        compose.Pipeline(preprocessing.MinMaxScaler(), anomaly.HalfSpaceTrees(seed=7)), q=0.995
    )
    alarms = []
    began = time.perf_counter()
    for v in x.tolist():
        if v != v:
            alarms.append(False)
            continue
        point = {"x": v}
        score = model.score_one(point)
        alarms.append(bool(model.classify(score)))
        model.learn_one(point)
    out[name] = {"alarms": alarms, "seconds": time.perf_counter() - began}
print(json.dumps(out))
"""


def run_river(streams: list[Stream]) -> dict[str, Score] | None:
    if not (RIVER / "river").is_dir():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "streams.npz"
        np.savez(path, **{s.name: s.x for s in streams})
        done = subprocess.run(
            [sys.executable, "-c", RIVER_SCRIPT, str(path), json.dumps([s.name for s in streams])],
            env={"PYTHONPATH": str(RIVER), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
    if done.returncode != 0:
        print(f"river failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    result = json.loads(done.stdout)
    return {
        s.name: Score(s.x.size, np.array(result[s.name]["alarms"]), result[s.name]["seconds"])
        for s in streams
    }


def summarize(rows: list[dict[str, float]]) -> dict[str, float]:
    total = {k: sum(r[k] for r in rows) for k in rows[0]}
    return total


def line(name: str, m: dict[str, float], seconds: float | None) -> str:
    precision = m["true"] / m["alarms"] if m["alarms"] else math.nan
    recall = m["detected"] / m["windows"] if m["windows"] else math.nan
    far = 1000 * m["false"] / m["points"]
    delay = m["delay_sum"] / m["detected"] if m["detected"] else math.nan
    speed = f"{m['points'] / seconds:,.0f}" if seconds else ""
    found = f"{int(m['detected'])}/{int(m['windows'])}"
    return (
        f"| {name} | {int(m['points']):,} | {found} | {_f(precision)} | {_f(recall)} | "
        f"{far:.2f} | {_f(delay, 1)} | {speed} |"
    )


def _f(v: float, digits: int = 2) -> str:
    return "–" if math.isnan(v) else f"{v:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    parser.add_argument("--no-river", action="store_true")
    parser.add_argument("--set", nargs="*", default=[], help="detector settings, name=value")
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()
    settings = {k: float(v) for k, v in (s.split("=") for s in args.set)}
    for name in ("warm_up", "relearn_after"):
        if name in settings:
            settings[name] = int(settings[name])
    rounds = []
    for seed in args.seeds:
        rng = np.random.default_rng(seed)
        streams = [make(rng) for make in STREAMS]
        rounds.append([s for s in streams if not args.only or s.name in args.only])
    names = [s.name for s in rounds[0]]

    header = "| stream | points | found | precision | recall | false /1000 | delay | points/s |"
    rule = "|---|---|---|---|---|---|---|---|"
    # method -> stream name -> (summed metrics, seconds)
    totals: dict[str, dict[str, tuple[dict[str, float], float]]] = {}

    def add(method: str, stream: Stream, score: Score) -> None:
        m = evaluate(stream, score.alarms)
        before, seconds = totals.setdefault(method, {}).get(stream.name, ({}, 0.0))
        merged = {k: before.get(k, 0.0) + v for k, v in m.items()}
        totals[method][stream.name] = (merged, seconds + score.seconds)

    for streams in rounds:
        for s in streams:
            add("modelfleet", s, run_ours(s, settings))
            add("rolling z", s, run_rolling_z(s))
        river = None if args.no_river else run_river(streams)
        if river is not None:
            for s in streams:
                add("river HalfSpaceTrees", s, river[s.name])

    overall: dict[str, dict[str, float]] = {}
    for method, per_stream in totals.items():
        print(f"\n{method}\n\n{header}\n{rule}")
        for name in names:
            m, seconds = per_stream[name]
            print(line(name, m, seconds))
        overall[method] = summarize([per_stream[name][0] for name in names])
        print(line("**all**", overall[method], sum(v[1] for v in per_stream.values())))
    if len(overall) > 1:
        ours = overall["modelfleet"]
        print("\nmodelfleet against each baseline (ratios over all streams)\n")
        print("| baseline | recall | precision | false alarms |")
        print("|---|---|---|---|")
        for method, m in overall.items():
            if method == "modelfleet":
                continue
            recall = (ours["detected"] / ours["windows"]) / max(m["detected"] / m["windows"], 1e-9)
            p_ours = ours["true"] / max(ours["alarms"], 1)
            p_them = m["true"] / max(m["alarms"], 1)
            fa = ours["false"] / max(m["false"], 1)
            print(f"| {method} | {recall:.2f}x | {p_ours / max(p_them, 1e-9):.1f}x | {fa:.4f}x |")


if __name__ == "__main__":
    main()
