"""The bare FastAPI + uvicorn endpoint: the floor of a Python HTTP server.

uvicorn with `--workers N` (the same N as modelfleet's) behind one listening socket, uvloop and
httptools from `uvicorn[standard]` (FastAPI's docs, "Server Workers" and "Run a Server
Manually", recommend one worker process per core), access log off.
"""

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
    copy_app("fastapi_app.py", home)
    p = port()
    return Launch(
        argv=[
            str(python),
            "-m",
            "uvicorn",
            "fastapi_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(p),
            "--workers",
            str(ctx.workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ],  # fmt: skip
        cwd=home,
        url=f"http://127.0.0.1:{p}/predict",
        body=instances_body,
        predicted=predictions_class,
        env={"BENCH_MODEL": str(ctx.model)},
        settings={"uvicorn_workers": ctx.workers, "handler": "async def", "access_log": False},
    )


TARGET = Target(
    name="fastapi",
    title="FastAPI + uvicorn (bare)",
    requirements=("fastapi==0.165.0", "uvicorn[standard]==0.54.0"),
    reported=("fastapi", "uvicorn", "uvloop", "httptools", "scikit-learn"),
    prepare=prepare,
)
