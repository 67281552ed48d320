"""Delivery: the notifier a stored integration target gets, one attempt judged, and the wait
before the next.

The alert controller stores each receiver's integrations as their config models dumped to JSON
(`by_alias=True`); `notifier_for` builds the notifier back from that, taking secrets (SMTP
passwords) from the mapping the caller read through the settings module. `deliver` makes one
attempt and records its outcome instead of raising; a retryable failure is tried again after
`backoff(attempt)`, up to `MAX_ATTEMPTS` attempts in all.

The backoff has no jitter, on purpose. Jitter spreads many independent clients hitting one
service; here the senders are one controller's groups (tens, not thousands), whose retries
already happen on the controller's ticks, so jitter would buy little and cost exact,
reproducible schedules on a virtual clock (a page's escalation timing is tested to the second).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from pydantic import ValidationError

from modelfleet.alerts.notification import Notification
from modelfleet.alerts.notifiers.base import Notifier
from modelfleet.alerts.notifiers.email import EmailNotifier
from modelfleet.alerts.notifiers.pagerduty import PagerDutyNotifier
from modelfleet.alerts.notifiers.slack import SlackNotifier
from modelfleet.alerts.notifiers.webhook import WebhookNotifier
from modelfleet.config.alerting import EmailConfig, PagerDutyConfig, SlackConfig, WebhookConfig
from modelfleet.errors import DeliveryFailed

log = logging.getLogger(__name__)

Integration = Literal["webhook", "slack", "pagerduty", "email"]

BACKOFF_BASE = timedelta(seconds=10)
BACKOFF_FACTOR = 2
BACKOFF_CAP = timedelta(minutes=10)
# With the waits above, the eighth attempt comes about 20.5 minutes after the first
# (10 + 20 + 40 + 80 + 160 + 320 + 600 s).
MAX_ATTEMPTS = 8


def backoff(attempt: int) -> timedelta:
    """The wait after failed attempt number `attempt` (from 1): 10 s, 20 s, 40 s, … at most 10 min."""
    if attempt < 1:
        raise ValueError(f"attempts count from 1; got {attempt}")
    # 10 s * 2**6 is already past the cap; bounding the exponent keeps huge attempts cheap.
    growth: int = BACKOFF_FACTOR ** min(attempt - 1, 16)
    return min(BACKOFF_BASE * growth, BACKOFF_CAP)


def notifier_for(
    integration: Integration,
    target: Mapping[str, Any],
    *,
    secrets: Mapping[str, str],
    timeout_s: float = 10.0,
) -> Notifier:
    """The notifier for one stored integration target (its config model's JSON, by alias).

    `secrets` maps an environment variable's name to its value, for `password_env`.
    Raises `DeliveryFailed` (not retryable) for a target that does not validate, a secret
    that is missing, or an unknown integration: trying again cannot fix any of them.
    """
    try:
        if integration == "webhook":
            return WebhookNotifier(WebhookConfig.model_validate(target), timeout_s=timeout_s)
        if integration == "slack":
            return SlackNotifier(SlackConfig.model_validate(target), timeout_s=timeout_s)
        if integration == "pagerduty":
            return PagerDutyNotifier(PagerDutyConfig.model_validate(target), timeout_s=timeout_s)
        if integration == "email":
            config = EmailConfig.model_validate(target)
            return EmailNotifier(config, password=_password(config, secrets), timeout_s=timeout_s)
    except ValidationError as exc:
        raise DeliveryFailed(
            f"{integration}: the stored target is not a valid {integration} config: {exc}",
            retryable=False,
        ) from exc
    raise DeliveryFailed(
        f"unknown integration {integration!r}; expected webhook, slack, pagerduty or email",
        retryable=False,
    )


def _password(config: EmailConfig, secrets: Mapping[str, str]) -> str | None:
    if config.password_env is None:
        return None
    password = secrets.get(config.password_env)
    if password is None:
        raise DeliveryFailed(
            f"email via {config.smarthost}: the password variable {config.password_env} "
            "is not set in modelfleet's environment",
            retryable=False,
        )
    return password


@dataclass(frozen=True)
class DeliveryResult:
    """One attempt's outcome: delivered, or why not and whether to try again."""

    ok: bool
    error: str | None = None
    retryable: bool = False


def deliver(notifier: Notifier, notification: Notification) -> DeliveryResult:
    """Make one attempt; never raises.

    An error other than `DeliveryFailed` is a notifier's bug or a failure nobody foresaw; it is
    logged with its traceback and counted retryable, since a lost page costs more than a few
    wasted attempts.
    """
    try:
        notifier.send(notification)
    except DeliveryFailed as exc:
        return DeliveryResult(ok=False, error=exc.reason, retryable=exc.retryable)
    except Exception as exc:
        log.exception("%s failed unexpectedly", type(notifier).__name__)
        return DeliveryResult(ok=False, error=f"{type(exc).__name__}: {exc}", retryable=True)
    return DeliveryResult(ok=True)
