"""Residency routing: a tenant's requests are served in its region, or passed on there.

Two regions on this machine: eu-west and us-east, each a store (SQLite) with the same fleet
applied and a real gateway that knows its region. acme lives in eu-west with residency eu, so
the US gateway redirects it (307) without reading its request; bolt lives in eu-west without
residency and asked for forwarding, so the US gateway forwards its requests and passes the
answer back; carol lives in us-east. Afterwards the US store holds nothing of the EU tenants.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sqlalchemy import func, insert, select

from modelfleet.clock import SystemClock
from modelfleet.config import load_fleet
from modelfleet.errors import FleetConfigError
from modelfleet.gateway.app import GatewaySettings
from modelfleet.gateway.quotas import Quota
from modelfleet.gateway.residency import (
    PassOn,
    Placement,
    Refuse,
    RegionInfo,
    Regions,
    Serve,
    decide,
)
from modelfleet.gateway.routing import store_generation
from modelfleet.gateway.server import GatewayServer, ServingThread
from modelfleet.registry import apply_fleet, create_key
from modelfleet.registry.audit import record
from modelfleet.store import Store, open_store
from modelfleet.store.tables import api_keys, feedback, predictions, rollups, samples, tenants
from tests.gateway.conftest import infer_body, start_gateway, wait_for

# -- the decision alone ---------------------------------------------------------------------

REGIONS = {
    "eu-west": RegionInfo("eu", "https://eu.example", failover_to="us-east"),
    "eu-north": RegionInfo("eu", "https://eu-north.example"),
    "us-east": RegionInfo("us", "https://us.example"),
}
PLACEMENTS = {
    "resident": Placement("eu-west", "eu", "forward"),
    "free": Placement("eu-west", None, "forward"),
    "redirected": Placement("eu-west", None, "redirect"),
}


def _decide(here: str, tenant: str, down: dict[str, str | None] | None = None) -> object:
    return decide(Regions(REGIONS, down or {}, PLACEMENTS), here, tenant)


def test_without_declared_regions_every_gateway_serves_every_tenant() -> None:
    regions = Regions({}, {"eu-west": "us-east"}, PLACEMENTS)
    assert decide(regions, "us-east", "resident") == Serve("us-east")
    assert decide(Regions(REGIONS), "us-east", "unknown") == Serve("us-east")


def test_a_tenant_is_served_at_home_and_passed_on_elsewhere_as_its_residency_allows() -> None:
    assert _decide("eu-west", "resident") == Serve("eu-west")
    # Forwarding would process an eu-resident request in the US: redirected instead.
    assert _decide("us-east", "resident") == PassOn("eu-west", "https://eu.example", False)
    # Another region of the same jurisdiction may carry it.
    assert _decide("eu-north", "resident") == PassOn("eu-west", "https://eu.example", True)
    assert _decide("us-east", "free") == PassOn("eu-west", "https://eu.example", True)
    assert _decide("us-east", "redirected") == PassOn("eu-west", "https://eu.example", False)


def test_a_down_region_fails_over_only_tenants_whose_residency_allows_it() -> None:
    down: dict[str, str | None] = {"eu-west": None}  # the Region's own failover_to: us-east
    assert _decide("us-east", "free", down) == Serve("us-east")
    assert _decide("eu-west", "free", down) == PassOn("us-east", "https://us.example", True)
    refused = _decide("us-east", "resident", down)
    assert isinstance(refused, Refuse) and refused.retry_after > 0
    for words in ("'eu-west' is down", "residency (eu)", "'us-east'"):
        assert words in refused.reason
    # The status's failover region wins over the Region's; one of the same jurisdiction serves.
    assert _decide("eu-north", "resident", {"eu-west": "eu-north"}) == Serve("eu-north")


def test_a_down_region_without_a_failover_region_refuses_its_tenants() -> None:
    regions = Regions({**REGIONS, "eu-west": RegionInfo("eu", "https://eu.example")})
    refused = decide(Regions(regions.declared, {"eu-west": None}, PLACEMENTS), "us-east", "free")
    assert isinstance(refused, Refuse) and "no failover region" in refused.reason
    both = _decide("us-east", "free", {"eu-west": "us-east", "us-east": "eu-west"})
    assert isinstance(both, Refuse) and "are down" in both.reason


# -- two regions on this machine ------------------------------------------------------------

FLEET = """\
kind: Region
metadata: {{name: eu-west}}
spec:
  jurisdiction: eu
  url: "{eu}"
  store: MODELFLEET_SECRET_EU_STORE
  failover_to: us-east
---
kind: Region
metadata: {{name: us-east}}
spec: {{jurisdiction: us, url: "{us}", store: MODELFLEET_SECRET_US_STORE}}
---
kind: Tenant
metadata: {{name: acme}}
spec:
  display_name: Acme
  tier: enterprise
  home_region: eu-west
  contact_email: ops@acme.example
  residency: eu
---
kind: Tenant
metadata: {{name: bolt}}
spec:
  display_name: Bolt
  tier: premium
  home_region: eu-west
  contact_email: dev@bolt.example
  cross_region: forward
---
kind: Tenant
metadata: {{name: carol}}
spec: {{display_name: Carol, tier: premium, home_region: us-east, contact_email: it@carol.example}}
---
kind: Model
metadata: {{name: digits}}
spec:
  input:
    features: [{{name: pixels, dtype: float32, shape: [64]}}]
  output: {{labels: [zero, one, two, three, four, five, six, seven, eight, nine]}}
---
kind: ModelVersion
metadata: {{name: v1}}
spec: {{model: digits, artifact: v1.joblib, format: sklearn, reference_data: reference.npz}}
---
kind: Deployment
metadata: {{name: digits}}
spec: {{model: digits, tenants: all, version: v1}}
"""
TENANTS = ("acme", "bolt", "carol")
NOTHING = {"samples": 0, "predictions": 0, "feedback": 0, "rollups": 0}
QUOTA = Quota(rate=100_000, burst=100_000, max_in_flight=1000)


@dataclass
class Region:
    name: str
    url: str
    store: Store
    server: GatewayServer
    serving: ServingThread


@dataclass
class TwoRegions:
    eu: Region
    us: Region
    keys: dict[str, str]
    fleet: Path

    def client(self, region: Region, tenant: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[tenant]}"}
        return httpx.Client(base_url=region.url, headers=headers, timeout=10)

    def reloaded(self) -> None:
        """Wait until both gateways serve the newest generation of their store."""
        for region in (self.eu, self.us):
            wait_for(lambda r=region: r.server.gateway.table.generation == _generation(r.store))


def _generation(store: Store) -> int:
    with store.begin() as conn:
        return store_generation(conn)


@contextmanager
def two_regions(tmp_path: Path, models: Path) -> Iterator[TwoRegions]:
    """eu-west and us-east: a store and a real gateway each, with the same fleet applied and
    the same API keys (a tenant's key is known in every region, so any gateway can tell whose
    request it is before passing it on)."""
    for name in ("v1.joblib", "reference.npz"):
        (tmp_path / name).write_bytes((models / name).read_bytes())
    started: list[Region] = []
    try:
        for name in ("eu-west", "us-east"):
            store = open_store(f"sqlite:///{tmp_path / name}.db")
            settings = GatewaySettings(
                region=name,
                sample_rate=1.0,  # every request leaves a sample: the stores show where it went
                tier_quotas={t: QUOTA for t in ("free", "standard", "premium", "enterprise")},
            )
            url, server, serving = start_gateway(store, settings)
            started.append(Region(name, url, store, server, serving))
        eu, us = started
        fleet = tmp_path / "fleet.yaml"
        fleet.write_text(FLEET.format(eu=eu.url, us=us.url))
        now = SystemClock().now()
        for region in started:
            apply_fleet(region.store, load_fleet([fleet]), actor="test", now=now)
        with eu.store.begin() as conn:
            keys = {t: create_key(conn, t, actor="test", now=now).plaintext for t in TENANTS}
            rows = [dict(r._mapping) for r in conn.execute(select(api_keys))]
        with us.store.begin() as conn:
            conn.execute(
                insert(api_keys), [{k: v for k, v in r.items() if k != "id"} for r in rows]
            )
            for r in rows:  # the audit entry makes the US gateway reload its keys
                new = {"tenant": r["tenant"]}
                record(
                    conn,
                    at=now,
                    actor="t",
                    action="create",
                    kind="ApiKey",
                    name=r["prefix"],
                    old=None,
                    new=new,
                )
        regions = TwoRegions(eu, us, keys, fleet)
        regions.reloaded()
        yield regions
    finally:
        for region in started:
            region.serving.stop(timeout=30)
            region.store.close()


def held(store: Store, tenant: str) -> dict[str, int]:
    """How many rows of each raw table (and rollups) `store` holds of `tenant`."""
    with store.begin() as conn:
        return {
            table.name: conn.execute(
                select(func.count()).select_from(table).where(table.c.tenant == tenant)
            ).scalar_one()
            for table in (samples, predictions, feedback, rollups)
        }


@pytest.fixture
def regions(tmp_path: Path, digits_models: Path) -> Iterator[TwoRegions]:
    with two_regions(tmp_path, digits_models) as regions:
        yield regions


DIGITS = load_digits().data.astype(np.float32)


def test_an_eu_resident_tenant_is_redirected_to_its_region_and_leaves_nothing_in_the_us(
    regions: TwoRegions,
) -> None:
    body = infer_body(DIGITS[:2], request_id="acme-1")
    with regions.client(regions.us, "acme") as us:
        redirected = us.post("/v2/models/digits/infer?trace=1", json=body)
        assert redirected.status_code == 307, redirected.text
        location = redirected.headers["location"]
        assert location == f"{regions.eu.url}/v2/models/digits/infer?trace=1"
        assert "eu-west" in redirected.json()["error"]
        # The model's metadata and readiness, and feedback, are the tenant's region's too.
        assert us.get("/v2/models/digits").status_code == 307
        assert us.get("/v2/models/digits/ready").status_code == 307
        feedback_there = us.post(
            "/v1/feedback", json={"model": "digits", "id": "acme-1", "label": "zero"}
        )
        assert feedback_there.headers["location"] == f"{regions.eu.url}/v1/feedback"
        # Health and metrics are the gateway's own: never redirected.
        assert us.get("/v2/health/ready").status_code == 200
        # Clients drop the key on a redirect to another origin (httpx, curl without
        # --location-trusted): the client sends it again to the Location, as the docs say.
        followed = us.post(location, json=body)
        assert followed.status_code == 200, followed.text
        assert str(followed.url).startswith(regions.eu.url)
        assert followed.json()["id"] == "acme-1"
        labels = {"model": "digits", "id": "acme-1", "labels": ["zero", "one"]}
        answered = us.post(feedback_there.headers["location"], json=labels)
        assert answered.status_code == 200 and answered.json() == {"accepted": 2}
    with regions.client(regions.eu, "acme") as eu:  # at home it is served as before
        assert eu.post("/v2/models/digits/infer", json=body).status_code == 200
    for region in (regions.eu, regions.us):
        assert region.serving.flush()
    assert held(regions.us.store, "acme") == NOTHING
    eu_held = held(regions.eu.store, "acme")
    assert eu_held["samples"] == 2 and eu_held["predictions"] == 1 and eu_held["feedback"] == 2
    assert eu_held["rollups"] >= 1


def test_a_tenant_without_residency_that_asked_for_forwarding_is_answered_through_the_us(
    regions: TwoRegions,
) -> None:
    rows = DIGITS[10:13]
    with regions.client(regions.us, "bolt") as us:
        instances = {"instances": rows.tolist()}
        answered = us.post(
            "/v1/models/digits/predict", json=instances, headers={"x-request-id": "bolt-1"}
        )
        assert answered.status_code == 200, answered.text
        assert answered.headers["x-request-id"] == "bolt-1"
        direct = httpx.post(
            f"{regions.eu.url}/v1/models/digits/predict",
            json={"instances": rows.tolist()},
            headers={"Authorization": f"Bearer {regions.keys['bolt']}"},
        )
        assert answered.json()["predictions"] == direct.json()["predictions"]
        # The region's own error passes through too: a model bolt has no deployment of.
        assert us.post("/v2/models/nothing/infer", json=infer_body(rows)).status_code == 404
    with regions.client(regions.us, "carol") as us:  # us-east's own tenant: served here
        assert us.post("/v2/models/digits/infer", json=infer_body(rows)).status_code == 200
    for region in (regions.eu, regions.us):
        assert region.serving.flush()
    assert held(regions.us.store, "bolt") == NOTHING
    # Both answers, the forwarded one and the direct one, were recorded in eu-west.
    assert held(regions.eu.store, "bolt")["samples"] == 2
    with regions.eu.store.begin() as conn:
        ids = set(conn.execute(select(predictions.c.request_id)).scalars())
    assert "bolt-1" in ids
    assert held(regions.eu.store, "carol")["rollups"] == 0
    assert held(regions.us.store, "carol")["rollups"] >= 1


def test_apply_holds_tenants_and_failover_to_declared_regions(regions: TwoRegions) -> None:
    bad = """\
kind: Tenant
metadata: {name: dana}
spec: {display_name: Dana, tier: free, home_region: ap-south, contact_email: d@dana.example}
---
kind: Tenant
metadata: {name: emil}
spec:
  display_name: Emil
  tier: free
  home_region: us-east
  contact_email: e@emil.example
  residency: eu
---
kind: Region
metadata: {name: us-west}
spec: {jurisdiction: us, url: "https://us-west.example", failover_to: mars}
"""
    path = regions.fleet.parent / "bad.yaml"
    path.write_text(bad)
    with pytest.raises(FleetConfigError) as refused:
        apply_fleet(regions.us.store, load_fleet([path]), actor="test", now=SystemClock().now())
    messages = [str(issue) for issue in refused.value.issues]
    assert len(messages) == 3, messages
    assert any("home_region" in m and "'ap-south' is not declared" in m for m in messages)
    assert any("residency" in m and "(us)" in m for m in messages)
    assert any("failover_to" in m and "'mars'" in m for m in messages)
    with regions.us.store.begin() as conn:  # nothing applied
        assert conn.execute(select(tenants.c.name).where(tenants.c.name == "dana")).first() is None
