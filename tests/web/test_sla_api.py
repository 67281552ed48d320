"""Each customer reads its own SLA over real HTTP, and only its own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from modelfleet.clock import VirtualClock
from modelfleet.config import load_fleet_text
from modelfleet.gateway.app import Gateway, GatewaySettings
from modelfleet.gateway.quotas import LocalQuotas
from modelfleet.gateway.server import GatewayServer, ServingThread
from modelfleet.registry import apply_fleet, create_key
from modelfleet.runtime import LocalBackend
from modelfleet.store import Store, open_store
from modelfleet.telemetry.rollup import Rollup, RollupKey
from modelfleet.telemetry.writer import write_rollups
from modelfleet.web.app import FleetApp
from modelfleet.web.review_api import ReviewAPI
from modelfleet.web.sla_api import SLAAPI

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
FLEET = """
kind: Tenant
metadata: {name: acme}
spec: {display_name: Acme, tier: enterprise, home_region: eu, contact_email: a@acme.example}
---
kind: Tenant
metadata: {name: bolt}
spec: {display_name: Bolt, tier: premium, home_region: eu, contact_email: b@bolt.example}
---
kind: Tenant
metadata: {name: cove}
spec: {display_name: Cove, tier: free, home_region: eu, contact_email: c@cove.example}
---
kind: SLA
metadata: {name: gold}
spec:
  tier: enterprise
  monthly_fee: 10000
  slos: [{name: availability, type: availability, objective: 0.999}]
  credits: [{slo: availability, below: 0.999, credit: 0.1}]
---
kind: SLA
metadata: {name: silver}
spec:
  tenants: [bolt]
  monthly_fee: 100
  slos: [{name: availability, type: availability, objective: 0.99}]
"""


@pytest.fixture
def served(store: Store) -> Iterator[tuple[str, dict[str, str]]]:
    clock = VirtualClock(NOW)
    apply_fleet(store, load_fleet_text(FLEET), actor="t", now=NOW)
    with store.begin() as conn:
        keys = {
            t: create_key(conn, t, actor="t", now=NOW).plaintext for t in ("acme", "bolt", "cove")
        }
        minute = NOW - timedelta(hours=1)
        for tenant, errors in (("acme", 5), ("bolt", 0)):
            rollup = Rollup(RollupKey(tenant, "m", "v1", "eu", minute))
            for i in range(100):
                rollup.record(500 if i < errors else 200, 0.02)
            write_rollups(conn, [rollup], now=NOW)
    gateway = Gateway(LocalBackend(), LocalQuotas(), clock, GatewaySettings())
    app = FleetApp(
        GatewayServer(gateway, open_store(str(store.url)), clock),
        ReviewAPI(store, clock),
        None,
        SLAAPI(store, clock),
    )
    serving = ServingThread(app)  # type: ignore[arg-type]
    yield serving.start(), keys
    serving.stop()


def test_a_tenant_reads_only_its_own_sla_and_credit(served: tuple[str, dict[str, str]]) -> None:
    url, keys = served
    with httpx.Client(base_url=url, timeout=10) as client:
        acme = client.get("/v1/sla", headers={"Authorization": f"Bearer {keys['acme']}"}).json()
        bolt = client.get("/v1/sla", headers={"Authorization": f"Bearer {keys['bolt']}"}).json()
    assert acme["tenant"] == "acme" and [s["sla"] for s in acme["slas"]] == ["gold"]
    (slo,) = acme["slas"][0]["slos"]
    assert (slo["good"], slo["total"], slo["value"]) == (95, 100, 0.95)
    assert acme["slas"][0]["credit"]["amount"] == 1000
    assert bolt["tenant"] == "bolt" and [s["sla"] for s in bolt["slas"]] == ["silver"]
    assert "acme" not in str(bolt)


def test_a_period_is_named_in_the_path_and_nothing_else_can_be(
    served: tuple[str, dict[str, str]],
) -> None:
    url, keys = served
    acme = {"Authorization": f"Bearer {keys['acme']}"}
    with httpx.Client(base_url=url, timeout=10) as client:
        october = client.get("/v1/sla/2026-10", headers=acme).json()
        assert october["slas"][0]["slos"][0]["total"] == 0
        assert client.get("/v1/sla/november", headers=acme).status_code == 400
        assert client.get("/v1/sla/2026-11/bolt", headers=acme).status_code == 404
        assert client.get("/v1/sla").status_code == 401
        cove = client.get("/v1/sla", headers={"Authorization": f"Bearer {keys['cove']}"})
        assert cove.status_code == 404 and "no SLA" in cove.json()["error"]
        assert client.post("/v1/sla", headers=acme).status_code == 405
