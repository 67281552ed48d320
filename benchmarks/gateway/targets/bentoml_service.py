"""BentoML: a `@bentoml.service` with one worker process per core (see apps/bentoml_service.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.gateway.target import Context, Launch, Target, copy_app, instances_body


def _class(response: Any) -> int | None:
    """BentoML returns the API's list itself: `[k]`."""
    return int(response[0])


def prepare(ctx: Context, home: Path, python: Path, port: Callable[[], int]) -> Launch:
    copy_app("bentoml_service.py", home)
    p = port()
    return Launch(
        argv=[
            str(python.parent / "bentoml"),
            "serve",
            "bentoml_service:Digits",
            "--host",
            "127.0.0.1",
            "--port",
            str(p),
        ],  # fmt: skip
        cwd=home,
        url=f"http://127.0.0.1:{p}/predict",
        body=instances_body,
        predicted=_class,
        env={
            "BENCH_MODEL": str(ctx.model),
            "BENCH_WORKERS": str(ctx.cores),
            "BENTOML_HOME": str(home / "bentoml-home"),
            "BENTOML_DO_NOT_TRACK": "true",
        },
        settings={"workers": ctx.cores, "api": "sync (thread pool)", "access_log": False},
    )


TARGET = Target(
    name="bentoml",
    title="BentoML",
    requirements=("bentoml==1.4.40",),
    reported=("bentoml", "scikit-learn"),
    prepare=prepare,
)
