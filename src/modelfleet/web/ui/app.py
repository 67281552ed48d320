"""The operator dashboard (`/ui`) and the customers' portal (`/portal`): server-rendered pages.

Who may open what is decided here, on the server, by URL: every `/ui/...` page but the sign-in
needs an operator session, every `/portal/...` page but the sign-in a tenant session, and a
portal page shows only the data of the session's tenant, which never comes from the request.
Every form that changes something carries its session's CSRF token and is refused (403)
without it; any POST whose `Origin` is another site's is refused too.

    GET  /ui/login, POST /ui/login            operators sign in with the admin token
    GET  /ui/                                 fleet overview (refreshes itself every 15 s)
    GET  /ui/rollouts                         every deployment's latest rollout, with evidence
    POST /ui/rollouts/{deployment}/{action}   pause, resume, abort, promote, rollback
    GET  /ui/models/{model}                   a model's charts (?window=6h&tenant=)
    GET  /ui/api/series                       their JSON (?model=&window=&tenant=)
    GET  /ui/alerts                           firing alerts, active silences, who is on call
    POST /ui/alerts/{target}/{action}         acknowledge, resolve (as `alerts ack|resolve`)
    GET  /ui/incidents, /ui/incidents/{id}    incidents with MTTD/MTTA/MTTR; one's timeline
    GET  /ui/slas                             every tenant's SLOs, budget and credit at risk
    GET  /ui/capacity                         replicas, decisions, forecast, cost per tenant
    POST /ui/logout                           sign out
    GET  /portal/login, POST /portal/login    customers sign in with an API key
    GET  /portal/                             the tenant's SLAs this period
    GET  /portal/incidents                    the incidents that affected the tenant
    GET  /portal/usage                        its requests per day, the last 30 days
    GET  /portal/credits                      its service credits ledger
    GET  /portal/reports/{period}             its SLA report (HTML, as `sla report`), to save
    POST /portal/logout                       sign out
    GET  /ui/static/...                       CSS and JS, all served from here
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Connection
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from modelfleet.alerts import commands as alert_commands
from modelfleet.clock import Clock
from modelfleet.config.schema import SLA, Model, ModelVersion, Tenant
from modelfleet.errors import InvalidInput, NotFound
from modelfleet.monitors.profile import read_profile
from modelfleet.regions.global_view import global_rollups
from modelfleet.regions.stores import region_stores
from modelfleet.registry import load_state
from modelfleet.registry.declarations import declared
from modelfleet.rollouts import (
    abort,
    current_judgement,
    events_of,
    latest_rollout,
    pause,
    promote_now,
    resume,
    rollback,
)
from modelfleet.settings import Settings
from modelfleet.sla.periods import parse_period
from modelfleet.sla.report import render_html_all
from modelfleet.sla.status import covered_tenants, tenant_status
from modelfleet.store import Store
from modelfleet.web.ui import boards, sessions
from modelfleet.web.ui.overview import fleet_overview
from modelfleet.web.ui.series import model_series
from modelfleet.web.ui.sessions import COOKIE, LIFETIME, Session

HERE = Path(__file__).parent
ACTOR = "operator:web"
REFRESH_S = 15
ACTIONS: dict[str, Callable[..., Any]] = {
    "pause": pause,
    "resume": resume,
    "abort": abort,
    "promote": promote_now,
    "rollback": rollback,
}
ALERT_ACTIONS: dict[str, Callable[..., Any]] = {
    "acknowledge": alert_commands.acknowledge,
    "resolve": alert_commands.resolve,
}
WINDOWS = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
DEFAULT_WINDOW = "6h"
USAGE_DAYS = 30
REPORT_PERIODS = 3  # the portal links this month's report and the two before
OPERATOR_LINKS = (
    ("/ui/", "Fleet"),
    ("/ui/rollouts", "Rollouts"),
    ("/ui/alerts", "Alerts"),
    ("/ui/incidents", "Incidents"),
    ("/ui/slas", "SLAs"),
    ("/ui/capacity", "Capacity"),
)
PORTAL_LINKS = (
    ("/portal/", "My SLAs"),
    ("/portal/incidents", "Incidents"),
    ("/portal/usage", "Usage"),
    ("/portal/credits", "Credits"),
)
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class SignInRequired(Exception):
    """No valid session for the area: the browser goes to its sign-in page."""

    def __init__(self, url: str) -> None:
        self.url = url


class UI:
    """The pages, with what they read: the store, the clock and the operators' token hash."""

    def __init__(self, store: Store, clock: Clock, settings: Settings) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.admin_token_sha256 = settings.admin_token_sha256
        env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(default=True),
        )
        env.filters["duration"] = _duration
        self.templates = Jinja2Templates(env=env)

    # -- sessions and guards -------------------------------------------------------------------

    async def _session(self, request: Request) -> Session | None:
        sid = request.cookies.get(COOKIE)
        found: Session | None = await self._read(
            lambda conn: sessions.find_session(conn, sid, now=self.clock.now())
        )
        return found

    async def _operator(self, request: Request) -> Session:
        session = await self._session(request)
        if session is None:
            raise SignInRequired("/ui/login")
        if session.kind != "operator":
            raise HTTPException(403, "operators only: this session is a customer's")
        return session

    async def _tenant(self, request: Request) -> Session:
        session = await self._session(request)
        if session is None or session.kind != "tenant":
            raise SignInRequired("/portal/login")
        return session

    async def _form(self, request: Request, session: Session | None) -> dict[str, str]:
        """The posted form, once its origin (and, within a session, its CSRF token) checks out."""
        origin = request.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
            raise HTTPException(403, "a form from another site")
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if session is not None and not sessions.csrf_matches(session, fields.get("csrf")):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")
        return fields

    async def _read(self, work: Callable[[Connection], Any]) -> Any:
        return await self._transaction(work, immediate=False)

    async def _write(self, work: Callable[[Connection], Any]) -> Any:
        """`work` reads, then writes: the write lock is taken first, so a control loop
        committing meanwhile makes it wait rather than fail (see `Store.begin`)."""
        return await self._transaction(work, immediate=True)

    async def _transaction(self, work: Callable[[Connection], Any], *, immediate: bool) -> Any:
        def run() -> Any:
            with self.store.begin(immediate=immediate) as conn:
                return work(conn)

        return await asyncio.to_thread(run)

    def page(
        self, request: Request, name: str, context: dict[str, Any], status: int = 200
    ) -> Response:
        links = OPERATOR_LINKS if context.get("area") == "ui" else PORTAL_LINKS
        return self.templates.TemplateResponse(
            request,
            name,
            {"refresh": None, "links": links, **context},
            status_code=status,
            headers=HEADERS,
        )

    def _signed_in(self, session_id: str, to: str) -> Response:
        response = RedirectResponse(to, status_code=303, headers=HEADERS)
        response.set_cookie(
            COOKIE,
            session_id,
            max_age=int(LIFETIME.total_seconds()),
            path="/",
            secure=True,
            httponly=True,
            samesite="lax",
        )
        return response

    async def _sign_out(self, request: Request, session: Session, to: str) -> Response:
        await self._form(request, session)
        sid = request.cookies.get(COOKIE)
        await self._write(lambda conn: sessions.close_session(conn, sid))
        response = RedirectResponse(to, status_code=303, headers=HEADERS)
        response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="lax")
        return response

    # -- operators -----------------------------------------------------------------------------

    async def operator_login(self, request: Request) -> Response:
        error, status = None, 200
        if self.admin_token_sha256 is None:
            error, status = (
                "The dashboard is off: start modelfleet with MODELFLEET_ADMIN_TOKEN set.",
                403,
            )
        elif request.method == "POST":
            fields = await self._form(request, None)
            if sessions.operator_token_matches(fields.get("token", ""), self.admin_token_sha256):
                sid, _ = await self._write(
                    lambda conn: sessions.open_session(
                        conn, "operator", tenant=None, now=self.clock.now()
                    )
                )
                return self._signed_in(sid, "/ui/")
            error, status = "Wrong operator token.", 401
        return self.page(
            request, "login.html", {"area": "ui", "session": None, "error": error}, status
        )

    async def overview(self, request: Request) -> Response:
        session = await self._operator(request)
        now = self.clock.now()
        regions: list[str] = []

        def every_region(since: datetime, until: datetime, model: str) -> Any:
            # The global view: each region's rollups, and no raw record, merged.
            with region_stores(self.store, self.settings.region, self.settings.secrets) as stores:
                regions[:] = [s.region for s in stores]
                return global_rollups(stores, since=since, until=until, model=model)

        rows = await self._read(lambda conn: fleet_overview(conn, now, every_region))
        return self.page(
            request,
            "overview.html",
            {
                "area": "ui",
                "session": session,
                "deployments": rows,
                "regions": regions,
                "now": now,
                "refresh": REFRESH_S,
            },
        )

    async def rollouts(self, request: Request) -> Response:
        session = await self._operator(request)
        return await self._rollouts_page(request, session, None, None)

    async def _rollouts_page(
        self, request: Request, session: Session, message: str | None, error: str | None
    ) -> Response:
        now = self.clock.now()

        def read(conn: Connection) -> list[dict[str, Any]]:
            out = []
            for row in fleet_overview(conn, now):
                rollout = latest_rollout(conn, row.name)
                judgement = None
                if rollout is not None and rollout.state == "running":
                    judgement = current_judgement(conn, rollout, now)
                out.append(
                    {
                        "deployment": row,
                        "rollout": rollout,
                        "judgement": judgement,
                        "timeline": events_of(conn, rollout.id) if rollout is not None else [],
                    }
                )
            return out

        found = await self._read(read)
        context = {
            "area": "ui",
            "session": session,
            "rollouts": found,
            "message": message,
            "error": error,
        }
        return self.page(request, "rollouts.html", context, 400 if error else 200)

    async def rollout_action(self, request: Request) -> Response:
        session = await self._operator(request)
        await self._form(request, session)
        deployment = request.path_params["deployment"]
        action = request.path_params["action"]
        command = ACTIONS.get(action)
        if command is None:
            raise HTTPException(404, f"no rollout action {action!r}")

        def run(conn: Connection) -> str:
            done = command(conn, deployment, actor=ACTOR, now=self.clock.now())
            message = getattr(done, "message", None)
            return str(message) if message else f"{action}: done for {deployment}"

        try:
            message = await self._write(run)
        except InvalidInput as exc:
            return await self._rollouts_page(request, session, None, str(exc))
        return await self._rollouts_page(request, session, message, None)

    # -- operators: models, alerts, incidents, SLAs, capacity ----------------------------------

    def _window(self, request: Request) -> tuple[str, datetime, datetime]:
        window = request.query_params.get("window") or DEFAULT_WINDOW
        if window not in WINDOWS:
            raise HTTPException(400, f"window must be one of {', '.join(WINDOWS)}")
        until = self.clock.now()
        return window, until - WINDOWS[window], until

    async def model_page(self, request: Request) -> Response:
        session = await self._operator(request)
        model = request.path_params["model"]
        window, _, _ = self._window(request)
        tenant = request.query_params.get("tenant") or None

        def read(conn: Connection) -> tuple[list[str], list[str]]:
            state = load_state(conn)
            if model not in {m.resource.metadata.name for m in state.of_kind(Model)}:
                raise HTTPException(404, f"no model {model!r}")
            tenants = sorted(t.resource.metadata.name for t in state.of_kind(Tenant))
            versions = [
                v.resource.metadata.name
                for v in state.of_kind(ModelVersion)
                if isinstance(v.resource, ModelVersion) and v.resource.spec.model == model
            ]
            features: set[str] = set()
            for version in versions:
                profile = read_profile(conn, model, version)
                if profile is not None:
                    features.update(profile.columns)
            return tenants, sorted(features)

        tenants, features = await self._read(read)
        if tenant is not None and tenant not in tenants:
            raise HTTPException(400, f"no tenant {tenant!r}")
        query = {"model": model, "window": window, **({"tenant": tenant} if tenant else {})}
        context = {
            "area": "ui",
            "session": session,
            "model": model,
            "window": window,
            "windows": list(WINDOWS),
            "tenant": tenant,
            "tenants": tenants,
            "features": features,
            "query": query,
        }
        return self.page(request, "model.html", context)

    async def series_api(self, request: Request) -> Response:
        await self._operator(request)
        model = request.query_params.get("model")
        if not model:
            raise HTTPException(400, "model is required")
        _, since, until = self._window(request)
        tenant = request.query_params.get("tenant") or None
        found = await self._read(
            lambda conn: model_series(conn, model, since=since, until=until, tenant=tenant)
        )
        return JSONResponse(found.to_dict(), headers=HEADERS)

    async def alerts(self, request: Request) -> Response:
        session = await self._operator(request)
        return await self._alerts_page(request, session, None, None)

    async def _alerts_page(
        self, request: Request, session: Session, message: str | None, error: str | None
    ) -> Response:
        now = self.clock.now()
        board = await self._read(lambda conn: boards.alerts_board(conn, now))
        context = {
            "area": "ui",
            "session": session,
            "board": board,
            "now": now,
            "message": message,
            "error": error,
        }
        return self.page(request, "alerts.html", context, 400 if error else 200)

    async def alert_action(self, request: Request) -> Response:
        session = await self._operator(request)
        await self._form(request, session)
        target = request.path_params["target"]
        action = request.path_params["action"]
        command = ALERT_ACTIONS.get(action)
        if command is None:
            raise HTTPException(404, f"no alert action {action!r}")

        def run(conn: Connection) -> str:
            done = command(conn, target, actor=ACTOR, now=self.clock.now())
            if action == "acknowledge":
                return "acknowledged group(s) " + ", ".join(str(g.id) for g in done)
            return f"resolved {len(done)} alert(s)"

        try:
            message = await self._write(run)
        except InvalidInput as exc:
            return await self._alerts_page(request, session, None, str(exc))
        return await self._alerts_page(request, session, message, None)

    async def incidents(self, request: Request) -> Response:
        session = await self._operator(request)
        now = self.clock.now()
        board = await self._read(lambda conn: boards.incidents_board(conn, now))
        return self.page(
            request, "incidents.html", {"area": "ui", "session": session, "board": board}
        )

    async def incident(self, request: Request) -> Response:
        session = await self._operator(request)
        incident_id = request.path_params["id"]
        now = self.clock.now()
        try:
            detail = await self._read(lambda conn: boards.incident_detail(conn, incident_id, now))
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from exc
        return self.page(
            request, "incident.html", {"area": "ui", "session": session, "detail": detail}
        )

    async def slas(self, request: Request) -> Response:
        session = await self._operator(request)
        now = self.clock.now()
        rows = await self._read(lambda conn: boards.sla_board(conn, now))
        return self.page(
            request, "slas.html", {"area": "ui", "session": session, "rows": rows, "now": now}
        )

    async def capacity(self, request: Request) -> Response:
        session = await self._operator(request)
        now = self.clock.now()
        models = await self._read(lambda conn: boards.capacity_board(conn, now))
        # Numbers only, and "<" escaped all the same: it is written inside a <script> element.
        charts = {m.model: json.dumps(_decisions_series(m)).replace("<", "\\u003c") for m in models}
        context = {
            "area": "ui",
            "session": session,
            "models": models,
            "charts": charts,
            "hour": timedelta(hours=1),
        }
        return self.page(request, "capacity.html", context)

    async def operator_logout(self, request: Request) -> Response:
        session = await self._operator(request)
        return await self._sign_out(request, session, "/ui/login")

    # -- customers -----------------------------------------------------------------------------

    async def portal_login(self, request: Request) -> Response:
        error, status = None, 200
        if request.method == "POST":
            fields = await self._form(request, None)
            key = fields.get("api_key", "")
            tenant = await self._read(lambda conn: sessions.tenant_of_key(conn, key))
            if tenant is not None:
                sid, _ = await self._write(
                    lambda conn: sessions.open_session(
                        conn, "tenant", tenant=tenant, now=self.clock.now()
                    )
                )
                return self._signed_in(sid, "/portal/")
            error, status = "Unknown or revoked API key.", 401
        return self.page(
            request, "login.html", {"area": "portal", "session": None, "error": error}, status
        )

    async def portal(self, request: Request) -> Response:
        session = await self._tenant(request)
        tenant = session.tenant  # from the session, never from the request
        assert tenant is not None
        now = self.clock.now()

        def read(conn: Connection) -> list[Any]:
            return [
                tenant_status(conn, sla, tenant, now)
                for sla in declared(conn, SLA)
                if tenant in covered_tenants(conn, sla)
            ]

        statuses = await self._read(read)
        return self.page(
            request,
            "portal.html",
            {
                "area": "portal",
                "session": session,
                "tenant": tenant,
                "statuses": statuses,
                "periods": _recent_periods(now, REPORT_PERIODS) if statuses else [],
            },
        )

    def _own(self, session: Session) -> str:
        tenant = session.tenant  # from the session, never from the request
        assert tenant is not None
        return tenant

    async def portal_incidents(self, request: Request) -> Response:
        session = await self._tenant(request)
        tenant = self._own(session)
        now = self.clock.now()
        found = await self._read(lambda conn: boards.tenant_incidents(conn, tenant, now))
        context = {"area": "portal", "session": session, "tenant": tenant, "incidents": found}
        return self.page(request, "portal_incidents.html", context)

    async def portal_usage(self, request: Request) -> Response:
        session = await self._tenant(request)
        tenant = self._own(session)
        until = self.clock.now()
        since = (until - timedelta(days=USAGE_DAYS - 1)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        days = await self._read(lambda conn: boards.tenant_usage(conn, tenant, since, until))
        context = {
            "area": "portal",
            "session": session,
            "tenant": tenant,
            "days": days,
            "since": since,
        }
        return self.page(request, "portal_usage.html", context)

    async def portal_credits(self, request: Request) -> Response:
        session = await self._tenant(request)
        tenant = self._own(session)
        rows = await self._read(lambda conn: boards.tenant_credits(conn, tenant))
        context = {"area": "portal", "session": session, "tenant": tenant, "credits": rows}
        return self.page(request, "portal_credits.html", context)

    async def portal_report(self, request: Request) -> Response:
        session = await self._tenant(request)
        tenant = self._own(session)
        text = request.path_params["period"]
        now = self.clock.now()

        def read(conn: Connection) -> list[Any]:
            found = []
            for sla in declared(conn, SLA):
                if tenant not in covered_tenants(conn, sla):
                    continue
                try:
                    period = parse_period(text, sla.spec.time_zone)
                except ValueError as exc:
                    raise HTTPException(400, str(exc)) from exc
                if period.start > now:
                    raise HTTPException(400, f"period {period} has not started yet")
                found.append(tenant_status(conn, sla, tenant, now, period))
            return found

        statuses = await self._read(read)
        if not statuses:
            raise HTTPException(404, "no SLA covers your account")
        filename = f"sla-report-{tenant}-{text}.html"
        return Response(
            render_html_all(statuses),
            media_type="text/html; charset=utf-8",
            headers={**HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'},
        )

    async def portal_logout(self, request: Request) -> Response:
        session = await self._tenant(request)
        return await self._sign_out(request, session, "/portal/login")

    # -- errors --------------------------------------------------------------------------------

    async def to_sign_in(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        return RedirectResponse(exc.url, status_code=303, headers=HEADERS)

    async def error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        area = "portal" if request.url.path.startswith("/portal") else "ui"
        return self.page(
            request,
            "error.html",
            {"area": area, "session": None, "status": exc.status_code, "detail": exc.detail},
            exc.status_code,
        )


def _duration(seconds: float | None) -> str:
    """A span for people: "–" when unknown, else "45 s", "12 min", "3.5 h", "2.1 d"."""
    if seconds is None:
        return "\u2013"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _recent_periods(now: datetime, count: int) -> list[str]:
    """This month ("2026-11", UTC) and the `count - 1` before it, the newest first."""
    year, month = now.year, now.month
    out = []
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out


def _decisions_series(m: boards.ModelCapacity) -> dict[str, Any]:
    """A capacity board's decisions as the columns `charts.js` draws: replicas and demand."""
    return {
        "timestamps": [int(d.at.timestamp()) for d in m.decisions],
        "replicas": [d.replicas for d in m.decisions],
        "observed_rps": [d.observed_rps for d in m.decisions],
        "forecast_upper_rps": [d.forecast_upper_rps for d in m.decisions],
    }


def _redirect(to: str) -> Callable[[Request], Any]:
    async def go(request: Request) -> Response:
        return RedirectResponse(to, status_code=307)

    return go


def build_ui(store: Store, clock: Clock, settings: Settings) -> Starlette:
    """The dashboard and the portal as one ASGI app; `FleetApp` sends it `/ui` and `/portal`."""
    ui = UI(store, clock, settings)
    routes = [
        Route("/ui", _redirect("/ui/")),
        Route("/ui/", ui.overview),
        Route("/ui/login", ui.operator_login, methods=["GET", "POST"]),
        Route("/ui/logout", ui.operator_logout, methods=["POST"]),
        Route("/ui/rollouts", ui.rollouts),
        Route("/ui/rollouts/{deployment}/{action}", ui.rollout_action, methods=["POST"]),
        Route("/ui/models/{model}", ui.model_page),
        Route("/ui/api/series", ui.series_api),
        Route("/ui/alerts", ui.alerts),
        Route("/ui/alerts/{target}/{action}", ui.alert_action, methods=["POST"]),
        Route("/ui/incidents", ui.incidents),
        Route("/ui/incidents/{id:int}", ui.incident),
        Route("/ui/slas", ui.slas),
        Route("/ui/capacity", ui.capacity),
        Mount("/ui/static", StaticFiles(directory=HERE / "static"), name="static"),
        Route("/portal", _redirect("/portal/")),
        Route("/portal/", ui.portal),
        Route("/portal/login", ui.portal_login, methods=["GET", "POST"]),
        Route("/portal/logout", ui.portal_logout, methods=["POST"]),
        Route("/portal/incidents", ui.portal_incidents),
        Route("/portal/usage", ui.portal_usage),
        Route("/portal/credits", ui.portal_credits),
        Route("/portal/reports/{period}", ui.portal_report),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={SignInRequired: ui.to_sign_in, HTTPException: ui.error},
    )
