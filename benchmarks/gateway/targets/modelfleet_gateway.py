"""modelfleet's gateway, with telemetry on and with it off (MODELFLEET_TELEMETRY=off), and with
its model replicas on Ray Serve (`--backend ray`, one and two replicas).

It runs from the project's own venv. Each start gets a fresh SQLite store under
.bench/<name>/home: `modelfleet apply -f fleet.yaml` registers one tenant, the digits model
and its one version, `modelfleet keys create bench` issues the API key, then
`modelfleet up --workers N` serves Open Inference Protocol v2 requests. Until `modelfleet up`
exists the target is skipped with that reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from benchmarks.gateway.server import ServerFailed
from benchmarks.gateway.target import Context, Launch, Target, Unavailable, v2_body, v2_class

TENANT = "bench"

# The enterprise tier with a quota of its own far above what two cores serve, so that quotas
# never turn the load into 429s: the benchmark measures serving, not throttling. No reference data: the version profile stays empty.
FLEET = """\
# Written by benchmarks/gateway/targets/modelfleet_gateway.py; rewritten on every run.
kind: Tenant
metadata:
  name: bench
spec:
  display_name: Benchmark load generator
  tier: enterprise
  home_region: local
  contact_email: bench@modelfleet.example
  quota: {requests_per_second: 1000000, burst: 1000000, max_in_flight: 100000}
---
kind: Model
metadata:
  name: digits
spec:
  description: sklearn's 8x8 digits (64 pixels, 0-16); StandardScaler + LogisticRegression.
  input:
    features:
      - name: pixels
        dtype: float32
        shape: [64]
  output:
    labels: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
---
kind: ModelVersion
metadata:
  name: v1
spec:
  model: digits
  format: sklearn
  artifact: model.joblib
---
kind: Deployment
metadata:
  name: digits
spec:
  model: digits
  tenants: all
  version: v1
"""


_SET_REPLICAS = """
import sys
from modelfleet.clock import SystemClock
from modelfleet.registry.replicas import ReplicaTarget, set_replica_target
from modelfleet.settings import Settings
from modelfleet.store import open_store

with open_store(Settings.from_env().database_url).begin() as conn:
    set_replica_target(
        conn, "digits", "v1", ReplicaTarget(int(sys.argv[1]), 0),
        actor="benchmark", action="scale", now=SystemClock().now(),
    )
"""


def _cli(ctx: Context) -> Path:
    return ctx.root / ".venv" / "bin" / "modelfleet"


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        argv, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise ServerFailed(
            f"`modelfleet {' '.join(argv[1:])}` failed ({done.returncode}): {done.stderr.strip()}"
        )
    return done.stdout


def _prepare(
    telemetry: bool, ray_replicas: int | None = None
) -> Callable[[Context, Path, Path, Callable[[], int]], Launch]:
    def prepare(ctx: Context, home: Path, python: Path, port: Callable[[], int]) -> Launch:
        cli = _cli(ctx)
        if not cli.exists():
            raise Unavailable(f"not available yet: {cli} is missing (run `make setup`)")
        probe = subprocess.run(
            [str(cli), "up", "--help"], capture_output=True, text=True, timeout=60
        )
        if probe.returncode != 0:
            said = (probe.stdout + probe.stderr).strip()
            if "No such command" in said:
                raise Unavailable(
                    "not available yet: `modelfleet up` does not exist in this checkout"
                )
            # Anything else (an import error mid-edit, say) is a failure of this run, not a skip.
            raise ServerFailed(
                f"`modelfleet up --help` failed ({probe.returncode}): {said[-1500:]}"
            )
        store = home / "home"
        shutil.rmtree(store, ignore_errors=True)
        store.mkdir(parents=True)
        shutil.copyfile(ctx.model, home / "model.joblib")
        (home / "fleet.yaml").write_text(FLEET)
        env = {
            "MODELFLEET_HOME": str(store),
            "MODELFLEET_DATABASE_URL": "",  # SQLite under MODELFLEET_HOME, whatever the shell says
            "MODELFLEET_REDIS_URL": "",  # quotas in-process
            "MODELFLEET_ACTOR": "benchmark",
            "MODELFLEET_TELEMETRY": "on" if telemetry else "off",
        }
        _run([str(cli), "apply", "-f", "fleet.yaml"], home, env)
        key = _run([str(cli), "keys", "create", TENANT], home, env).strip().splitlines()[-1]
        backend: list[str] = []
        settings: dict[str, object] = {}
        if ray_replicas is not None:
            # The replica count as the capacity controller would write it; `up` starts a local
            # Ray cluster with the cores the other servers get.
            _run([str(ctx.project_python), "-c", _SET_REPLICAS, str(ray_replicas)], home, env)
            backend = ["--backend", "ray", "--no-control"]
            env["RAY_USAGE_STATS_ENABLED"] = "0"
            env["RAY_worker_niceness"] = "0"  # as for Ray Serve's own row
            settings = {"backend": "ray", "replicas": ray_replicas, "replica_num_cpus": 1}
        p = port()
        return Launch(
            argv=[
                str(cli),
                "up",
                "--host",
                "127.0.0.1",
                "--port",
                str(p),
                "--workers",
                str(ctx.workers),
                *backend,
            ],  # fmt: skip
            cwd=home,
            url=f"http://127.0.0.1:{p}/v2/models/digits/infer",
            body=v2_body,
            predicted=v2_class,
            env=env,
            headers={"Authorization": f"Bearer {key}"},
            settings={
                "workers": ctx.workers,
                "telemetry": telemetry,
                "tier": "enterprise",
                **settings,
            },
            ready_timeout_s=180.0 if ray_replicas is not None else 90.0,
        )

    return prepare


TELEMETRY_ON = Target(
    name="modelfleet",
    title="modelfleet (telemetry on)",
    requirements=None,
    reported=("modelfleet", "scikit-learn"),
    prepare=_prepare(telemetry=True),
)

TELEMETRY_OFF = Target(
    name="modelfleet-notelemetry",
    title="modelfleet (telemetry off)",
    requirements=None,
    reported=("modelfleet", "scikit-learn"),
    prepare=_prepare(telemetry=False),
)

ON_RAY_1 = Target(
    name="modelfleet-ray1",
    title="modelfleet on Ray Serve (1 replica)",
    requirements=None,
    reported=("modelfleet", "ray", "scikit-learn"),
    prepare=_prepare(telemetry=True, ray_replicas=1),
)

ON_RAY_2 = Target(
    name="modelfleet-ray2",
    title="modelfleet on Ray Serve (2 replicas)",
    requirements=None,
    reported=("modelfleet", "ray", "scikit-learn"),
    prepare=_prepare(telemetry=True, ray_replicas=2),
)
