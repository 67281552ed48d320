"""`modelfleet up` as a user runs it: a real process, SIGTERM, several workers sharing Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_digits

from modelfleet.store import open_store
from modelfleet.telemetry.writer import read_rollups
from tests.gateway.conftest import FLEET, _free_port, infer_body

REDIS_URL = os.environ.get("MODELFLEET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "modelfleet", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def fleet_env(tmp_path: Path, digits_models: Path) -> dict[str, str]:
    for name in ("v1.joblib", "v2.joblib", "reference.npz"):
        (tmp_path / name).write_bytes((digits_models / name).read_bytes())
    (tmp_path / "fleet.yaml").write_text(FLEET)
    env = {**os.environ, "MODELFLEET_HOME": str(tmp_path / "home"), "MODELFLEET_ACTOR": "test"}
    env.pop("MODELFLEET_DATABASE_URL", None)
    _cli(env, "apply", "-f", str(tmp_path / "fleet.yaml"))
    return env


def _start(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelfleet", "up", "--port", str(port), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
        if proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"modelfleet up did not become ready: {proc.communicate()[0]}")


@pytest.fixture
def rows() -> Iterator[np.ndarray]:
    yield load_digits().data.astype(np.float32)[:4]


def test_sigterm_finishes_requests_in_flight_flushes_telemetry_and_exits_0(
    fleet_env: dict[str, str], rows: np.ndarray
) -> None:
    key = _cli(fleet_env, "keys", "create", "acme").strip()
    proc, url = _start(fleet_env)
    headers = {"Authorization": f"Bearer {key}"}

    def call(_: int) -> int:
        try:
            return httpx.post(
                f"{url}/v2/models/digits/infer",
                json=infer_body(rows[:1]),
                headers=headers,
                timeout=30,
            ).status_code
        except httpx.TransportError:
            return 0  # not accepted: the server had stopped listening

    try:
        with ThreadPoolExecutor(8) as pool:
            first = list(pool.map(call, range(40)))
            late = [pool.submit(call, i) for i in range(40)]
            proc.send_signal(signal.SIGTERM)
            codes = first + [f.result() for f in late]
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert set(codes) <= {200, 0} and codes.count(200) >= 40
    store = open_store(f"sqlite:///{fleet_env['MODELFLEET_HOME']}/fleet.db")
    now = datetime.now(UTC)
    with store.begin() as conn:
        rollups = read_rollups(
            conn, since=now - timedelta(minutes=5), until=now + timedelta(minutes=1)
        )
    store.close()
    assert sum(r.status["2xx"] for r in rollups.values()) == codes.count(200)


@pytest.mark.redis
def test_workers_share_one_quota_through_redis(fleet_env: dict[str, str], rows: np.ndarray) -> None:
    env = {**fleet_env, "MODELFLEET_REDIS_URL": REDIS_URL}
    key = _cli(env, "keys", "create", "bolt").strip()  # free tier: burst 10, 5 requests/s
    proc, url = _start(env, "--workers", "2")
    try:
        started = time.monotonic()
        with httpx.Client(headers={"Authorization": f"Bearer {key}"}) as c:
            codes = [
                c.post(f"{url}/v2/models/digits/infer", json=infer_body(rows[:1])).status_code
                for _ in range(30)
            ]
        elapsed = time.monotonic() - started
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert set(codes) <= {200, 429}
    assert codes.count(200) <= 10 + 5 * elapsed + 1  # one bucket, whichever worker answered
    assert codes.count(429) > 0


def test_up_on_an_unusable_store_exits_1(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MODELFLEET_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/none",
    }
    done = subprocess.run(
        [sys.executable, "-m", "modelfleet", "up"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "cannot reach the store" in done.stderr


def test_up_on_a_port_already_in_use_exits_1(fleet_env: dict[str, str]) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "modelfleet", "up", "--port", str(port), "--workers", "2"],
            env=fleet_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in done.stderr


def test_every_worker_serves_requests(fleet_env: dict[str, str], rows: np.ndarray) -> None:
    key = _cli(fleet_env, "keys", "create", "acme").strip()
    proc, url = _start(fleet_env, "--workers", "2")
    try:
        clients = [httpx.Client(headers={"Authorization": f"Bearer {key}"}) for _ in range(16)]
        for c in clients:  # sixteen keep-alive connections, opened at once
            c.post(f"{url}/v2/models/digits/infer", json=infer_body(rows[:1]))
        metrics = [c.get(f"{url}/metrics").text for c in clients]
        for c in clients:
            c.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    # Each worker has its own metrics, created when it first served: two creation times, two workers.
    created = {
        line
        for m in metrics
        for line in m.splitlines()
        if line.startswith("modelfleet_requests_created{")
    }
    assert len(created) == 2


def test_up_runs_the_control_loop_which_gates_a_newly_declared_version(
    fleet_env: dict[str, str], tmp_path: Path, rows: np.ndarray
) -> None:
    proc, url = _start(fleet_env, "--tick", "0.2")
    try:
        fleet = (tmp_path / "fleet.yaml").read_text()
        declared = fleet.replace(
            "spec: {model: digits, tenants: [acme, bolt], version: v1}",
            "spec: {model: digits, tenants: [acme, bolt], version: v2, "
            "strategy: {type: canary, steps: [50, 100]}}",
        )
        assert declared != fleet
        (tmp_path / "fleet.yaml").write_text(declared)
        _cli(fleet_env, "apply", "-f", str(tmp_path / "fleet.yaml"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = _cli(fleet_env, "rollout", "status")
            if "refused" in status:
                break
            time.sleep(0.3)
        # v2 has no evaluation data: the gate refuses it, and v1 keeps every request.
        assert "refused" in status
        detail = _cli(fleet_env, "rollout", "status", "digits", "-o", "json")
        assert "no evaluation data" in detail
        key = _cli(fleet_env, "keys", "create", "acme").strip()
        deadline = time.monotonic() + 10
        while True:  # the gateway learns of the new key within its refresh interval
            r = httpx.post(
                f"{url}/v2/models/digits/infer",
                json=infer_body(rows[:1]),
                headers={"Authorization": f"Bearer {key}"},
            )
            if r.status_code != 401 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert r.status_code == 200 and r.json()["model_version"] == "v1"
    finally:
        proc.send_signal(signal.SIGTERM)
        log, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, log
    assert "rollout.refused digits" in log  # the control loop says what it decided
