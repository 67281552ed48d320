"""Drift of 20 features over a million rows: modelfleet's statistics against Evidently's preset.

    .venv/bin/python benchmarks/drift.py [--rows 1000000] [--repeats 7] [--evidently-repeats 3]

Data (seeded): reference and current sets of `--rows` rows x 20 float features, f00-f19, of
four shapes (normal, lognormal, uniform, Student t with 5 dof) at different locations and
scales. The current set is drawn afresh from the same distributions except five features:
f02, f07, f11 shifted by +0.5 of the feature's standard deviation, f15 and f18 spread x1.5
about their mean. The data is made in C (row-major) order, as np.load or a stacked batch gives
it.

Timed, each the median of `--repeats` runs after one warm-up run:

- raw:      `drift_raw(reference, current)`: PSI and JS on the reference's decile bins and the
            exact two-sample KS statistic, for all 20 features, from the raw values.
- rollups:  `psi`, `ks_binned` and `js_distance` over the 20 pairs of count vectors: what a
            monitor does with the histograms the gateway keeps. The `Histogram`s (reference
            decile edges, one for each set) are built once, untimed: the gateway fills them
            incrementally as traffic passes.
- Evidently: `Report(metrics=[DataDriftPreset()]).run(current, reference)` on the same data,
            in its own venv under .bench/evidently/ (created on first use), in a subprocess that
            loads the arrays from .npy files and times only `run`, after one warm-up run.

Flags. Ours: PSI >= 0.1 (the lower edge of the usual "moderate shift" band); KS above a learned
threshold (mean + 3 sd of the reference's ten chunks against the whole) is shown beside it as a
cross-check. Evidently: its own per-column verdict (with more than 1,000 rows it uses the
normed Wasserstein distance, drift at >= 0.1).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.gateway import venvs  # noqa: E402
from modelfleet.stats import (  # noqa: E402
    Histogram,
    drift_raw,
    js_distance,
    ks_binned,
    learned_threshold,
    psi,
    quantile_edges,
)

FEATURES = 20
MEAN_SHIFTED = (2, 7, 11)  # + 0.5 sd
SPREAD = (15, 18)  # x 1.5 about the mean
PSI_FLAG = 0.1
EVIDENTLY = ["evidently==0.7.23", "pandas==2.3.3"]  # evidently 0.7 does not import on pandas 3
HOME = ROOT / ".bench" / "evidently"

EVIDENTLY_RUN = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np, pandas as pd
    import evidently
    from evidently import Report
    from evidently.presets import DataDriftPreset

    folder, repeats = sys.argv[1], int(sys.argv[2])
    names = json.loads(open(f"{folder}/names.json").read())
    reference = pd.DataFrame(np.load(f"{folder}/reference.npy"), columns=names)
    current = pd.DataFrame(np.load(f"{folder}/current.npy"), columns=names)
    seconds = []
    for i in range(repeats + 1):  # the first is a warm-up
        report = Report(metrics=[DataDriftPreset()])
        start = time.perf_counter()
        snapshot = report.run(current, reference)
        if i:
            seconds.append(time.perf_counter() - start)
    columns = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            method, threshold = config["method"], float(config["threshold"])
            value = float(metric["value"])
            # p-value tests flag below the threshold, distances (Wasserstein, PSI) at or above it
            drifted = bool(value < threshold if "p_value" in method else value >= threshold)
            columns[config["column"]] = {
                "method": method, "threshold": threshold, "value": value, "drifted": drifted
            }
    print(json.dumps({"version": evidently.__version__, "seconds": seconds, "columns": columns}))
    """
)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--rows", type=int, default=1_000_000, help="rows in each set (1000000)")
    p.add_argument("--repeats", type=int, default=7, help="timed runs of ours (7)")
    p.add_argument("--evidently-repeats", type=int, default=3, help="timed Evidently runs (3)")
    return p.parse_args(argv)


def names() -> list[str]:
    return [f"f{j:02d}" for j in range(FEATURES)]


def draw(rng: np.random.Generator, rows: int) -> np.ndarray:
    """One set: feature j has shape j % 4 (normal, lognormal, uniform, t5) at its own scale."""
    data = np.empty((rows, FEATURES))
    for j in range(FEATURES):
        shape = j % 4
        if shape == 0:
            column = rng.normal(size=rows)
        elif shape == 1:
            column = rng.lognormal(0.0, 0.5, size=rows)
        elif shape == 2:
            column = rng.uniform(-1.0, 1.0, size=rows)
        else:
            column = rng.standard_t(5, size=rows)
        data[:, j] = 10.0 * j + (1.0 + j / 4) * column
    return data


def datasets(rows: int) -> tuple[np.ndarray, np.ndarray]:
    reference = draw(np.random.default_rng(20261129), rows)
    current = draw(np.random.default_rng(20261130), rows)
    mean, sd = reference.mean(axis=0), reference.std(axis=0)
    for j in MEAN_SHIFTED:
        current[:, j] += 0.5 * sd[j]
    for j in SPREAD:
        current[:, j] = mean[j] + 1.5 * (current[:, j] - mean[j])
    return reference, current


def timed(run: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    """Seconds of each of `repeats` runs after one warm-up run, and the last result."""
    result = run()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - start)
    return seconds, result


def rollup_statistics(
    pairs: list[tuple[tuple[int, ...], tuple[int, ...]]],
) -> list[tuple[float, float, float]]:
    return [(psi(e, a), ks_binned(e, a), js_distance(e, a)) for e, a in pairs]


def run_evidently(reference: np.ndarray, current: np.ndarray, repeats: int) -> dict[str, Any]:
    print(f"Evidently: venv {HOME / 'venv'} ...", end="", flush=True)
    python = venvs.ensure(HOME, EVIDENTLY, HOME / "install.log")
    print(" ok; running its preset ...", flush=True)
    with tempfile.TemporaryDirectory(prefix="drift-bench-") as folder:
        np.save(Path(folder) / "reference.npy", reference)
        np.save(Path(folder) / "current.npy", current)
        (Path(folder) / "names.json").write_text(json.dumps(names()))
        (Path(folder) / "run.py").write_text(EVIDENTLY_RUN)
        out = subprocess.run(
            [str(python), str(Path(folder) / "run.py"), folder, str(repeats)],
            capture_output=True,
            text=True,
            timeout=3600,
        )
    if out.returncode != 0:
        raise SystemExit(f"Evidently failed:\n{out.stderr[-3000:]}")
    found: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return found


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def seconds_text(seconds: list[float]) -> str:
    return " / ".join(f"{s:.4g}" for s in seconds)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    cores = len(os.sched_getaffinity(0))
    print(
        f"{platform.node()}: {cores} cores ({cpu_model()}), Python {platform.python_version()}, "
        f"numpy {np.__version__}; {args.rows:,} rows x {FEATURES} features in each set"
    )
    reference, current = datasets(args.rows)

    raw_seconds, raw = timed(lambda: drift_raw(reference, current), args.repeats)

    histograms = []
    for j in range(FEATURES):
        edges = quantile_edges(reference[:, j])
        expected, actual = Histogram(edges), Histogram(edges)
        expected.add_many(reference[:, j])
        actual.add_many(current[:, j])
        histograms.append((expected.counts, actual.counts))
    # One pass over 20 features takes microseconds: time 1000 passes, report per pass.
    passes = 1000
    batch_seconds, rolled = timed(
        lambda: [rollup_statistics(histograms) for _ in range(passes)][-1], args.repeats
    )
    rollup_seconds = [s / passes for s in batch_seconds]
    thresholds = [
        learned_threshold(reference[:, j], "ks", chunks=10, sigmas=3.0) for j in range(FEATURES)
    ]

    evidently = run_evidently(reference, current, args.evidently_repeats)
    columns = evidently["columns"]

    print(
        f"\n{'feature':<8} {'change':<8} {'PSI':>8} {'KS':>7} {'KS limit':>8} {'JS':>7} "
        f"{'ours':<6} {'KS>limit':<8} {'rollup PSI':>10} {'Evidently':>9}"
    )
    ours_flagged, theirs_flagged = [], []
    for j, name in enumerate(names()):
        change = "+0.5 sd" if j in MEAN_SHIFTED else "sd x1.5" if j in SPREAD else ""
        flagged = bool(raw.psi[j] >= PSI_FLAG)
        theirs = columns[name]
        if flagged:
            ours_flagged.append(name)
        if theirs["drifted"]:
            theirs_flagged.append(name)
        print(
            f"{name:<8} {change:<8} {raw.psi[j]:8.5f} {raw.ks[j]:7.4f} {thresholds[j]:8.4f} "
            f"{raw.js[j]:7.4f} {'DRIFT' if flagged else '-':<6} "
            f"{'yes' if raw.ks[j] > thresholds[j] else '-':<8} {rolled[j][0]:10.5f} "
            f"{theirs['value']:9.4f} {'DRIFT' if theirs['drifted'] else '-'}"
        )
    method = {c["method"] for c in columns.values()}
    print(
        f"\nours: DRIFT when PSI >= {PSI_FLAG}; KS>limit: KS above its learned threshold. "
        f"Evidently {evidently['version']}: {', '.join(sorted(method))}, its own verdict"
    )
    shifted = [names()[j] for j in sorted(MEAN_SHIFTED + SPREAD)]
    print(f"shifted:         {', '.join(shifted)}")
    print(f"ours flagged:    {', '.join(ours_flagged) or 'none'}")
    print(f"Evidently:       {', '.join(theirs_flagged) or 'none'}")
    agree = ours_flagged == theirs_flagged == shifted
    print(f"the same five:   {'yes' if agree else 'NO'}")

    raw_s = statistics.median(raw_seconds)
    rollup_s = statistics.median(rollup_seconds)
    evidently_s = statistics.median(evidently["seconds"])
    print(f"\n{'how (20 features)':<44} {'median s':>10}  {'Evidently / this':>16}  runs (s)")
    for label, median, runs in (
        ("drift_raw: PSI, exact KS, JS from raw rows", raw_s, raw_seconds),
        ("psi, ks_binned, js_distance on rollups", rollup_s, rollup_seconds),
        ("Evidently Report(DataDriftPreset()).run", evidently_s, evidently["seconds"]),
    ):
        print(f"{label:<44} {median:10.4g}  {evidently_s / median:15,.0f}x  {seconds_text(runs)}")
    goal = evidently_s / raw_s
    print(
        f"\ngoal Evidently / ours >= 20x from raw rows: {goal:.0f}x ({'met' if goal >= 20 else 'NOT met'})"
    )
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
