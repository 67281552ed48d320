"""Each customer's SLA over HTTP, with its own API key: its figures, incidents and credits.

The tenant comes from the key, never from the request: no path or parameter names a tenant,
so one tenant's key cannot ask for another's SLA. This is not the inference hot path: each
call reads the store.

    GET /v1/sla              the current period of every SLA covering the caller
    GET /v1/sla/{period}     a past or current period, e.g. /v1/sla/2026-11
"""

from __future__ import annotations

import asyncio
from typing import Any

from modelfleet.clock import Clock
from modelfleet.config.schema import SLA
from modelfleet.errors import InvalidInput
from modelfleet.gateway.app import Receive, Scope, Send
from modelfleet.gateway.errors import HTTPError, not_found
from modelfleet.registry.declarations import declared
from modelfleet.sla.periods import parse_period
from modelfleet.sla.status import covered_tenants, ledger, tenant_status
from modelfleet.store import Store
from modelfleet.web.replies import answer
from modelfleet.web.tenants import tenant_of

PREFIX = "/v1/sla"


class SLAAPI:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await answer(send, lambda: self._dispatch(scope))

    async def _dispatch(self, scope: Scope) -> tuple[int, Any]:
        if scope["method"] != "GET":
            raise HTTPError(405, "the SLA API only answers GET", [(b"allow", b"GET")])
        return await asyncio.to_thread(self._answer, scope)

    def _answer(self, scope: Scope) -> tuple[int, Any]:
        tenant = self._tenant(scope)
        rest = scope["path"][len(PREFIX) :].strip("/")
        if "/" in rest:
            raise not_found(f"SLA endpoint {scope['path']}")
        now = self.clock.now()
        with self.store.begin() as conn:
            mine = [s for s in declared(conn, SLA) if tenant in covered_tenants(conn, s)]
            if not mine:
                raise HTTPError(404, "no SLA covers your account")
            reports = []
            for sla in mine:
                try:
                    period = parse_period(rest, sla.spec.time_zone) if rest else None
                except ValueError as exc:
                    raise InvalidInput(str(exc)) from None
                status = tenant_status(conn, sla, tenant, now, period)
                report = status.to_dict()
                report["ledger"] = [
                    {
                        "period": r.period,
                        "state": r.state,
                        "share": r.share,
                        "amount": r.amount,
                        "currency": r.currency,
                        "reasons": r.reasons,
                    }
                    for r in ledger(conn, tenant=tenant)
                    if r.sla == sla.name and (not rest or r.period == rest)
                ]
                reports.append(report)
        return 200, {"tenant": tenant, "slas": reports}

    def _tenant(self, scope: Scope) -> str:
        return tenant_of(self.store, scope)
