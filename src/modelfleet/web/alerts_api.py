"""Alerts and silences over HTTP, for operators: the part of Alertmanager's API v2 tools expect.

Every call needs the operators' token (`MODELFLEET_ADMIN_TOKEN`; the process keeps only its
SHA-256 and compares in constant time). Without one configured the API answers 403 and says
how to turn it on. Tenants' API keys are never accepted here: silences act on the whole fleet.

    GET    /api/v2/alerts            firing alerts, with their silences and inhibitions
    GET    /api/v2/silences          every silence, active, pending and expired
    POST   /api/v2/silences          {"matchers": [{"name", "value", "isRegex", "isEqual"}],
                                      "startsAt", "endsAt", "createdBy", "comment"}
    DELETE /api/v2/silence/{id}      expire it now
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from datetime import datetime
from typing import Any

from modelfleet.alerts.records import list_alerts
from modelfleet.alerts.silences import Silence, create_silence, expire_silence, list_silences
from modelfleet.clock import Clock
from modelfleet.errors import InvalidInput, NotFound
from modelfleet.gateway.app import Receive, Scope, Send, parse_json, read_body
from modelfleet.gateway.errors import HTTPError, not_found, unauthorized
from modelfleet.store import Store
from modelfleet.web.replies import answer

PREFIX = "/api/v2"
MAX_BODY = 64 * 1024


class AlertsAPI:
    def __init__(self, store: Store, clock: Clock, *, admin_token_sha256: str | None) -> None:
        self.store = store
        self.clock = clock
        self.admin_token_sha256 = admin_token_sha256

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await answer(send, lambda: self._authorized(scope, receive))

    async def _authorized(self, scope: Scope, receive: Receive) -> tuple[int, Any]:
        self._authorize(scope)
        try:
            return await self._dispatch(scope, receive)
        except NotFound as exc:  # an unknown silence: the resource is missing, not the input
            raise HTTPError(404, str(exc)) from exc

    def _authorize(self, scope: Scope) -> None:
        if self.admin_token_sha256 is None:
            raise HTTPError(
                403, "the operators' API is off: start modelfleet with MODELFLEET_ADMIN_TOKEN set"
            )
        header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        if header is None or not header.startswith(b"Bearer "):
            raise unauthorized("missing operator token: send 'Authorization: Bearer <token>'")
        presented = hashlib.sha256(header[7:].strip()).hexdigest()
        if not hmac.compare_digest(presented, self.admin_token_sha256):
            raise unauthorized("wrong operator token")

    async def _dispatch(self, scope: Scope, receive: Receive) -> tuple[int, Any]:
        method, path = scope["method"], scope["path"][len(PREFIX) :].rstrip("/")
        if path == "/alerts" and method == "GET":
            return 200, await asyncio.to_thread(self._alerts)
        if path == "/silences" and method == "GET":
            return 200, await asyncio.to_thread(self._silences)
        if path == "/silences" and method == "POST":
            data = parse_json(await read_body(scope, receive, MAX_BODY))
            return 200, await asyncio.to_thread(self._create, data)
        if path.startswith("/silence/") and method == "DELETE":
            text = path.removeprefix("/silence/")
            if not text.isdigit():
                raise HTTPError(404, f"no silence {text!r}")
            return 200, await asyncio.to_thread(self._expire, int(text))
        raise not_found(f"endpoint {method} {scope['path']}")

    def _alerts(self) -> list[dict[str, Any]]:
        with self.store.begin() as conn:
            firing = list_alerts(conn, state="firing", limit=10_000)
        out = []
        for a in firing:
            muted = a.suppressed_by
            out.append(
                {
                    "fingerprint": a.fingerprint,
                    "labels": a.labels,
                    "annotations": a.annotations,
                    "startsAt": a.starts_at.isoformat(),
                    "endsAt": a.ends_at.isoformat() if a.ends_at else None,
                    "status": {
                        "state": "suppressed" if muted else "active",
                        "silencedBy": [
                            m.split(":", 1)[1] for m in muted if m.startswith("silence:")
                        ],
                        "inhibitedBy": [
                            m.split(":", 1)[1] for m in muted if m.startswith("inhibited:")
                        ],
                    },
                }
            )
        return out

    def _silences(self) -> list[dict[str, Any]]:
        now = self.clock.now()
        with self.store.begin() as conn:
            found = list_silences(conn, include_expired=True)
        return [_silence(s, now) for s in found]

    def _create(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise InvalidInput(
                "send a JSON object with matchers, startsAt, endsAt, createdBy, comment"
            )
        matchers = [_matcher(m) for m in data.get("matchers") or []]
        try:
            starts_at = datetime.fromisoformat(
                str(data.get("startsAt") or self.clock.now().isoformat())
            )
            ends_at = datetime.fromisoformat(str(data["endsAt"]))
        except (KeyError, ValueError) as exc:
            raise InvalidInput(
                f"startsAt and endsAt are RFC 3339 times with a zone ({exc})"
            ) from None
        created_by, comment = data.get("createdBy"), data.get("comment", "")
        if not isinstance(created_by, str) or not created_by.strip():
            raise InvalidInput("createdBy names who silences (a person, a tool)")
        with self.store.begin() as conn:
            silence = create_silence(
                conn,
                matchers=matchers,
                starts_at=starts_at,
                ends_at=ends_at,
                created_by=created_by,
                comment=str(comment),
                now=self.clock.now(),
            )
        return {"silenceID": str(silence.id)}

    def _expire(self, silence_id: int) -> dict[str, Any]:
        with self.store.begin() as conn:
            silence = expire_silence(conn, silence_id, self.clock.now())
        return _silence(silence, self.clock.now())


def _matcher(data: Any) -> str:
    """Alertmanager's matcher object, as the text fleet.yaml and the CLI use."""
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise InvalidInput(
            'a matcher is {"name": ..., "value": ..., "isRegex": ..., "isEqual": ...}'
        )
    value = str(data.get("value", "")).replace("\\", "\\\\").replace('"', '\\"')
    regex, equal = bool(data.get("isRegex", False)), bool(data.get("isEqual", True))
    op = {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}
    return f'{data["name"]}{op[(regex, equal)]}"{value}"'


def _silence(s: Silence, now: datetime) -> dict[str, Any]:
    state = "active" if s.active(now) else ("pending" if now < s.starts_at else "expired")
    return {
        "id": str(s.id),
        "matchers": [
            {
                "name": m.label,
                "value": m.value,
                "isRegex": m.op in ("=~", "!~"),
                "isEqual": m.op in ("=", "=~"),
            }
            for m in s.matchers
        ],
        "startsAt": s.starts_at.isoformat(),
        "endsAt": s.ends_at.isoformat(),
        "createdBy": s.created_by,
        "comment": s.comment,
        "status": {"state": state},
    }
