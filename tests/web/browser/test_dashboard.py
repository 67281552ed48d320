"""The dashboard and the portal in a real browser: the system's Chromium, driven by Playwright.

Each page is opened as a person would, a rollback and an alert's resolution are clicked and
checked, the model page's charts must be drawn with their table views filled, and a screenshot
of every page is saved under test-output/screenshots/ (at phone width too). The store holds the
example fleet plus the boards' kinds of data (alerts, incidents, credits, capacity decisions
and a forecast), written with the helpers of tests/web/test_boards.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import Connection, insert, select

from modelfleet.alerts.records import apply_signal
from modelfleet.clock import VirtualClock
from modelfleet.config import load_fleet
from modelfleet.gateway.app import Gateway, GatewaySettings
from modelfleet.gateway.quotas import LocalQuotas
from modelfleet.gateway.server import GatewayServer, ServingThread
from modelfleet.registry import apply_fleet, create_key
from modelfleet.registry.splits import serving_version
from modelfleet.rollouts import RolloutController, promote_now, start_rollout
from modelfleet.runtime import LocalBackend
from modelfleet.settings import Settings
from modelfleet.store import Store, open_store
from modelfleet.store.tables import audit_log, capacity_forecasts, incident_timeline
from modelfleet.telemetry.rollup import Rollup, RollupKey
from modelfleet.telemetry.writer import write_rollups
from modelfleet.web.app import FleetApp
from modelfleet.web.review_api import ReviewAPI
from modelfleet.web.ui.app import build_ui
from tests.capacity.test_usage import decide
from tests.web.test_boards import FLAP, credit, incident, signal

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TOKEN = "browser-test-operator-token"
DEPLOYMENT = "product-recognizer"
SHOTS = Path(__file__).resolve().parents[3] / "test-output" / "screenshots"


@dataclass
class Site:
    url: str
    store: Store
    keys: dict[str, str]


@pytest.fixture(scope="module")
def site(trained_example: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The example fleet after v2 was rolled out and promoted, with a few minutes of traffic."""
    tmp = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{tmp / 'fleet.db'}"
    store = open_store(url)
    clock = VirtualClock(datetime(2026, 11, 2, 9, 30, tzinfo=UTC))
    files = [
        trained_example / n for n in ("fleet.yaml", "sla.yaml", "alerting.yaml", "capacity.yaml")
    ]
    apply_fleet(store, load_fleet(files), actor="test", now=clock.now())
    with store.begin() as conn:
        keys = {
            t: create_key(conn, t, actor="test", now=clock.now()).plaintext
            for t in ("acme-grocers", "bayside-market")
        }
        start_rollout(conn, DEPLOYMENT, "v2", actor="test", now=clock.now())
    clock.advance(timedelta(seconds=5))
    RolloutController(store).tick(clock.now())  # the gate passes
    with store.begin() as conn:
        promote_now(conn, DEPLOYMENT, actor="test", now=clock.now())
        for minute in range(1, 4):
            at = clock.now().replace(second=0) - timedelta(minutes=minute)
            for tenant, errors in (("acme-grocers", 0), ("bayside-market", 3)):
                rollup = Rollup(RollupKey(tenant, DEPLOYMENT, "v2", "eu-west", at))
                for i in range(60):
                    rollup.record(500 if i < errors else 200, 0.012 + i / 10_000)
                write_rollups(conn, [rollup], now=clock.now())
        seed_boards(conn, clock.now())
    gateway = Gateway(LocalBackend(), LocalQuotas(), clock, GatewaySettings())
    settings = Settings.from_env({"MODELFLEET_ADMIN_TOKEN": TOKEN})
    app = FleetApp(
        GatewayServer(gateway, open_store(url), clock),
        ReviewAPI(store, clock),
        ui=build_ui(store, clock, settings),
    )
    serving = ServingThread(app)  # type: ignore[arg-type]
    base = serving.start().replace("127.0.0.1", "localhost")
    yield Site(base, store, keys)
    serving.stop()
    store.close()


def seed_boards(conn: Connection, now: datetime) -> None:
    """Something on every board: firing alerts, incidents with a timeline, a credit, replica
    decisions against demand over the last hours, and a forecast; and, for the charts, v1's
    traffic in every minute of the six hours before the rollout."""
    rollups = []
    for minutes in range(5, 360):
        at = now.replace(second=0) - timedelta(minutes=minutes)
        load = 20 + int(10 * math.sin(minutes / 40))
        for tenant, errors in (("acme-grocers", 0), ("bayside-market", int(minutes % 90 < 5))):
            rollup = Rollup(RollupKey(tenant, DEPLOYMENT, "v1", "eu-west", at))
            for i in range(load):
                latency = 0.010 + i / 4_000 + load / 5_000
                rollup.record(500 if i < errors else 200, latency, [0.6 + (i % 4) / 10])
            rollups.append(rollup)
    write_rollups(conn, rollups, now=now)
    for name, severity, tenant in (
        ("HighErrorRate", "critical", "bayside-market"),
        ("SlowAnswers", "warning", "acme-grocers"),
    ):
        apply_signal(conn, signal(name, severity, tenant, now), flap_window=FLAP)
    own = incident(
        conn,
        "HighErrorRate (tenant=acme-grocers)",
        ["acme-grocers"],
        anomaly_at=now - timedelta(hours=2),
        detected_at=now - timedelta(hours=2) + timedelta(minutes=2),
        acknowledged_at=now - timedelta(hours=2) + timedelta(minutes=6),
        resolved_at=now - timedelta(hours=1),
    )
    conn.execute(
        insert(incident_timeline),
        [
            {"incident": own, "at": now - timedelta(hours=2), "kind": "alert.firing",
             "message": "HighErrorRate fired", "details": {"tenant": "acme-grocers"}},
            {"incident": own, "at": now - timedelta(hours=1), "kind": "alert.resolved",
             "message": "HighErrorRate resolved", "details": {}},
        ],
    )  # fmt: skip
    incident(conn, "HighErrorRate (tenant=bayside-market)", ["bayside-market"], detected_at=now)
    credit(conn, "acme-grocers", "2026-10", 120.0)
    credit(conn, "bayside-market", "2026-10", 7.0)
    for hours, replicas, observed in ((5, 2, 1.0), (3, 3, 2.6), (1, 4, 3.4), (0, 3, 2.2)):
        at = now - timedelta(hours=hours, minutes=1)
        decide(conn, at, replicas, 2, 1.0, model=DEPLOYMENT, observed_rps=observed)
    conn.execute(
        insert(capacity_forecasts).values(
            model=DEPLOYMENT,
            fitted_at=now,
            start=now.replace(minute=0),
            mean=[3600.0 * r for r in (2.0, 2.5, 3.0, 2.0)],
            lower=[3600.0 * r for r in (1.5, 2.0, 2.5, 1.5)],
            upper=[3600.0 * r for r in (2.5, 3.0, 3.5, 2.5)],
            method="mstl",
            mase=0.7,
            per_replica_rps=1.0,
        )
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: the browser tests need the system's Chromium; "
            "`make browser` installs it (apt-get install -y chromium)"
        )
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield launched
        launched.close()


def shoot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, site: Site, path: str, field: str, secret: str) -> None:
    page.goto(site.url + path)
    page.fill(f"#{field}", secret)
    page.click("button[type=submit]")


def test_an_operator_opens_every_page_and_rolls_back(browser: Browser, site: Site) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(site.url + "/ui/")
    expect(page).to_have_url(site.url + "/ui/login")
    shoot(page, "operator-login")
    sign_in(page, site, "/ui/login", "token", "wrong")
    expect(page.get_by_role("alert")).to_contain_text("Wrong operator token")
    sign_in(page, site, "/ui/login", "token", TOKEN)
    expect(page).to_have_url(site.url + "/ui/")
    expect(page.locator("h1")).to_have_text("Fleet")
    card = page.locator(f"#deployment-{DEPLOYMENT}")
    expect(card).to_contain_text("serving v2")
    expect(card).to_contain_text("promoted")
    expect(card).to_contain_text("stable 100%")
    shoot(page, "operator-fleet")
    for link in page.locator("nav a").all():
        href = link.get_attribute("href")
        assert href is not None
        response = page.request.get(site.url + href)
        assert response.ok, f"{href} answered {response.status}"
    page.click("nav >> text=Rollouts")
    expect(page.locator("h1")).to_have_text("Rollouts")
    shoot(page, "operator-rollouts")
    page.click(f"button[data-action=rollback][data-deployment={DEPLOYMENT}]")
    expect(page.get_by_role("status")).to_contain_text("rolled back from v2 to v1")
    shoot(page, "operator-rolled-back")
    with site.store.begin() as conn:
        assert serving_version(conn, DEPLOYMENT) == "v1"
        actors = conn.execute(
            select(audit_log.c.actor).where(
                audit_log.c.kind == "Deployment",
                audit_log.c.name == DEPLOYMENT,
                audit_log.c.action == "serve",
            )
        ).scalars()
        assert "operator:web" in list(actors)
    page.click(f"button[data-action=rollback][data-deployment={DEPLOYMENT}]")
    expect(page.get_by_role("alert")).to_contain_text("no rollout promoted")
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(site.url + "/ui/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    shoot(page, "operator-fleet-phone")
    page.click("text=Sign out")
    expect(page).to_have_url(site.url + "/ui/login")
    page.goto(site.url + "/ui/rollouts")
    expect(page).to_have_url(site.url + "/ui/login")
    page.close()


def test_a_customer_walks_the_portal_and_nothing_else(browser: Browser, site: Site) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 800})
    page = context.new_page()
    page.goto(site.url + "/portal/")
    expect(page).to_have_url(site.url + "/portal/login")
    shoot(page, "portal-login")
    sign_in(page, site, "/portal/login", "api_key", site.keys["acme-grocers"])
    expect(page).to_have_url(site.url + "/portal/")
    expect(page.locator("h1")).to_have_text("Service levels for acme-grocers")
    expect(page.locator("main")).to_contain_text("enterprise-gold")
    expect(page.locator("main")).not_to_contain_text("bayside-market")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    shoot(page, "portal-slas")
    for path in ("/ui/", "/ui/rollouts"):
        response = page.goto(site.url + path)
        assert response is not None and response.status == 403, path
    shoot(page, "portal-refused-operator-page")
    page.goto(site.url + "/portal/")
    page.click("text=Sign out")
    expect(page).to_have_url(site.url + "/portal/login")
    context.close()


OPERATOR_PAGES = (  # path, heading, screenshot
    ("/ui/alerts", "Alerts", "operator-alerts"),
    ("/ui/incidents", "Incidents", "operator-incidents"),
    ("/ui/slas", "SLAs", "operator-slas"),
    ("/ui/capacity", "Capacity", "operator-capacity"),
)
PORTAL_PAGES = (
    ("/portal/incidents", "Incidents that affected acme-grocers", "portal-incidents"),
    ("/portal/usage", "Usage of acme-grocers", "portal-usage"),
    ("/portal/credits", "Service credits of acme-grocers", "portal-credits"),
)


def test_an_operator_walks_the_model_alerts_incidents_slas_and_capacity(
    browser: Browser, site: Site
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, site, "/ui/login", "token", TOKEN)
    expect(page).to_have_url(site.url + "/ui/")
    page.click(f"#deployment-{DEPLOYMENT} >> a[href='/ui/models/{DEPLOYMENT}']")
    expect(page.locator("h1")).to_have_text(f"Model {DEPLOYMENT}")
    for chart in ("requests", "errors", "latency", "confidence"):
        figure = page.locator(f"#chart-{chart}")
        expect(figure.locator("canvas").first).to_be_visible()
        expect(figure.locator("details.table-view tbody tr").first).to_be_attached()
    latency = page.locator("#chart-latency")
    assert latency.locator("canvas").first.bounding_box() is not None
    rows = latency.locator("details.table-view tbody tr")
    assert rows.count() > 1 and "No data" not in rows.first.inner_text()
    shoot(page, "operator-model")
    latency.locator("summary").click()
    expect(latency.locator("thead")).to_contain_text("p99 (s)")
    page.select_option("#window", "1h")
    page.select_option("#tenant", "acme-grocers")
    page.click("form.filters button[type=submit]")
    expect(page).to_have_url(site.url + f"/ui/models/{DEPLOYMENT}?window=1h&tenant=acme-grocers")
    expect(page.locator("#chart-requests canvas").first).to_be_visible()
    for path, heading, name in OPERATOR_PAGES:
        page.click(f"nav >> a[href='{path}']")
        expect(page.locator("h1")).to_have_text(heading)
        shoot(page, name)
        if path == "/ui/alerts":
            expect(page.locator("#firing")).to_contain_text("HighErrorRate for bayside-market")
            expect(page.locator("#oncall")).not_to_contain_text("No on-call schedule")
            page.locator("#firing button[data-action=resolve]").first.click()
            expect(page.get_by_role("status")).to_contain_text("resolved 1 alert(s)")
            shoot(page, "operator-alert-resolved")
        elif path == "/ui/incidents":
            page.click("text=HighErrorRate (tenant=acme-grocers)")
            expect(page.locator("#timeline")).to_contain_text("HighErrorRate fired")
            shoot(page, "operator-incident")
        elif path == "/ui/capacity":
            figure = page.locator(f"#decisions-{DEPLOYMENT}")
            expect(figure.locator("canvas").first).to_be_visible()
            assert figure.locator("details.table-view tbody tr").count() == 4
            expect(page.locator("main")).to_contain_text("MASE")
            expect(page.locator("main")).to_contain_text("idle")
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(site.url + f"/ui/models/{DEPLOYMENT}")
    expect(page.locator("#chart-latency canvas").first).to_be_visible()
    shoot(page, "operator-model-phone")
    page.close()


def test_a_customer_walks_its_incidents_usage_credits_and_report(
    browser: Browser, site: Site
) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 800}, accept_downloads=True)
    page = context.new_page()
    sign_in(page, site, "/portal/login", "api_key", site.keys["acme-grocers"])
    expect(page).to_have_url(site.url + "/portal/")
    for path, heading, name in PORTAL_PAGES:
        page.click(f"nav >> a[href='{path}']")
        expect(page.locator("h1")).to_have_text(heading)
        main = page.locator("main")
        expect(main).not_to_contain_text("bayside-market")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, path
        shoot(page, name)
    expect(page.locator("#credits")).to_contain_text("120.00")
    expect(page.locator("#credits")).not_to_contain_text("7.00")
    page.click("nav >> a[href='/portal/']")
    with page.expect_download() as download:
        page.click("a[href='/portal/reports/2026-11']")
    assert download.value.suggested_filename == "sla-report-acme-grocers-2026-11.html"
    saved = Path(download.value.path()).read_text()
    assert "SLA report: acme-grocers, enterprise-gold, 2026-11" in saved
    assert "bayside-market" not in saved
    # Nothing else by URL: no operator page, no other tenant's data.
    for path in (
        f"/ui/models/{DEPLOYMENT}",
        f"/ui/api/series?model={DEPLOYMENT}",
        "/ui/alerts",
        "/ui/incidents",
        "/ui/incidents/1",
        "/ui/slas",
        "/ui/capacity",
    ):
        response = page.goto(site.url + path)
        assert response is not None and response.status == 403, path
    for path, _, _ in PORTAL_PAGES:
        page.goto(site.url + path + "?tenant=bayside-market")
        expect(page.locator("main")).not_to_contain_text("bayside-market")
    shoot(page, "portal-other-tenant-by-url")
    context.close()
