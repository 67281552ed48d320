"""The dashboard and the portal over HTTP: who may sign in, open and post what."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from modelfleet.clock import VirtualClock
from modelfleet.config import load_fleet_text
from modelfleet.gateway.app import Gateway, GatewaySettings
from modelfleet.gateway.quotas import LocalQuotas
from modelfleet.gateway.server import GatewayServer, ServingThread
from modelfleet.registry import apply_fleet, create_key
from modelfleet.runtime import LocalBackend
from modelfleet.settings import Settings
from modelfleet.store import Store, open_store
from modelfleet.store.tables import audit_log, web_sessions
from modelfleet.web.app import FleetApp
from modelfleet.web.review_api import ReviewAPI
from modelfleet.web.ui.app import build_ui
from modelfleet.web.ui.sessions import COOKIE
from tests.web import test_boards

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
TOKEN = "operator-secret-token"
FLEET = """
kind: Tenant
metadata: {name: acme}
spec: {display_name: Acme, tier: enterprise, home_region: eu, contact_email: a@acme.example}
---
kind: Tenant
metadata: {name: bolt}
spec: {display_name: Bolt, tier: premium, home_region: eu, contact_email: b@bolt.example}
---
kind: SLA
metadata: {name: gold}
spec:
  tier: enterprise
  monthly_fee: 10000
  slos: [{name: availability, type: availability, objective: 0.999}]
---
kind: SLA
metadata: {name: silver}
spec:
  tenants: [bolt]
  monthly_fee: 100
  slos: [{name: availability, type: availability, objective: 0.99}]
"""


@pytest.fixture
def keys(store: Store) -> dict[str, str]:
    apply_fleet(store, load_fleet_text(FLEET), actor="t", now=NOW)
    with store.begin() as conn:
        return {t: create_key(conn, t, actor="t", now=NOW).plaintext for t in ("acme", "bolt")}


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(NOW)


class Browser(httpx.Client):
    """An HTTP client that keeps the session cookie the way a browser on localhost does.

    The cookie is `Secure`; httpx's jar, unlike a browser, never sends one over plain HTTP to
    127.0.0.1, so this client carries it itself."""

    def request(self, *args: Any, **kwargs: Any) -> httpx.Response:
        response = super().request(*args, **kwargs)
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            if name == COOKIE:
                value = rest.split(";", 1)[0].strip('"')
                self.session_id = value or None
        return response

    session_id: str | None = None

    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        if self.session_id:
            request.headers["cookie"] = f"{COOKIE}={self.session_id}"
        return super().send(request, **kwargs)


def serve(store: Store, clock: VirtualClock, settings: Settings) -> ServingThread:
    """The dashboard behind `FleetApp`, as `modelfleet up` serves it, on a real socket."""
    gateway = Gateway(LocalBackend(), LocalQuotas(), clock, GatewaySettings())
    app = FleetApp(
        GatewayServer(gateway, open_store(str(store.url)), clock),
        ReviewAPI(store, clock),
        ui=build_ui(store, clock, settings),
    )
    return ServingThread(app)  # type: ignore[arg-type]


@pytest.fixture
def client(store: Store, clock: VirtualClock, keys: dict[str, str]) -> Iterator[Browser]:
    serving = serve(store, clock, Settings.from_env({"MODELFLEET_ADMIN_TOKEN": TOKEN}))
    with Browser(base_url=serving.start(), follow_redirects=False) as browser:
        yield browser
    serving.stop()


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, "no CSRF field on the page"
    return found.group(1)


def sign_in_operator(client: Browser) -> str:
    answer = client.post("/ui/login", data={"token": TOKEN})
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/"
    return csrf(client.get("/ui/").text)


def sign_in_tenant(client: Browser, key: str) -> None:
    answer = client.post("/portal/login", data={"api_key": key})
    assert answer.status_code == 303 and answer.headers["location"] == "/portal/"


def test_pages_need_a_session(client: Browser) -> None:
    for path, login in (
        ("/ui/", "/ui/login"),
        ("/ui/rollouts", "/ui/login"),
        ("/portal/", "/portal/login"),
    ):
        answer = client.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == login
    assert client.get("/ui/login").status_code == 200
    assert client.get("/ui/static/ui.css").status_code == 200


def test_a_wrong_token_or_key_is_refused(client: Browser) -> None:
    wrong = client.post("/ui/login", data={"token": "guess"})
    assert wrong.status_code == 401 and "Wrong operator token" in wrong.text
    assert COOKIE not in wrong.headers.get("set-cookie", "")
    wrong = client.post("/portal/login", data={"api_key": "mf_nope"})
    assert wrong.status_code == 401 and "Unknown or revoked API key" in wrong.text


def test_the_session_cookie_is_httponly_secure_and_lax_and_only_its_hash_is_stored(
    client: Browser, store: Store
) -> None:
    answer = client.post("/ui/login", data={"token": TOKEN})
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=lax" in cookie
    assert "Path=/" in cookie
    session_id = client.session_id
    assert session_id is not None
    with store.begin() as conn:
        [row] = conn.execute(select(web_sessions)).all()
    assert row.id_sha256 == hashlib.sha256(session_id.encode()).hexdigest()
    assert row.kind == "operator" and row.tenant is None
    assert row.expires_at == NOW + timedelta(hours=12)


def test_a_post_without_the_csrf_token_is_refused(client: Browser) -> None:
    token = sign_in_operator(client)
    assert client.post("/ui/logout").status_code == 403
    assert client.post("/ui/logout", data={"csrf": "forged"}).status_code == 403
    refused = client.post("/ui/rollouts/anything/rollback", data={})
    assert refused.status_code == 403
    assert client.get("/ui/").status_code == 200  # still signed in
    assert client.post("/ui/logout", data={"csrf": token}).status_code == 303


def test_a_post_from_another_site_is_refused(client: Browser) -> None:
    answer = client.post(
        "/ui/login", data={"token": TOKEN}, headers={"origin": "https://evil.example"}
    )
    assert answer.status_code == 403


def test_signing_out_deletes_the_session(client: Browser, store: Store) -> None:
    token = sign_in_operator(client)
    session_id = client.session_id
    assert session_id is not None
    assert client.post("/ui/logout", data={"csrf": token}).status_code == 303
    with store.begin() as conn:
        assert conn.execute(select(func.count()).select_from(web_sessions)).scalar() == 0
    client.session_id = session_id  # the old cookie, replayed
    assert client.get("/ui/").status_code == 303


def test_a_session_expires_after_twelve_hours(client: Browser, clock: VirtualClock) -> None:
    sign_in_operator(client)
    clock.advance(timedelta(hours=12))
    assert client.get("/ui/").status_code == 303


def test_a_tenant_session_cannot_open_operator_pages(client: Browser, keys: dict[str, str]) -> None:
    sign_in_tenant(client, keys["acme"])
    assert client.get("/portal/").status_code == 200
    for path in ("/ui/", "/ui/rollouts"):
        assert client.get(path).status_code == 403
    portal = client.get("/portal/").text
    assert client.post("/ui/rollouts/x/rollback", data={"csrf": csrf(portal)}).status_code == 403


def test_an_operator_session_is_not_a_tenant_session(client: Browser) -> None:
    sign_in_operator(client)
    assert client.get("/portal/").headers["location"] == "/portal/login"


def test_each_tenant_sees_only_its_own_slas(client: Browser, keys: dict[str, str]) -> None:
    sign_in_tenant(client, keys["acme"])
    page = client.get("/portal/").text
    assert "Service levels for acme" in page and "gold" in page
    assert "bolt" not in page and "silver" not in page
    # The tenant comes from the session: a parameter naming another changes nothing.
    assert "bolt" not in client.get("/portal/?tenant=bolt").text
    client.session_id = None
    sign_in_tenant(client, keys["bolt"])
    page = client.get("/portal/").text
    assert "Service levels for bolt" in page and "silver" in page and "acme" not in page


def test_the_dashboard_is_off_without_an_admin_token(store: Store, clock: VirtualClock) -> None:
    serving = serve(store, clock, Settings.from_env({}))
    with Browser(base_url=serving.start()) as c:
        assert c.get("/ui/login").status_code == 403
        assert c.post("/ui/login", data={"token": ""}).status_code == 403
    serving.stop()


# -- every page, on a store with two tenants' traffic, alerts, incidents, SLAs, capacity -------

seeded_fleet = test_boards.fleet  # the boards' store: acme and bolt on digits, two hours
OPERATOR_PAGES = (
    "/ui/models/digits",
    "/ui/models/digits?window=24h&tenant=acme",
    "/ui/api/series?model=digits&window=6h",
    "/ui/alerts",
    "/ui/incidents",
    "/ui/incidents/1",
    "/ui/slas",
    "/ui/capacity",
)
PORTAL_PAGES = ("/portal/", "/portal/incidents", "/portal/usage", "/portal/credits")
REPORT = "/portal/reports/2026-11"


@pytest.fixture
def seeded(seeded_fleet: Store) -> Iterator[tuple[Browser, dict[str, str]]]:
    with seeded_fleet.begin() as conn:
        keys = {
            t: create_key(conn, t, actor="t", now=test_boards.START).plaintext
            for t in ("acme", "bolt")
        }
    settings = Settings.from_env({"MODELFLEET_ADMIN_TOKEN": TOKEN})
    serving = serve(seeded_fleet, VirtualClock(test_boards.NOW), settings)
    with Browser(base_url=serving.start(), follow_redirects=False) as browser:
        yield browser, keys
    serving.stop()


def without_csrf(html: str) -> str:
    """The page less its random CSRF token, which could spell anything."""
    return re.sub(r'name="csrf" value="[^"]+"', "", html)


def test_every_new_page_needs_a_session(seeded: tuple[Browser, dict[str, str]]) -> None:
    client, _ = seeded
    for path in OPERATOR_PAGES:
        answer = client.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == "/ui/login", path
    for path in (*PORTAL_PAGES, REPORT):
        answer = client.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == "/portal/login", path
    answer = client.post("/ui/alerts/anything/resolve", data={})
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/login"


def test_a_tenant_session_opens_no_operator_page_nor_the_series_api(
    seeded: tuple[Browser, dict[str, str]],
) -> None:
    client, keys = seeded
    sign_in_tenant(client, keys["acme"])
    for path in OPERATOR_PAGES:
        assert client.get(path).status_code == 403, path
    token = csrf(client.get("/portal/").text)
    for action in ("acknowledge", "resolve"):
        assert client.post(f"/ui/alerts/x/{action}", data={"csrf": token}).status_code == 403


def test_an_operator_opens_every_page(seeded: tuple[Browser, dict[str, str]]) -> None:
    client, _ = seeded
    sign_in_operator(client)
    pages = {}
    for path in OPERATOR_PAGES:
        answer = client.get(path)
        assert answer.status_code == 200, path
        pages[path] = answer.text
    model = pages["/ui/models/digits"]
    assert model.count('<figure class="chart') >= 4 and "/ui/api/series?model=digits" in model
    assert '<option value="6h" selected>' in model
    assert '<option value="acme" selected>' in pages["/ui/models/digits?window=24h&tenant=acme"]
    series = client.get("/ui/api/series?model=digits&window=6h&tenant=acme").json()
    assert series["tenant"] == "acme" and series["step_s"] == 60
    assert len(series["timestamps"]) == len(series["p99_s"]) and any(series["requests_per_s"])
    assert "HighErrorRate for acme" in pages["/ui/alerts"]
    assert "Alice Example" in pages["/ui/alerts"] and "tenant=&#34;bolt&#34;" in pages["/ui/alerts"]
    assert "MTTR" in pages["/ui/incidents"] and "18 min" in pages["/ui/incidents"]
    assert "HighErrorRate fired" in pages["/ui/incidents/1"]
    assert (
        "acme" in pages["/ui/slas"]
        and "bolt" in pages["/ui/slas"]
        and "(missed)" in pages["/ui/slas"]
    )
    assert "digits" in pages["/ui/capacity"] and "idle" in pages["/ui/capacity"]
    assert "MASE" in pages["/ui/capacity"] and "observed_rps" in pages["/ui/capacity"]
    overview = client.get("/ui/").text
    assert 'href="/ui/models/digits"' in overview
    # Each served tenant's SLA standing, in words as well as colour, as the SLA page has it.
    standings = dict(
        re.findall(
            r'<a href="/ui/slas">(\w+)</a> <span class="badge tone-\w+">([\w ]+)</span>', overview
        )
    )
    assert set(standings) == {"acme", "bolt"}
    assert "missed" in standings.values()
    assert client.get("/ui/models/nope").status_code == 404
    assert client.get("/ui/incidents/999").status_code == 404
    assert client.get("/ui/models/digits?window=2y").status_code == 400
    assert client.get("/ui/api/series?window=6h").status_code == 400


def test_acknowledging_and_resolving_an_alert_need_the_csrf_token(
    seeded: tuple[Browser, dict[str, str]], seeded_fleet: Store
) -> None:
    client, _ = seeded
    token = sign_in_operator(client)
    page = client.get("/ui/alerts").text
    fingerprint = re.findall(r'data-action="resolve" data-target="([^"]+)"', page)[0]
    for action in ("acknowledge", "resolve"):
        path = f"/ui/alerts/{fingerprint}/{action}"
        assert client.post(path, data={}).status_code == 403
        assert client.post(path, data={"csrf": "forged"}).status_code == 403
    answer = client.post(f"/ui/alerts/{fingerprint}/resolve", data={"csrf": token})
    assert answer.status_code == 200 and "resolved 1 alert(s)" in answer.text
    again = client.post(f"/ui/alerts/{fingerprint}/resolve", data={"csrf": token})
    assert again.status_code == 400 and "names no firing alert" in again.text
    with seeded_fleet.begin() as conn:
        actors = conn.execute(select(audit_log.c.actor)).scalars().all()
    assert "operator:web" in actors


def test_each_tenant_sees_only_its_own_portal(seeded: tuple[Browser, dict[str, str]]) -> None:
    client, keys = seeded
    for me, other, credit in (("acme", "bolt", "100.00"), ("bolt", "acme", "7.00")):
        client.session_id = None
        sign_in_tenant(client, keys[me])
        for path in PORTAL_PAGES:
            for query in ("", f"?tenant={other}"):
                answer = client.get(path + query)
                assert answer.status_code == 200, path
                page = without_csrf(answer.text)
                assert other not in page.lower(), (me, path)
        assert credit in client.get("/portal/credits").text
        assert "SlowModel" in client.get("/portal/incidents").text
        assert f'href="{REPORT}"' in client.get("/portal/").text
        report = client.get(REPORT + f"?tenant={other}")
        assert report.status_code == 200
        assert report.headers["content-disposition"] == (
            f'attachment; filename="sla-report-{me}-2026-11.html"'
        )
        assert f"SLA report: {me}, gold, 2026-11" in report.text and other not in report.text
    usage = client.get("/portal/usage").text
    assert "3600" in usage and "7210" not in usage  # bolt's requests, never acme's
    assert client.get("/portal/reports/2027-01").status_code == 400
    assert client.get("/portal/reports/soon").status_code == 400
