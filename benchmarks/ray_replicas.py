"""Replicas on Ray Serve: how throughput grows from one replica to two, for two kinds of model.

    .venv/bin/python benchmarks/ray_replicas.py [--seconds 15] [--concurrency 32]

The gateway's HTTP layer is left out: a driver on the event loop submits one-row requests
through the gateway's own `MicroBatcher` (concurrency = replicas, as the gateway sets it) to a
`RayBackend` on a local Ray cluster, `--concurrency` requests in flight, for `--seconds` after
a warm-up, with one and then two replicas of each model:

- **light**: StandardScaler + LogisticRegression on sklearn's digits (the gateway benchmark's
  model, trained here from data bundled with scikit-learn), about 0.1 ms per row: the cost is
  the Ray call and the driver, not the model;
- **accelerator-bound**: a Python model that holds each batch for 20 ms without using the
  CPU, as a model on a GPU or a remote accelerator does, then answers uniform
  probabilities: the cost is the replica's time, not this machine's cores.

It prints requests/s, p50 and the two-to-one ratio per model; and first, what one call costs:
the median of 200 one-row calls made one after another, one replica on Ray against the same
model in-process (`LocalBackend`).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
import time
from pathlib import Path

import joblib
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_worker_niceness", "0")  # as the gateway benchmark's Ray Serve row

from modelfleet.config.schema import Feature  # noqa: E402
from modelfleet.runtime import Backend, LocalBackend, MicroBatcher, VersionSpec  # noqa: E402
from modelfleet.runtime.ray import RayBackend, join_cluster  # noqa: E402

LABELS = tuple(str(d) for d in range(10))


ACCELERATOR = """\
import time

import numpy as np


def predict(batch):
    time.sleep(0.02)  # the batch's time on the accelerator; this host's CPU is free meanwhile
    return np.full((len(batch["pixels"]), 10), 0.1)
"""


def prepare(folder: Path) -> dict[str, VersionSpec]:
    folder.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    light = folder / "light.joblib"
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    joblib.dump(model.fit(digits.data.astype(np.float32), digits.target), light)
    accelerator = folder / "accelerator.py"
    accelerator.write_text(ACCELERATOR)
    return {
        "light": spec("light", "sklearn", str(light), light),
        "accelerator-bound": spec("accel", "python", f"{accelerator}:predict", accelerator),
    }


def spec(name: str, format: str, artifact: str, path: Path) -> VersionSpec:
    return VersionSpec(
        model=f"bench-{name}",
        version="v1",
        format=format,  # type: ignore[arg-type]
        artifact=artifact,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        features=(Feature(name="pixels", dtype="float32", shape=[64]),),
        labels=LABELS,
    )


async def drive(
    backend: RayBackend, version: VersionSpec, replicas: int, seconds: float, concurrency: int
) -> tuple[float, float]:
    rows = load_digits().data.astype(np.float32)
    batcher = MicroBatcher(
        lambda batch: backend.infer(version.ref, batch), 32, 0.002, concurrency=replicas
    )
    latencies: list[float] = []
    measuring = False
    deadline = 0.0

    async def client(n: int) -> None:
        i = n
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            await batcher.submit({"pixels": rows[i % len(rows) : i % len(rows) + 1]})
            if measuring:
                latencies.append(time.perf_counter() - start)
            i += concurrency

    deadline = time.perf_counter() + 3.0  # warm-up
    await asyncio.gather(*(client(n) for n in range(concurrency)))
    measuring, deadline = True, time.perf_counter() + seconds
    await asyncio.gather(*(client(n) for n in range(concurrency)))
    return len(latencies) / seconds, float(np.median(latencies) * 1000)


async def one_by_one(backend: Backend, version: VersionSpec, calls: int = 200) -> float:
    """The median ms of `calls` one-row calls made one after another, after 20 to warm up."""
    rows = load_digits().data.astype(np.float32)
    took = []
    for i in range(calls + 20):
        start = time.perf_counter()
        await backend.infer(version.ref, {"pixels": rows[i : i + 1]})
        took.append(time.perf_counter() - start)
    return float(np.median(took[20:]) * 1000)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--seconds", type=float, default=15.0, help="measured seconds per run (15)")
    p.add_argument("--concurrency", type=int, default=128, help="requests in flight (128)")
    args = p.parse_args()
    versions = prepare(ROOT / ".bench" / "ray-replicas")
    print(f"a local Ray cluster with {os.cpu_count()} CPUs; {args.concurrency} one-row requests")
    join_cluster(None)
    backend = RayBackend(undeploy_grace_s=0.0)
    light = versions["light"]
    local = LocalBackend()
    local.deploy(light, 1)
    backend.deploy(light, 1)
    on_ray, here = asyncio.run(one_by_one(backend, light)), asyncio.run(one_by_one(local, light))
    print(f"one call, one row, light model: {on_ray:.2f} ms on Ray, {here:.2f} ms in-process")
    local.close()
    print(f"{'model':<18}{'replicas':>9}{'req/s':>9}{'p50 ms':>9}")
    for name, version in versions.items():
        rates = []
        for replicas in (1, 2):
            if replicas == 1:
                if not backend.health(version.ref).serving:  # light is, since one_by_one
                    backend.deploy(version, 1)
            else:
                backend.scale(version.ref, replicas)
                while backend.health(version.ref).replicas != replicas:
                    time.sleep(0.2)
            rate, p50 = asyncio.run(
                drive(backend, version, replicas, args.seconds, args.concurrency)
            )
            rates.append(rate)
            print(f"{name:<18}{replicas:>9}{rate:>9,.0f}{p50:>9.2f}")
        print(f"{name:<18}{'2 vs 1':>9}{rates[1] / rates[0]:>8.2f}x")
        backend.undeploy(version.ref)


if __name__ == "__main__":
    main()
