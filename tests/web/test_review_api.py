"""The review queue over real HTTP, beside the gateway on one port: each tenant sees and labels
only its own items, and its labels count as feedback."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from modelfleet.clock import VirtualClock
from modelfleet.gateway.app import Gateway, GatewaySettings
from modelfleet.gateway.quotas import LocalQuotas
from modelfleet.gateway.server import GatewayServer, ServingThread
from modelfleet.registry import create_key
from modelfleet.review import ReviewController
from modelfleet.runtime import LocalBackend
from modelfleet.store import Store, open_store
from modelfleet.telemetry.feedback import read_feedback
from modelfleet.web.app import FleetApp
from modelfleet.web.review_api import ReviewAPI
from tests.review.conftest import add_sample, fleet  # noqa: F401  (the fixture)


@pytest.fixture
def served(fleet: Store, clock: VirtualClock) -> Iterator[tuple[str, dict[str, str]]]:  # noqa: F811
    with fleet.begin() as conn:
        keys = {
            t: create_key(conn, t, actor="t", now=clock.now()).plaintext for t in ("acme", "bolt")
        }
    gateway = Gateway(LocalBackend(), LocalQuotas(), clock, GatewaySettings())
    url = str(fleet.url)
    app = FleetApp(GatewayServer(gateway, open_store(url), clock), ReviewAPI(fleet, clock))
    serving = ServingThread(app)  # type: ignore[arg-type]
    yield serving.start(), keys
    serving.stop()


def test_each_tenant_works_its_own_queue_over_http(
    fleet: Store,  # noqa: F811
    served: tuple[str, dict[str, str]],
    clock: VirtualClock,
) -> None:
    url, keys = served
    mine = add_sample(fleet, "a-1", at=clock.now(), tenant="acme")
    theirs = add_sample(fleet, "b-1", at=clock.now(), tenant="bolt")
    ReviewController(fleet).tick(clock.now())
    acme = {"Authorization": f"Bearer {keys['acme']}"}
    with httpx.Client(base_url=url, timeout=10) as client:
        listed = client.get("/v1/review/items", headers=acme).json()["items"]
        assert [i["sample"] for i in listed] == [mine]
        item = client.get("/v1/review/next", headers=acme).json()
        assert item["tenant"] == "acme"
        bolts = client.get("/v1/review/next", headers={"Authorization": f"Bearer {keys['bolt']}"})
        assert bolts.json()["sample"] == theirs
        # Another tenant's item is missing, exactly as a missing one is.
        other = client.post(
            f"/v1/review/items/{bolts.json()['id']}/label", json={"label": "a"}, headers=acme
        )
        missing = client.post("/v1/review/items/999/label", json={"label": "a"}, headers=acme)
        assert (other.status_code, missing.status_code) == (404, 404)
        assert other.json()["error"].replace(str(bolts.json()["id"]), "N") == missing.json()[
            "error"
        ].replace("999", "N")
        bad = client.post(
            f"/v1/review/items/{item['id']}/label", json={"label": "zebra"}, headers=acme
        )
        assert bad.status_code == 400 and "zebra" in bad.json()["error"]
        assert (
            client.post(
                f"/v1/review/items/{item['id']}/label", content=b"{", headers=acme
            ).status_code
            == 400
        )
        done = client.post(
            f"/v1/review/items/{item['id']}/label", json={"label": "b"}, headers=acme
        )
        assert done.status_code == 200 and done.json()["status"] == "labelled"
        assert client.get("/v1/review/next", headers=acme).status_code == 204
        assert client.get("/v1/review/items").status_code == 401
        assert client.get("/v1/review/items?status=lost", headers=acme).status_code == 400
        assert client.get("/v2/health/live").json() == {"live": True}  # the gateway, same port
    with fleet.begin() as conn:
        stored = read_feedback(conn)
    assert [(f.tenant, f.label, f.source) for f in stored] == [("acme", "b", "review")]
