"""Ray Serve: one replica per core on a local Ray (see apps/ray_app.py for the settings)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from benchmarks.gateway.target import (
    Context,
    Launch,
    Target,
    copy_app,
    instances_body,
    predictions_class,
)


def prepare(ctx: Context, home: Path, python: Path, port: Callable[[], int]) -> Launch:
    app = copy_app("ray_app.py", home)
    p = port()
    return Launch(
        argv=[str(python), str(app), str(ctx.model), str(p), str(ctx.cores)],
        cwd=home,
        url=f"http://127.0.0.1:{p}/predict",
        body=instances_body,
        predicted=predictions_class,
        env={
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_worker_niceness": "0",  # see apps/ray_app.py
        },
        ready_timeout_s=180.0,  # Ray starts its GCS, raylet, controller and proxy first
        settings={
            "num_cpus": ctx.cores,
            "num_replicas": ctx.cores,
            "replica_num_cpus": 1,
            "handler": "async def",
            "max_ongoing_requests": "default (5)",
            "worker_niceness": 0,
            "access_log": False,
        },
    )


TARGET = Target(
    name="rayserve",
    title="Ray Serve",
    requirements=("ray[serve]==2.60.0",),
    reported=("ray", "fastapi", "uvicorn", "scikit-learn"),
    prepare=prepare,
)
