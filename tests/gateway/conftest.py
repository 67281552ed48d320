"""A real gateway on a free loopback port, serving a digits model to three tenants."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import joblib
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelfleet.clock import SystemClock
from modelfleet.config import load_fleet
from modelfleet.gateway.app import Gateway, GatewaySettings
from modelfleet.gateway.quotas import LocalQuotas, Quota, QuotaStore
from modelfleet.gateway.server import GatewayServer, ServingThread
from modelfleet.registry import apply_fleet, create_key
from modelfleet.runtime import LocalBackend
from modelfleet.store import Store, open_store

LABELS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

FLEET = """\
kind: Tenant
metadata: {name: acme}
spec: {display_name: Acme, tier: enterprise, home_region: eu-west, contact_email: ops@acme.example}
---
kind: Tenant
metadata: {name: bolt}
spec: {display_name: Bolt, tier: free, home_region: us-east, contact_email: dev@bolt.example}
---
kind: Tenant
metadata: {name: carol}
spec: {display_name: Carol, tier: premium, home_region: us-east, contact_email: it@carol.example}
---
kind: Model
metadata: {name: digits}
spec:
  input:
    features: [{name: pixels, dtype: float32, shape: [64]}]
  output: {labels: [zero, one, two, three, four, five, six, seven, eight, nine]}
---
kind: ModelVersion
metadata: {name: v1}
spec: {model: digits, artifact: v1.joblib, format: sklearn, reference_data: reference.npz}
---
kind: ModelVersion
metadata: {name: v2}
spec: {model: digits, artifact: v2.joblib, format: sklearn}
---
kind: Deployment
metadata: {name: digits}
spec: {model: digits, tenants: [acme, bolt], version: v1}
"""


@dataclass
class Running:
    url: str
    store: Store
    server: GatewayServer
    serving: ServingThread
    keys: dict[str, str]
    fleet_dir: Path
    digits: np.ndarray
    models: dict[str, object]

    def client(self, tenant: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[tenant]}"} if tenant else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)

    def apply(self, text: str) -> None:
        path = self.fleet_dir / "change.yaml"
        path.write_text(text)
        apply_fleet(self.store, load_fleet([path]), actor="test", now=SystemClock().now())


@pytest.fixture(scope="session")
def digits_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two real scikit-learn versions of a digits classifier, trained once per session."""
    d = tmp_path_factory.mktemp("models")
    data = load_digits()
    x, y = data.data.astype(np.float32), data.target
    v1 = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)).fit(x, y)
    v2 = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=3000)).fit(x, y)
    joblib.dump(v1, d / "v1.joblib")
    joblib.dump(v2, d / "v2.joblib")
    np.savez(d / "reference.npz", pixels=x[:500], label=y[:500])
    return d


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_gateway(
    store: Store, settings: GatewaySettings, quotas: QuotaStore | None = None
) -> tuple[str, GatewayServer, ServingThread]:
    clock = SystemClock()
    gateway = Gateway(LocalBackend(), quotas or LocalQuotas(), clock, settings)
    # Tests flush explicitly (and at shutdown); a background flush would race with them.
    app = GatewayServer(gateway, store, clock, refresh_s=0.1, flush_s=3600)
    serving = ServingThread(app)
    return serving.start(), app, serving


@pytest.fixture
def gateway(tmp_path: Path, digits_models: Path) -> Iterator[Running]:
    for name in ("v1.joblib", "v2.joblib", "reference.npz"):
        (tmp_path / name).write_bytes((digits_models / name).read_bytes())
    (tmp_path / "fleet.yaml").write_text(FLEET)
    store = open_store(f"sqlite:///{tmp_path / 'fleet.db'}")
    apply_fleet(store, load_fleet([tmp_path / "fleet.yaml"]), actor="test", now=SystemClock().now())
    with store.begin() as conn:
        keys = {
            t: create_key(conn, t, actor="test", now=SystemClock().now()).plaintext
            for t in ("acme", "bolt", "carol")
        }
    quotas = {
        "enterprise": Quota(rate=100_000, burst=100_000, max_in_flight=1000),
        "premium": Quota(rate=100_000, burst=100_000, max_in_flight=1000),
        "standard": Quota(rate=100_000, burst=100_000, max_in_flight=1000),
        "free": Quota(rate=1, burst=3, max_in_flight=2),
    }
    url, app, serving = start_gateway(store, GatewaySettings(region="eu-west", tier_quotas=quotas))
    data = load_digits().data.astype(np.float32)
    models = {v: joblib.load(digits_models / f"{v}.joblib") for v in ("v1", "v2")}
    try:
        yield Running(url, store, app, serving, keys, tmp_path, data, models)
    finally:
        serving.stop(timeout=30)
        assert not serving.thread.is_alive(), "the gateway did not shut down"


def infer_body(rows: np.ndarray, request_id: str | None = None) -> dict[str, object]:
    body: dict[str, object] = {
        "inputs": [
            {
                "name": "pixels",
                "shape": list(rows.shape),
                "datatype": "FP32",
                "data": rows.ravel().tolist(),
            }
        ]
    }
    if request_id is not None:
        body["id"] = request_id
    return body


def wait_for(condition: object, timeout: float = 5.0) -> None:
    """Poll a condition that another thread makes true (routes refresh every 0.1 s here)."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)
