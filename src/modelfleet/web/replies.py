"""How the web APIs answer: JSON bodies, and errors turned into their status codes in one place.

An `HTTPError` answers its own status and headers, an `InvalidInput` (a person's mistake) 400;
anything else is a bug and propagates to the server's log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from modelfleet.errors import InvalidInput
from modelfleet.gateway.app import Send
from modelfleet.gateway.errors import HTTPError

JSON = [(b"content-type", b"application/json")]


async def answer(send: Send, handle: Callable[[], Awaitable[tuple[int, Any]]]) -> None:
    """Reply with what `handle` returns (status, body), or with the error it raised."""
    headers: list[tuple[bytes, bytes]] = []
    try:
        status, body = await handle()
    except HTTPError as exc:
        status, body = exc.status, {"error": exc.message}
        headers += exc.headers
    except InvalidInput as exc:
        status, body = 400, {"error": str(exc)}
    await reply(send, status, body, headers)


async def reply(
    send: Send, status: int, body: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A JSON response (an empty body for 204)."""
    await send({"type": "http.response.start", "status": status, "headers": JSON + (headers or [])})
    payload = b"" if status == 204 else orjson.dumps(body)
    await send({"type": "http.response.body", "body": payload})
