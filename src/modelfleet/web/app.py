"""What `modelfleet up` serves: the gateway, with the web APIs beside it on the same port.

Requests under `/v1/review` and `/v1/sla` go to the tenants' review and SLA APIs, those under
`/api/v2` to the operators' alerts API (Alertmanager's paths), those under `/ui` and `/portal` to
the operators' dashboard and the customers' portal (`web/ui/`); everything else, the lifespan
included, to the gateway. The gateway stays the data plane and imports nothing from here.
"""

from __future__ import annotations

from starlette.applications import Starlette

from modelfleet.clock import Clock, SystemClock
from modelfleet.gateway.app import Receive, Scope, Send
from modelfleet.gateway.server import GatewayServer, build_server
from modelfleet.settings import Settings
from modelfleet.store import open_store
from modelfleet.web import alerts_api, review_api, sla_api
from modelfleet.web.alerts_api import AlertsAPI
from modelfleet.web.review_api import ReviewAPI
from modelfleet.web.sla_api import SLAAPI
from modelfleet.web.ui.app import build_ui

UI_PREFIXES = ("/ui", "/portal")


class FleetApp:
    def __init__(
        self,
        gateway: GatewayServer,
        review: ReviewAPI,
        alerts: AlertsAPI | None = None,
        sla: SLAAPI | None = None,
        ui: Starlette | None = None,
    ) -> None:
        self.gateway = gateway
        self.review = review
        self.alerts = alerts
        self.sla = sla
        self.ui = ui

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and _under(path, review_api.PREFIX):
            await self.review(scope, receive, send)
        elif (
            scope["type"] == "http" and self.alerts is not None and _under(path, alerts_api.PREFIX)
        ):
            await self.alerts(scope, receive, send)
        elif scope["type"] == "http" and self.sla is not None and _under(path, sla_api.PREFIX):
            await self.sla(scope, receive, send)
        elif (
            scope["type"] == "http"
            and self.ui is not None
            and any(_under(path, p) for p in UI_PREFIXES)
        ):
            await self.ui(scope, receive, send)
        else:
            await self.gateway(scope, receive, send)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def build_app(settings: Settings, clock: Clock, **options: object) -> FleetApp:
    gateway = build_server(settings, clock, **options)
    store = open_store(settings.database_url)
    alerts = AlertsAPI(store, clock, admin_token_sha256=settings.admin_token_sha256)
    ui = build_ui(store, clock, settings)
    return FleetApp(gateway, ReviewAPI(store, clock), alerts, SLAAPI(store, clock), ui)


def create_app() -> FleetApp:
    """The application factory uvicorn calls in each worker process."""
    return build_app(Settings.from_env(), SystemClock(), freeze_gc=True)
