"""Categorical (string) features: counted in rollups, profiled, and judged for drift, end to end
through the real gateway."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest

from modelfleet.clock import VirtualClock
from modelfleet.config import load_fleet
from modelfleet.config.schema import DriftSpec
from modelfleet.gateway.app import Gateway, GatewaySettings
from modelfleet.gateway.quotas import LocalQuotas
from modelfleet.gateway.server import GatewayServer, ServingThread
from modelfleet.monitors import MonitorController, latest_results
from modelfleet.monitors.judge import categorical_drift
from modelfleet.registry import apply_fleet, create_key
from modelfleet.runtime import LocalBackend
from modelfleet.store import open_store
from modelfleet.telemetry.rollup import MAX_CATEGORIES, OTHER, Rollup, RollupKey

FLEET = """\
kind: Tenant
metadata: {name: acme}
spec: {display_name: Acme, tier: enterprise, home_region: eu, contact_email: a@acme.example}
---
kind: Tenant
metadata: {name: bolt}
spec: {display_name: Bolt, tier: enterprise, home_region: eu, contact_email: b@bolt.example}
---
kind: Model
metadata: {name: basket}
spec:
  input:
    features: [{name: store_format, dtype: string}, {name: size, dtype: float64}]
  output: {labels: [small, large]}
  monitoring: {min_rows: 100}
---
kind: ModelVersion
metadata: {name: v1}
spec: {model: basket, format: python, artifact: 'model.py:predict', reference_data: ref.npz}
---
kind: Deployment
metadata: {name: basket}
spec: {model: basket, tenants: all, version: v1}
"""

MODEL = """\
import numpy as np
def predict(batch):
    large = 1 / (1 + np.exp(-(batch["size"] - 5.0)))
    return np.stack([1 - large, large], axis=1)
"""

FORMATS = ["express", "supermarket", "hypermarket"]
NOON = datetime(2026, 1, 1, 12, tzinfo=UTC)


def test_categories_are_counted_bounded_and_merged_exactly() -> None:
    key = RollupKey.at("acme", "m", "v1", "eu", NOON)
    a, b = Rollup(key), Rollup(key)
    a.record(200, 0.01, categories={"format": ["express", "express", "kiosk"]}, rows=3)
    b.record(200, 0.01, categories={"format": ["kiosk"]}, rows=1)
    a.merge(b)
    assert a.categories == {"format": {"express": 2, "kiosk": 2}}
    assert Rollup.from_dict(a.to_dict()) == a
    many = Rollup(key)
    values = [f"id-{i}" for i in range(MAX_CATEGORIES + 10)]
    many.record(200, 0.01, categories={"id": values}, rows=len(values))
    assert len(many.categories["id"]) == MAX_CATEGORIES + 1
    assert many.categories["id"][OTHER] == 10


def test_a_new_category_and_moved_frequencies_drift_and_equal_ones_do_not() -> None:
    reference = {"express": 500, "supermarket": 300, "hypermarket": 200}
    same = categorical_drift(
        "f", reference, {"express": 250, "supermarket": 150, "hypermarket": 100}, DriftSpec()
    )
    assert not same.drifted and same.psi < 1e-9 and same.ks is None
    assert same.chi_square_p is not None and same.chi_square_p > 0.99
    moved = categorical_drift("f", reference, {"express": 100, "kiosk": 400}, DriftSpec())
    assert moved.drifted and moved.psi > 1 and moved.chi_square_p is not None
    assert moved.chi_square_p < 1e-6


@pytest.fixture
def basket(tmp_path: Path, clock: VirtualClock) -> Iterator[tuple[str, dict[str, str], object]]:
    (tmp_path / "model.py").write_text(MODEL)
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "ref.npz",
        store_format=np.array(rng.choice(FORMATS, 600, p=[0.5, 0.3, 0.2])),
        size=rng.uniform(0, 10, 600),
    )
    (tmp_path / "fleet.yaml").write_text(FLEET)
    store = open_store(f"sqlite:///{tmp_path / 'fleet.db'}")
    apply_fleet(store, load_fleet([tmp_path / "fleet.yaml"]), actor="t", now=clock.now())
    with store.begin() as conn:
        keys = {
            t: create_key(conn, t, actor="t", now=clock.now()).plaintext for t in ("acme", "bolt")
        }
    gateway = Gateway(LocalBackend(), LocalQuotas(), clock, GatewaySettings())
    server = GatewayServer(
        gateway, open_store(f"sqlite:///{tmp_path / 'fleet.db'}"), clock, flush_s=3600
    )
    serving = ServingThread(server)
    url = serving.start()
    yield url, keys, (store, serving)
    serving.stop()
    store.close()


def test_a_tenant_opening_a_new_store_format_drifts_alone(basket, clock: VirtualClock) -> None:  # type: ignore[no-untyped-def]
    url, keys, (store, serving) = basket
    rng = np.random.default_rng(1)
    with httpx.Client(base_url=url, timeout=10) as client:
        for tenant, formats in (("acme", FORMATS), ("bolt", ["kiosk", "express"])):
            for _ in range(150):
                body = {
                    "inputs": [
                        {
                            "name": "store_format",
                            "shape": [1],
                            "datatype": "BYTES",
                            "data": [str(rng.choice(formats))],
                        },
                        {
                            "name": "size",
                            "shape": [1],
                            "datatype": "FP64",
                            "data": [float(rng.uniform(0, 10))],
                        },
                    ]
                }
                r = client.post(
                    "/v2/models/basket/infer",
                    json=body,
                    headers={"Authorization": f"Bearer {keys[tenant]}"},
                )
                assert r.status_code == 200, r.text
    serving.flush()
    clock.advance(timedelta(minutes=1))
    events = MonitorController(store).tick(clock.now())
    assert [(e.kind, e.tenant) for e in events if e.kind == "monitor.drift"] == [
        ("monitor.drift", "bolt")
    ]
    with store.begin() as conn:
        bolt = next(s for s in latest_results(conn) if s.tenant == "bolt")
    top = bolt.verdicts["drift"]["details"]["features"][0]
    assert top["name"] == "store_format" and top["drifted"] and top["ks"] is None
