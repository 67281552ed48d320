"""Single-row latency and rows/s of a digits classifier: direct, on a LocalBackend, micro-batched.

    .venv/bin/python benchmarks/runtime_batching.py [--seconds 3] [--replicas 2]

Model: scikit-learn LogisticRegression on load_digits (64 inputs, 10 classes), one 8x8 image
per request. Four ways to serve single-row requests:

- direct:        `predict_proba` on one row, called in a loop (no modelfleet at all)
- backend:       `await LocalBackend.infer` on one row, one request at a time
- backend x64:   64 concurrent clients awaiting `LocalBackend.infer`, no batching
- batcher x64:   64 concurrent clients awaiting `MicroBatcher.submit` in front of the backend

Latencies are per request (median and p99); rows/s is over the whole run.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import statistics
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path

import joblib
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from modelfleet.config.schema import Feature
from modelfleet.runtime import Batch, LocalBackend, MicroBatcher, Outputs, VersionSpec

CLIENTS = 64


def report(name: str, latencies: list[float], rows: int, elapsed: float) -> None:
    q = statistics.quantiles(latencies, n=100)
    print(
        f"{name:<14} median {statistics.median(latencies) * 1e6:8.1f} us   "
        f"p99 {q[98] * 1e6:8.1f} us   {rows / elapsed:10.0f} rows/s"
    )


def direct(model: LogisticRegression, rows: np.ndarray, seconds: float) -> None:
    latencies: list[float] = []
    start = time.perf_counter()
    i = 0
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        model.predict_proba(rows[i % len(rows)][None, :])
        latencies.append(time.perf_counter() - t)
        i += 1
    report("direct", latencies, i, time.perf_counter() - start)


async def clients(
    name: str, call: Callable[[Batch], Awaitable[Outputs]], images: np.ndarray, n: int, s: float
) -> None:
    latencies: list[float] = []
    done = 0
    start = time.perf_counter()

    async def client(k: int) -> None:
        nonlocal done
        i = k
        while time.perf_counter() - start < s:
            t = time.perf_counter()
            await call({"image": images[i % len(images)][None]})
            latencies.append(time.perf_counter() - t)
            done += 1
            i += n

    await asyncio.gather(*(client(k) for k in range(n)))
    report(name, latencies, done, time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--replicas", type=int, default=2)
    args = parser.parse_args()

    warnings.simplefilter("error")
    data = load_digits()
    images = data.images / 16.0
    x = images.reshape(len(images), 64)
    model = LogisticRegression(max_iter=1000).fit(x[:500], data.target[:500])

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "digits.joblib"
        joblib.dump(model, path)
        spec = VersionSpec(
            "digits",
            "v1",
            "sklearn",
            str(path),
            hashlib.sha256(path.read_bytes()).hexdigest(),
            (Feature(name="image", dtype="float64", shape=[8, 8]),),
            tuple(str(d) for d in range(10)),
        )
        backend = LocalBackend()
        backend.deploy(spec, replicas=args.replicas)
        infer = functools.partial(backend.infer, spec.ref)
        print(f"replicas={args.replicas}, {args.seconds:g} s per measurement")

        direct(model, x[500:], args.seconds)

        async def measure() -> None:
            await clients("backend", infer, images[500:], 1, args.seconds)
            await clients(f"backend x{CLIENTS}", infer, images[500:], CLIENTS, args.seconds)
            batcher = MicroBatcher(infer, max_batch_size=32, concurrency=args.replicas)
            await clients(
                f"batcher x{CLIENTS}", batcher.submit, images[500:], CLIENTS, args.seconds
            )

        asyncio.run(measure())
        backend.close()


if __name__ == "__main__":
    main()
