"""The gateway benchmark, in one command: `python benchmarks/gateway/run.py`.

Serves one digits model with each server in turn (modelfleet with telemetry on and off, a bare
FastAPI endpoint, BentoML, MLServer, Ray Serve), each from its own venv under .bench/, and loads
it with wrk on loopback: one-row requests at each concurrency, a warm-up, then a measured run,
repeated. Prints a table per repeat, then the medians and the issue's goals as ratios, and
writes everything to .bench/results.json. README.md beside this file says more.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.gateway import proctree, report, venvs, wrk  # noqa: E402
from benchmarks.gateway.report import Measurement  # noqa: E402
from benchmarks.gateway.server import Server, ServerFailed, free_port  # noqa: E402
from benchmarks.gateway.target import Context, Target, Unavailable  # noqa: E402
from benchmarks.gateway.targets import TARGETS  # noqa: E402

BENCH = ROOT / ".bench"


def parse(argv: list[str] | None) -> argparse.Namespace:
    names = [t.name for t in TARGETS]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--duration", type=int, default=20, help="measured seconds per run (20)")
    p.add_argument("--warmup", type=int, default=5, help="warm-up seconds before each run (5)")
    p.add_argument("--concurrency", type=int, nargs="+", default=[16, 64], help="(16 64)")
    p.add_argument("--repeats", type=int, default=2, help="times through every server (2)")
    p.add_argument("--workers", type=int, default=2, help="modelfleet and FastAPI workers (2)")
    p.add_argument("--only", nargs="+", choices=names, metavar="NAME", help=f"of {names}")
    return p.parse_args(argv)


def cores() -> int:
    """The cores this process may run on: what the frameworks are sized for."""
    return len(os.sched_getaffinity(0))


def ensure_model(ctx: Context) -> dict[str, Any]:
    """Train the model with the project's venv unless it is there at the same sklearn version."""
    rows_file = ctx.bench / "rows.json"
    if not ctx.project_python.exists():
        raise SystemExit(f"{ctx.project_python} is missing: run `make setup` first")
    version = venvs.project_version(ctx.project_python, "scikit-learn")
    if ctx.model.exists() and rows_file.exists():
        data: dict[str, Any] = json.loads(rows_file.read_text())
        if data["scikit_learn"] == version:
            return data
    print(f"training the digits model with scikit-learn {version} ...", flush=True)
    subprocess.run(
        [str(ctx.project_python), str(Path(__file__).parent / "digits.py"), str(ctx.bench)],
        check=True,
        timeout=600,
    )
    trained: dict[str, Any] = json.loads(rows_file.read_text())
    return trained


def install(target: Target, ctx: Context, sklearn: str) -> Path:
    """The python a target runs with: its own venv's, or the project's for modelfleet."""
    if target.requirements is None:
        return ctx.project_python
    home = ctx.bench / target.name
    home.mkdir(parents=True, exist_ok=True)
    print(f"  {target.name}: venv {home / 'venv'} ...", end="", flush=True)
    python = venvs.ensure(
        home, [*target.requirements, f"scikit-learn=={sklearn}"], home / "install.log"
    )
    print(" ok", flush=True)
    return python


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(
    target: Target,
    python: Path,
    ctx: Context,
    model: dict[str, Any],
    repeat: int,
    args: argparse.Namespace,
    wrk_path: str,
    record: dict[str, Any],
) -> list[Measurement]:
    """Start one server, check it, load it at each concurrency, and always stop it."""
    home = ctx.bench / target.name
    home.mkdir(parents=True, exist_ok=True)
    launch = target.prepare(ctx, home, python, free_port)
    record["settings"] = launch.settings
    rows: list[list[float]] = model["rows"]
    script = wrk.write_script(home / "load.lua", [launch.body(r) for r in rows], launch.headers)
    found: list[Measurement] = []
    started = time.monotonic()
    with Server(target.name, launch, home / "server.log") as server:
        server.wait_ready(rows[0])
        record.setdefault("startup_s", []).append(round(time.monotonic() - started, 1))
        record["sample"] = server.check_predictions(rows[:8], model["predictions"][:8])
        for c in args.concurrency:
            if args.warmup > 0:
                wrk.run(wrk_path, launch.url, script, c, args.warmup)
            t0, cpu0, busy0, wrk0 = (
                time.monotonic(),
                server.cpu_by_process(),
                proctree.machine_busy_seconds(),
                _children_cpu(),
            )
            load = wrk.run(wrk_path, launch.url, script, c, args.duration)
            wall = time.monotonic() - t0
            cpu1 = server.cpu_by_process()
            # Processes that ended during the run are not counted; in steady state there are none.
            by_process = sorted(
                (
                    (name, (used - cpu0.get(pid, (name, 0.0))[1]) / wall)
                    for pid, (name, used) in cpu1.items()
                ),
                key=lambda nc: -nc[1],
            )
            server_cores = sum(cores for _, cores in by_process)
            wrk_cores = (_children_cpu() - wrk0) / wall
            busy = (proctree.machine_busy_seconds() - busy0) / wall
            m = Measurement(
                target=target.name,
                repeat=repeat,
                concurrency=c,
                duration_s=round(load.duration_s, 3),
                ok=load.ok,
                rps=load.ok / load.duration_s,
                p50_ms=load.latency_us["p50"] / 1000,
                p90_ms=load.latency_us["p90"] / 1000,
                p99_ms=load.latency_us["p99"] / 1000,
                max_ms=load.latency_us["max"] / 1000,
                errors=load.errors,
                statuses=load.statuses,
                server_cores=round(server_cores, 3),
                busiest=[(name, round(cores, 3)) for name, cores in by_process[:4]],
                wrk_cores=round(wrk_cores, 3),
                other_cores=round(max(0.0, busy - server_cores - wrk_cores), 3),
            )
            print(report.row(m), flush=True)
            found.append(m)
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    BENCH.mkdir(exist_ok=True)
    ctx = Context(
        root=ROOT, bench=BENCH, model=BENCH / "model.joblib", workers=args.workers, cores=cores()
    )
    chosen = [t for t in TARGETS if args.only is None or t.name in args.only]
    wrk_path = wrk.ensure_installed()
    model = ensure_model(ctx)
    sklearn = model["scikit_learn"]

    print(f"installing servers (pinned; scikit-learn {sklearn} everywhere) ...", flush=True)
    pythons: dict[str, Path] = {}
    records: dict[str, dict[str, Any]] = {}
    failures: list[dict[str, Any]] = []
    for t in chosen:
        records[t.name] = {"title": t.title}
        try:
            pythons[t.name] = install(t, ctx, sklearn)
        except venvs.InstallFailed as e:
            print(f" FAILED\n{e}", flush=True)
            failures.append({"target": t.name, "repeat": None, "reason": str(e)})
            continue
        records[t.name]["versions"] = venvs.versions(pythons[t.name], t.reported)

    print(
        f"\n{platform.node()}: {cores()} cores; wrk 1 thread, loopback; {args.duration} s runs after "
        f"{args.warmup} s warm-up; concurrency {args.concurrency}; {args.repeats} repeat(s); "
        f"modelfleet and FastAPI with {args.workers} workers, the frameworks sized for {cores()} cores"
    )
    for t in chosen:
        if t.name in pythons:
            versions = ", ".join(f"{k} {v}" for k, v in records[t.name]["versions"].items())
            print(f"  {t.name:<24}{versions}")

    measurements: list[Measurement] = []
    skipped: set[str] = set()
    for repeat in range(1, args.repeats + 1):
        # Alternate the order so that slow drift on a shared machine falls on every server alike.
        order = [t for t in chosen if t.name in pythons]
        order = order if repeat % 2 else order[::-1]
        print(f"\nrepeat {repeat}/{args.repeats}\n{report.HEADER}", flush=True)
        for t in order:
            if t.name in skipped:
                continue
            try:
                measurements += measure(
                    t, pythons[t.name], ctx, model, repeat, args, wrk_path, records[t.name]
                )
            except Unavailable as e:
                print(f"{t.name:<24}skipped: {e}", flush=True)
                skipped.add(t.name)
                failures.append({"target": t.name, "repeat": repeat, "reason": f"skipped: {e}"})
            except (ServerFailed, wrk.WrkFailed) as e:
                print(f"{t.name:<24}FAILED: {e}", flush=True)
                failures.append({"target": t.name, "repeat": repeat, "reason": str(e)})

    summaries = report.summarize(measurements)
    high = 64 if 64 in args.concurrency else max(args.concurrency)
    low = 16 if 16 in args.concurrency else min(args.concurrency)
    found, bars = report.goals(summaries, high, low)
    measured = any(m.target == report.MODELFLEET for m in measurements)
    print(
        f"\nsummary: medians over repeats\n{report.summary_table(summaries, [t.name for t in chosen])}"
    )
    print("\n" + report.goals_text(found, bars, measured))
    note = report.interference_note(measurements)
    if note:
        print("\n" + note)
    uneven = report.imbalance_notes(measurements)
    if uneven:
        print("\nload on one process only (the others idle):", *uneven, sep="\n")
    if failures:
        print("\nnot measured:")
        for f in failures:
            print(f"  {f['target']} (repeat {f['repeat']}): {f['reason'].splitlines()[0]}")

    results = {
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"host": platform.node(), "cores": cores(), "python": platform.python_version()},
        "settings": vars(args),
        "model": {
            "scikit_learn": sklearn,
            "accuracy": model["accuracy"],
            "rows": len(model["rows"]),
        },
        "targets": records,
        "measurements": [asdict(m) for m in measurements],
        "summary": [
            {"target": t, "concurrency": c, **asdict(s)} for (t, c), s in summaries.items()
        ],
        "goals": [asdict(g) for g in found],
        "failures": failures,
    }
    out = BENCH / "results.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"\nraw results: {out}")
    return 0 if not failures or all(f["reason"].startswith("skipped") for f in failures) else 1


if __name__ == "__main__":
    sys.exit(main())
