"""The review queue over HTTP, for each tenant's own people: list, next, label.

A tenant's API key scopes every call: the tenant comes from the key, never from the request,
and another tenant's item answers 404 exactly as a missing one does, so ids reveal nothing.
Labels are stored (as feedback, counting in accuracy) before the response says so. This is not
the inference hot path: each call reads the store.

    GET  /v1/review/items?model=M&status=open|labelled|all&limit=N
    GET  /v1/review/next?model=M                  (204 when the queue is empty)
    POST /v1/review/items/{id}/label  {"label": "apple"}
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs

from modelfleet.clock import Clock
from modelfleet.errors import InvalidInput
from modelfleet.gateway.app import Receive, Scope, Send, parse_json, read_body
from modelfleet.gateway.errors import HTTPError, not_found
from modelfleet.review import label_item, list_items, next_item
from modelfleet.review.queue import STATUSES, get_item
from modelfleet.store import Store
from modelfleet.web.replies import answer
from modelfleet.web.tenants import tenant_of

PREFIX = "/v1/review"
MAX_BODY = 64 * 1024


class ReviewAPI:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await answer(send, lambda: self._dispatch(scope, receive))

    async def _dispatch(self, scope: Scope, receive: Receive) -> tuple[int, Any]:
        method, parts = scope["method"], scope["path"][len(PREFIX) :].strip("/").split("/")
        query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        tenant = await asyncio.to_thread(self._tenant, scope)
        if parts == ["items"] and method == "GET":
            status = query.get("status", "open")
            if status not in STATUSES:
                raise InvalidInput(f"unknown status {status!r}; use {', '.join(STATUSES)}")
            limit = _limit(query.get("limit", "100"))
            items = await asyncio.to_thread(self._list, tenant, query.get("model"), status, limit)
            return 200, {"items": items}
        if parts == ["next"] and method == "GET":
            item = await asyncio.to_thread(self._next, tenant, query.get("model"))
            return (204, None) if item is None else (200, item)
        if len(parts) == 3 and parts[0] == "items" and parts[2] == "label" and method == "POST":
            if not parts[1].isdigit():
                raise HTTPError(404, f"no review item {parts[1]!r}")
            label = _label(parse_json(await read_body(scope, receive, MAX_BODY)))
            return 200, await asyncio.to_thread(self._label, tenant, int(parts[1]), label)
        raise not_found(f"review endpoint {method} {scope['path']}")

    def _tenant(self, scope: Scope) -> str:
        return tenant_of(self.store, scope)

    def _list(self, tenant: str, model: str | None, status: Any, limit: int) -> list[Any]:
        with self.store.begin() as conn:
            found = list_items(conn, tenant=tenant, model=model, status=status, limit=limit)
        return [item.to_dict() for item in found]

    def _next(self, tenant: str, model: str | None) -> Any:
        with self.store.begin() as conn:
            item = next_item(conn, tenant=tenant, model=model)
        return None if item is None else item.to_dict()

    def _label(self, tenant: str, item_id: int, label: str) -> Any:
        with self.store.begin() as conn:
            try:
                get_item(conn, item_id, tenant=tenant)
            except InvalidInput as exc:
                raise HTTPError(404, str(exc)) from exc
            item = label_item(
                conn, item_id, label, actor=f"tenant:{tenant}", now=self.clock.now(), tenant=tenant
            )
        return item.to_dict()


def _limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise InvalidInput(f"limit must be a whole number from 1 to 1000, got {text!r}")
    return int(text)


def _label(data: Any) -> str:
    if not isinstance(data, dict) or set(data) != {"label"} or not isinstance(data["label"], str):
        raise InvalidInput('send a JSON object {"label": "<one of the model\'s labels>"}')
    return data["label"]
