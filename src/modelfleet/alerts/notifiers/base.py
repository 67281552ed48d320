"""The one seam every integration implements: `Notifier.send`, and how HTTP failures are judged.

A notifier turns a `Notification` into its integration's format and hands it over; it either
returns (the receiver accepted it) or raises `DeliveryFailed`, whose `retryable` tells the
delivery loop whether to try again after a backoff. Errors of the HTTP client and of smtplib
are translated where they enter, so callers see one error type.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

import httpx

from modelfleet.alerts.notification import Notification
from modelfleet.errors import DeliveryFailed

__all__ = ["DeliveryFailed", "JSONNotifier", "Notifier", "post_json", "rfc3339", "truncate"]

# How much of a refusing receiver's answer goes into the reason a person reads.
_ANSWER_CHARS = 200


class Notifier(Protocol):
    """Delivers notifications to one target of one integration (a URL, a routing key, a mailbox)."""

    def send(self, notification: Notification) -> None:
        """Deliver, or raise `DeliveryFailed`."""
        ...


class _HasURL(Protocol):
    @property
    def url(self) -> str: ...


C = TypeVar("C", bound=_HasURL)


class JSONNotifier(Generic[C]):
    """A notifier that POSTs one JSON body per notification to its config's `url`: what the
    webhook, Slack and PagerDuty integrations share. Each says its `integration` and builds
    its `body`; a `transport` is for tests that bring an httpx transport."""

    integration = "http"

    def __init__(
        self, config: C, *, timeout_s: float = 10.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.config = config
        self.timeout_s = timeout_s
        self.transport = transport

    def body(self, notification: Notification) -> dict[str, Any]:
        raise NotImplementedError

    def send(self, notification: Notification) -> None:
        post_json(
            self.config.url,
            self.body(notification),
            timeout_s=self.timeout_s,
            transport=self.transport,
            integration=self.integration,
        )


def post_json(
    url: str,
    body: dict[str, Any],
    *,
    timeout_s: float,
    transport: httpx.BaseTransport | None = None,
    integration: str,
) -> httpx.Response:
    """POST `body` as JSON; a 2xx answer is returned, anything else raises `DeliveryFailed`.

    Retryable: 5xx, 429, timeouts and connection errors, which the receiver may get over.
    Not retryable: other 4xx and 3xx, which say the request itself is wrong (a bad key, a
    removed webhook) and will be refused the same way next time.
    A `transport` passed in belongs to the caller and is not closed here.
    """
    client = httpx.Client(transport=transport, timeout=timeout_s)
    try:
        response = client.post(url, json=body)
    except httpx.UnsupportedProtocol as exc:
        raise DeliveryFailed(f"{integration} {url}: {exc}", retryable=False) from exc
    except httpx.TimeoutException as exc:
        raise DeliveryFailed(
            f"{integration} {url}: no answer within {timeout_s:g}s ({type(exc).__name__})",
            retryable=True,
        ) from exc
    except httpx.TransportError as exc:
        raise DeliveryFailed(
            f"{integration} {url}: {type(exc).__name__}: {exc}", retryable=True
        ) from exc
    finally:
        if transport is None:
            client.close()
    if response.is_success:
        return response
    status = response.status_code
    answer = response.text.strip()[:_ANSWER_CHARS]
    raise DeliveryFailed(
        f"{integration} {url} answered {status} {response.reason_phrase}"
        + (f": {answer}" if answer else ""),
        retryable=status >= 500 or status == 429,
    )


def rfc3339(moment: datetime) -> str:
    """A time as RFC 3339 in UTC with a `Z`, as Alertmanager and PagerDuty write them."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} is naive; alert times are timezone-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
