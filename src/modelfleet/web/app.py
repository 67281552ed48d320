"""What `modelfleet up` serves: the gateway, with the web APIs beside it on the same port.

Requests under `/v1/review` go to the review API; everything else, the lifespan included, to
the gateway. The gateway stays the data plane and imports nothing from here.
"""

from __future__ import annotations

from modelfleet.clock import Clock, SystemClock
from modelfleet.gateway.app import Receive, Scope, Send
from modelfleet.gateway.server import GatewayServer, build_server
from modelfleet.settings import Settings
from modelfleet.store import open_store
from modelfleet.web.review_api import PREFIX, ReviewAPI


class FleetApp:
    def __init__(self, gateway: GatewayServer, review: ReviewAPI) -> None:
        self.gateway = gateway
        self.review = review

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.review(scope, receive, send)
        else:
            await self.gateway(scope, receive, send)


def build_app(settings: Settings, clock: Clock, **options: object) -> FleetApp:
    gateway = build_server(settings, clock, **options)
    return FleetApp(gateway, ReviewAPI(open_store(settings.database_url), clock))


def create_app() -> FleetApp:
    """The application factory uvicorn calls in each worker process."""
    return build_app(Settings.from_env(), SystemClock(), freeze_gc=True)
