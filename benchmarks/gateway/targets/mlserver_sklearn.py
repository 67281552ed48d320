"""MLServer with its scikit-learn runtime, speaking Open Inference Protocol v2 like modelfleet.

Settings (docs.seldon.ai, MLServer "Parallel Inference", and Seldon Core 2's performance
tuning guide: "adjust parallel_workers in line with the number of CPU cores"):
`parallel_workers` = cores (the default is 1), inference in those worker processes while the
main process serves HTTP; `debug: false`, which turns uvicorn's access log off; gRPC and the
metrics server on free loopback ports, unused. No adaptive batching (off by default).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from benchmarks.gateway.target import Context, Launch, Target, v2_body, v2_class


def prepare(ctx: Context, home: Path, python: Path, port: Callable[[], int]) -> Launch:
    http, grpc, metrics = port(), port(), port()
    model_dir = home / "models" / "digits"
    model_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ctx.model, model_dir / "model.joblib")
    (model_dir / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "digits",
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "version": "v1"},
            },
            indent=2,
        )
    )
    settings = {
        "host": "127.0.0.1",
        "http_port": http,
        "grpc_port": grpc,
        "metrics_port": metrics,
        "parallel_workers": ctx.cores,
        "debug": False,
        "model_repository_root": str(home / "models"),
    }
    (home / "settings.json").write_text(json.dumps(settings, indent=2))
    return Launch(
        argv=[str(python.parent / "mlserver"), "start", str(home)],
        cwd=home,
        url=f"http://127.0.0.1:{http}/v2/models/digits/infer",
        body=v2_body,
        predicted=v2_class,
        settings={"parallel_workers": ctx.cores, "debug": False, "adaptive_batching": False},
    )


TARGET = Target(
    name="mlserver",
    title="MLServer (sklearn runtime)",
    # uvloop 0.22 stopped creating a loop in get_event_loop(), which MLServer 1.7.1's inference
    # workers call at start-up ("There is no current event loop"): keep the last one it ran on.
    requirements=("mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop==0.21.0"),
    reported=("mlserver", "mlserver-sklearn", "uvloop", "scikit-learn"),
    prepare=prepare,
)
