"""The operators' alerts API over real HTTP: silences from any Alertmanager tool, token-guarded."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from modelfleet.alerts.controller import AlertController
from modelfleet.clock import VirtualClock
from modelfleet.gateway.app import Gateway, GatewaySettings
from modelfleet.gateway.quotas import LocalQuotas
from modelfleet.gateway.server import GatewayServer, ServingThread
from modelfleet.registry.events import Event, alert_details, record_event
from modelfleet.runtime import LocalBackend
from modelfleet.store import Store, open_store
from modelfleet.web.alerts_api import AlertsAPI
from modelfleet.web.app import FleetApp
from modelfleet.web.review_api import ReviewAPI

TOKEN = "s3cret-operator-token"


def serve(store: Store, clock: VirtualClock, token_sha256: str | None) -> ServingThread:
    gateway = Gateway(LocalBackend(), LocalQuotas(), clock, GatewaySettings())
    app = FleetApp(
        GatewayServer(gateway, open_store(str(store.url)), clock),
        ReviewAPI(store, clock),
        AlertsAPI(store, clock, admin_token_sha256=token_sha256),
    )
    serving = ServingThread(app)  # type: ignore[arg-type]
    serving.start()
    return serving


@pytest.fixture
def api(store: Store, clock: VirtualClock) -> Iterator[httpx.Client]:
    serving = serve(store, clock, hashlib.sha256(TOKEN.encode()).hexdigest())
    with httpx.Client(
        base_url=serving.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    ) as client:
        yield client
    serving.stop()


def test_a_silence_made_over_http_mutes_a_firing_alert_and_expires_on_delete(
    api: httpx.Client, store: Store, clock: VirtualClock
) -> None:
    ends = (clock.now() + timedelta(hours=2)).isoformat()
    made = api.post(
        "/api/v2/silences",
        json={
            "matchers": [{"name": "region", "value": "eu-.*", "isRegex": True, "isEqual": True}],
            "endsAt": ends,
            "createdBy": "ana",
            "comment": "planned maintenance",
        },
    )
    assert made.status_code == 200
    silence_id = made.json()["silenceID"]
    with store.begin() as conn:
        labels = {"alertname": "X", "severity": "critical", "region": "eu-west"}
        record_event(
            conn,
            Event(
                clock.now(),
                "monitors",
                "anomaly.firing",
                "critical",
                "m",
                "x",
                {"alert": alert_details(labels, "firing")},
            ),
        )
    AlertController(store).tick(clock.now())
    (alert,) = api.get("/api/v2/alerts").json()
    assert alert["status"] == {"state": "suppressed", "silencedBy": [silence_id], "inhibitedBy": []}
    (listed,) = api.get("/api/v2/silences").json()
    assert listed["status"]["state"] == "active" and listed["matchers"][0]["isRegex"] is True
    expired = api.delete(f"/api/v2/silence/{silence_id}").json()
    assert expired["status"]["state"] == "expired"


def test_bad_silences_get_a_400_that_says_what_is_wrong(api: httpx.Client) -> None:
    no_end = api.post("/api/v2/silences", json={"matchers": [], "createdBy": "x"})
    assert no_end.status_code == 400 and "endsAt" in no_end.json()["error"]
    not_json = api.post("/api/v2/silences", content=b"{nope")
    assert not_json.status_code == 400
    assert api.delete("/api/v2/silence/999").status_code == 404


def test_without_the_operator_token_nothing_is_shown(
    store: Store, clock: VirtualClock, api: httpx.Client
) -> None:
    url = str(api.base_url)
    assert httpx.get(f"{url}/api/v2/silences").status_code == 401
    wrong = httpx.get(f"{url}/api/v2/silences", headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 401
    off = serve(store, clock, None)
    try:
        refused = httpx.get(
            f"{off.url}/api/v2/alerts", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert refused.status_code == 403 and "MODELFLEET_ADMIN_TOKEN" in refused.json()["error"]
    finally:
        off.stop()
