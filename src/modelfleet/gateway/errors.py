"""HTTP errors of the gateway: each carries its status, message and headers.

The ASGI app turns these (and `InvalidInput` from the layers below) into `{"error": ...}`
responses in one place.
"""

from __future__ import annotations

from collections.abc import Sequence


class HTTPError(Exception):
    """A response other than success, with what the client needs to know."""

    def __init__(
        self, status: int, message: str, headers: Sequence[tuple[bytes, bytes]] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = list(headers)


def unauthorized(message: str) -> HTTPError:
    return HTTPError(401, message, [(b"www-authenticate", b'Bearer realm="modelfleet"')])


def not_found(what: str) -> HTTPError:
    return HTTPError(404, f"{what} not found")


def too_many(reason: str, retry_after: float) -> HTTPError:
    # Retry-After takes whole seconds; round up so a client that obeys it gets in.
    seconds = max(1, int(-(-retry_after // 1)))
    return HTTPError(429, reason, [(b"retry-after", str(seconds).encode())])


def overloaded() -> HTTPError:
    return HTTPError(503, "the gateway is overloaded; retry shortly", [(b"retry-after", b"1")])
