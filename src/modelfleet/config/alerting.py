"""The kinds of fleet.yaml that say who hears about what, and what fixes itself.

`AlertRule` (thresholds on metric streams), `Receiver` (where notifications go), `AlertRouting`
(Alertmanager's routing tree, grouping and inhibition), `OnCallSchedule` and `EscalationPolicy`
(who is paged, and who next), and `Runbook` (actions that fix an alert by themselves).
Matchers are written as Alertmanager writes them: `severity="critical"`, `model!="x"`,
`tenant=~"acme|globex"`, `region!~"eu-.*"`.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, EmailStr, Field, StringConstraints, model_validator

from modelfleet.config.base import Duration, Name, Strict
from modelfleet.config.matchers import Matcher

# The metric streams modelfleet watches, per tenant, model, version and region.
MetricName = Literal[
    "request_rate", "error_rate", "latency_p50", "latency_p99", "confidence", "drift_score"
]
Severity = Literal["info", "warning", "critical"]
LabelName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")]


def _matcher(value: str) -> str:
    parsed = Matcher.parse(value)  # a clear ValueError for a malformed one
    if parsed.op in ("=~", "!~"):
        try:
            re.compile(parsed.value)
        except re.error as exc:
            raise ValueError(f"{value!r}: the regular expression is invalid: {exc}") from None
    return value.strip()


MatcherText = Annotated[str, AfterValidator(_matcher)]


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name like Europe/Berlin"
        ) from None
    return value


TimeZone = Annotated[str, AfterValidator(_time_zone)]


# -- alert rules ---------------------------------------------------------------------------


class AlertRuleSpec(Strict):
    """Fire when a metric stream is over (or under) a threshold for a while."""

    metric: MetricName
    op: Literal[">", "<", ">=", "<="]
    threshold: float
    over: Duration = timedelta(minutes=5)  # the window the metric is computed on
    for_: Duration = Field(default=timedelta(0), alias="for")  # held this long before firing
    min_requests: Annotated[int, Field(ge=0)] = 20  # fewer in the window: not judged
    model: Name | None = None  # only this model's streams; none: every model
    tenant: Name | None = None
    severity: Severity = "warning"
    labels: dict[LabelName, str] = Field(default_factory=dict)
    annotations: dict[LabelName, str] = Field(default_factory=dict)


# -- receivers -----------------------------------------------------------------------------


class WebhookConfig(Strict):
    """POSTs Alertmanager's webhook body (version 4)."""

    url: Annotated[str, StringConstraints(pattern=r"^https?://")]
    max_alerts: Annotated[int, Field(ge=0)] = 0  # 0: all


class SlackConfig(Strict):
    """POSTs a Slack incoming-webhook message."""

    url: Annotated[str, StringConstraints(pattern=r"^https?://")]
    channel: str | None = None


class PagerDutyConfig(Strict):
    """Events API v2: trigger, acknowledge and resolve with a stable dedup key."""

    routing_key: Annotated[str, StringConstraints(min_length=1)]
    url: Annotated[str, StringConstraints(pattern=r"^https?://")] = (
        "https://events.pagerduty.com/v2/enqueue"
    )


class EmailConfig(Strict):
    """Mail over SMTP. On a paging receiver, pages go to the on-call person's address."""

    to: list[EmailStr] = Field(default_factory=list)
    # Also mail the customer the alerts are about: the `customer_email` annotation that
    # customer-facing alerts (SLA credit notices) carry, from the tenant's contact_email.
    to_customer: bool = False
    sender: EmailStr = Field(alias="from")
    smarthost: Annotated[str, StringConstraints(pattern=r"^[^:\s]+:\d+$")]  # host:port
    starttls: bool = False
    username: str | None = None
    # The environment variable that holds the password; modelfleet reads only those named
    # MODELFLEET_SECRET_*, so a fleet file cannot have any other variable mailed out.
    password_env: (
        Annotated[str, StringConstraints(pattern=r"^MODELFLEET_SECRET_[A-Z0-9_]+$")] | None
    ) = None


class ReceiverSpec(Strict):
    """Where a group's notifications go; with `escalation`, a receiver that pages people."""

    webhook: list[WebhookConfig] = Field(default_factory=list)
    slack: list[SlackConfig] = Field(default_factory=list)
    pagerduty: list[PagerDutyConfig] = Field(default_factory=list)
    email: list[EmailConfig] = Field(default_factory=list)
    escalation: Name | None = None  # an EscalationPolicy: page its on-call people in turn
    send_resolved: bool = True

    @model_validator(mode="after")
    def _has_integration(self) -> ReceiverSpec:
        if not (self.webhook or self.slack or self.pagerduty or self.email):
            raise ValueError("a receiver needs at least one of webhook, slack, pagerduty, email")
        return self


# -- routing -------------------------------------------------------------------------------


class Route(Strict):
    """A node of the routing tree: alerts matching every matcher go to `receiver`."""

    matchers: list[MatcherText] = Field(default_factory=list)
    receiver: Name | None = None  # none: the parent's
    group_by: list[str] | None = None  # `...` groups by every label; none: the parent's
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None
    continue_: bool = Field(default=False, alias="continue")
    routes: list[Route] = Field(default_factory=list)


class InhibitRule(Strict):
    """While an alert matching `source_matchers` fires, alerts matching `target_matchers`
    with the same values of the `equal` labels are muted."""

    source_matchers: Annotated[list[MatcherText], Field(min_length=1)]
    target_matchers: Annotated[list[MatcherText], Field(min_length=1)]
    equal: list[str] = Field(default_factory=list)


class AlertRoutingSpec(Strict):
    """The root of the routing tree, with Alertmanager's defaults, and the inhibition rules."""

    receiver: Name
    group_by: list[str] = Field(default_factory=lambda: ["alertname"])
    group_wait: Duration = timedelta(seconds=30)
    group_interval: Duration = timedelta(minutes=5)
    repeat_interval: Duration = timedelta(hours=4)
    resolve_timeout: Duration = timedelta(minutes=5)  # an alert no source refreshes resolves
    # modelfleet's flap damping: an alert that fires again this soon after resolving is the
    # same alert, and its group sends no new page.
    flap_window: Duration = timedelta(minutes=15)
    routes: list[Route] = Field(default_factory=list)
    inhibit_rules: list[InhibitRule] = Field(default_factory=list)


# -- on-call -------------------------------------------------------------------------------


class Person(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    email: EmailStr


class Rotation(Strict):
    """People take turns of `length`, handing off at `handoff` (local time) from `start`."""

    length: Duration = timedelta(days=7)
    start: date  # the first hand-off's date, in the schedule's time zone
    handoff: time = time(9, 0)

    @model_validator(mode="after")
    def _positive(self) -> Rotation:
        if self.length < timedelta(hours=1):
            raise ValueError("a rotation's length is at least 1h")
        return self


class Override(Strict):
    """Someone covers the schedule from `start` to `end` (local time when naive)."""

    person: Person
    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> Override:
        if self.end <= self.start:
            raise ValueError("an override ends after it starts")
        return self


class OnCallScheduleSpec(Strict):
    time_zone: TimeZone = "UTC"
    participants: Annotated[list[Person], Field(min_length=1)]
    rotation: Rotation
    overrides: list[Override] = Field(default_factory=list)


class EscalationLevel(Strict):
    """Who is paged at this level: the on-call person of a schedule, or named people."""

    schedule: Name | None = None
    people: list[Person] = Field(default_factory=list)
    # Unacknowledged this long after this level was paged: page the next level.
    escalate_after: Duration = timedelta(minutes=15)

    @model_validator(mode="after")
    def _someone(self) -> EscalationLevel:
        if self.schedule is None and not self.people:
            raise ValueError("a level pages a schedule's on-call person or named people")
        return self


class EscalationPolicySpec(Strict):
    levels: Annotated[list[EscalationLevel], Field(min_length=1)]
    repeat: Annotated[int, Field(ge=0)] = 0  # times to start again from the first level


# -- runbooks ------------------------------------------------------------------------------

ActionName = Literal[
    "rollback", "scale", "restart", "failover", "throttle", "stop_shadow", "open_review"
]


class RunbookAction(Strict):
    """One step: an action, then a verification that the alert resolved within `verify`.

    Targets (deployment, model, version, tenant, region) come from the alert's labels unless
    given here.
    """

    action: ActionName
    deployment: Name | None = None
    region: Name | None = None
    tenant: Name | None = None
    replicas: Annotated[int, Field(ge=1)] | None = None  # scale: to this many
    add: Annotated[int, Field(ge=1)] | None = None  # scale: this many more
    max_replicas: Annotated[int, Field(ge=1)] = 16
    to_region: Name | None = None  # failover: where the region's tenants go
    factor: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5  # throttle: share of the quota kept
    duration: Duration = timedelta(hours=1)  # throttle: how long
    verify: Duration = timedelta(minutes=3)
    approval: bool = False  # wait for a person's `modelfleet runbooks approve`
    # Only if an alert matching these fires too, for the same tenant, model and region (a
    # slow p99 with a rise in requests is load: scale; without one, restart).
    when: list[MatcherText] = Field(default_factory=list)

    @model_validator(mode="after")
    def _scale_target(self) -> RunbookAction:
        if self.action == "scale" and (self.replicas is None) == (self.add is None):
            raise ValueError("scale takes exactly one of replicas (to) or add (more)")
        return self


class Guards(Strict):
    max_runs_per_hour: Annotated[int, Field(ge=1)] = 3
    cooldown: Duration = timedelta(minutes=10)  # after a run ends, before the next may start
    dry_run: bool = False  # say what would be done, do nothing


class RunbookSpec(Strict):
    description: str = ""
    match: Annotated[list[MatcherText], Field(min_length=1)]
    actions: Annotated[list[RunbookAction], Field(min_length=1)]
    guards: Guards = Field(default_factory=Guards)
