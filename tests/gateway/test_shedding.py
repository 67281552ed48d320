"""Under overload the gateway sheds the lowest tiers first and keeps serving the highest."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx

from modelfleet.clock import SystemClock
from modelfleet.config import load_fleet
from modelfleet.gateway.app import GatewaySettings
from modelfleet.gateway.quotas import Quota
from modelfleet.registry import apply_fleet, create_key
from modelfleet.store import open_store
from modelfleet.telemetry.writer import read_rollups
from tests.gateway.conftest import start_gateway

SLOW_MODEL = """\
import time

import numpy as np


def predict(batch):
    time.sleep(2.0)  # a model busy long enough for requests to pile up, even on a loaded machine
    return np.full((len(batch["x"]), 2), 0.5)
"""

FLEET = """\
kind: Tenant
metadata: {name: big}
spec: {display_name: Big, tier: enterprise, home_region: eu, contact_email: a@big.example}
---
kind: Tenant
metadata: {name: small}
spec: {display_name: Small, tier: free, home_region: eu, contact_email: a@small.example}
---
kind: Model
metadata: {name: slow}
spec:
  input: {features: [{name: x, dtype: float64}]}
  output: {labels: [idle, busy]}
---
kind: ModelVersion
metadata: {name: v1}
spec: {model: slow, artifact: "slow.py:predict", format: python}
---
kind: Deployment
metadata: {name: slow}
spec: {model: slow, tenants: all, version: v1}
"""

BODY = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.0]}]}


def test_the_free_tier_is_shed_before_enterprise(tmp_path: Path) -> None:
    (tmp_path / "slow.py").write_text(SLOW_MODEL)
    (tmp_path / "fleet.yaml").write_text(FLEET)
    store = open_store(f"sqlite:///{tmp_path / 'fleet.db'}")
    now = SystemClock().now()
    apply_fleet(store, load_fleet([tmp_path / "fleet.yaml"]), actor="test", now=now)
    with store.begin() as conn:
        keys = {t: create_key(conn, t, actor="test", now=now).plaintext for t in ("big", "small")}
    plenty = Quota(rate=1000, burst=1000, max_in_flight=100)
    settings = GatewaySettings(max_in_flight=4, tier_quotas={"enterprise": plenty, "free": plenty})
    url, _, serving = start_gateway(store, settings)
    codes: dict[str, list[int]] = {"big": [], "small": []}

    def call(tenant: str) -> None:
        r = httpx.post(
            f"{url}/v2/models/slow/infer",
            json=BODY,
            headers={"Authorization": f"Bearer {keys[tenant]}"},
            timeout=30,
        )
        codes[tenant].append(r.status_code)
        if r.status_code == 503:
            assert r.headers["retry-after"] == "1" and "overloaded" in r.json()["error"]

    try:
        busy = [threading.Thread(target=call, args=("big",)) for _ in range(3)]
        for t in busy:
            t.start()
        deadline = time.monotonic() + 5
        while server_in_flight(url) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        call("small")  # 3 in flight >= half of 4: the free tier is shed
        call("big")  # 3 in flight < 4: enterprise still gets in
        for t in busy:
            t.join()
        serving.flush()
    finally:
        serving.stop(timeout=30)
    assert codes["small"] == [503]
    assert codes["big"] == [200, 200, 200, 200]
    with store.begin() as conn:  # a shed request counts against the tenant's availability
        rollups = read_rollups(
            conn, since=now - timedelta(minutes=5), until=now + timedelta(minutes=5)
        )
    status = {k.tenant: r.status for k, r in rollups.items()}
    assert status["small"]["5xx"] == 1 and status["big"]["2xx"] == 4


def server_in_flight(url: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith("modelfleet_requests_in_flight "):
            return float(line.split()[1])
    return 0.0
