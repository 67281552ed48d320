"""The `SLA` kind of fleet.yaml: what a customer was promised, and what is owed when it is not.

A contract applies to named tenants or to every tenant of a tier, over calendar months in the
customer's time zone. Its SLOs are measured from the telemetry rollups (availability, latency,
uptime minutes) and from the incidents (incident response); maintenance windows declared
ahead are removed from the measurement. docs/slas.md defines each measure precisely.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from modelfleet.config.alerting import TimeZone
from modelfleet.config.base import Duration, Name, Strict

Tier = Literal["free", "standard", "premium", "enterprise"]
Objective = Annotated[float, Field(gt=0.0, lt=1.0)]
SLOType = Literal["availability", "latency", "uptime", "incident_response"]
# The latency thresholds the rollups count exactly (telemetry/rollup.py).
LATENCY_THRESHOLDS_S = (0.1, 0.25, 0.5, 1.0)


class SLOSpec(Strict):
    """One promise. `objective` is the share that must be good over the period:

    availability       good = served without 5xx, of valid requests (4xx and quota excluded)
    latency            good = answered within `threshold`, of valid requests
    uptime             good = minutes whose error rate is at most `minute_error_rate`
    incident_response  good = critical incidents affecting the tenant acknowledged within
                       `respond_within`
    """

    name: Name
    type: SLOType
    objective: Objective
    threshold: Duration | None = None  # latency
    minute_error_rate: Annotated[float, Field(gt=0.0, le=1.0)] = 0.05  # uptime
    min_minute_requests: Annotated[int, Field(ge=1)] = 1  # uptime: fewer, the minute is up
    respond_within: Duration = timedelta(minutes=15)  # incident_response

    @model_validator(mode="after")
    def _fields_of_its_type(self) -> SLOSpec:
        if self.type == "latency":
            if self.threshold is None:
                raise ValueError("a latency SLO needs a threshold, e.g. 500ms")
            if round(self.threshold.total_seconds(), 6) not in LATENCY_THRESHOLDS_S:
                shown = ", ".join(f"{t * 1000:g}ms" for t in LATENCY_THRESHOLDS_S)
                raise ValueError(f"the rollups count answers exactly under {shown}; pick one")
        elif self.threshold is not None:
            raise ValueError("only a latency SLO has a threshold")
        return self


class CreditTier(Strict):
    """When `slo`'s period value is below `below`, `credit` of the monthly fee is owed."""

    slo: Name
    below: Objective
    credit: Annotated[float, Field(gt=0.0, le=1.0)]


class MaintenanceWindow(Strict):
    """Declared ahead; removed from every SLO's measurement. Naive times are the SLA's zone."""

    start: datetime
    end: datetime
    reason: Annotated[str, StringConstraints(min_length=1)]

    @model_validator(mode="after")
    def _ordered(self) -> MaintenanceWindow:
        if self.end <= self.start:
            raise ValueError("a maintenance window ends after it starts")
        return self


class BurnAlert(Strict):
    """Multiwindow burn-rate alert (Google SRE workbook, ch. 5): fires when the budget burns
    at `rate` or faster over both the long and the short window."""

    long: Duration
    short: Duration
    rate: Annotated[float, Field(gt=0.0)]
    severity: Literal["info", "warning", "critical"]


def _workbook_burn_alerts() -> list[BurnAlert]:
    # 2 % of a 30-day budget in 1 h, 5 % in 6 h: page; 10 % in 3 days: ticket.
    return [
        BurnAlert(
            long=timedelta(hours=1), short=timedelta(minutes=5), rate=14.4, severity="critical"
        ),
        BurnAlert(
            long=timedelta(hours=6), short=timedelta(minutes=30), rate=6.0, severity="critical"
        ),
        BurnAlert(long=timedelta(days=3), short=timedelta(hours=6), rate=1.0, severity="warning"),
    ]


class SLASpec(Strict):
    tenants: list[Name] = Field(default_factory=list)  # these tenants ...
    tier: Tier | None = None  # ... or every tenant of this tier
    models: list[Name] = Field(default_factory=list)  # none: every model the tenant uses
    time_zone: TimeZone = "UTC"  # the customer's: periods are its calendar months
    monthly_fee: Annotated[float, Field(ge=0.0)]
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "USD"
    slos: Annotated[list[SLOSpec], Field(min_length=1)]
    credits: list[CreditTier] = Field(default_factory=list)
    credit_cap: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0  # of the monthly fee
    maintenance: list[MaintenanceWindow] = Field(default_factory=list)
    budget_warning: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.25  # warn under this share left
    burn_alerts: list[BurnAlert] = Field(default_factory=_workbook_burn_alerts)

    @model_validator(mode="after")
    def _consistent(self) -> SLASpec:
        if bool(self.tenants) == (self.tier is not None):
            raise ValueError("an SLA names its tenants or a tier, not both and not neither")
        names = [s.name for s in self.slos]
        if len(set(names)) != len(names):
            raise ValueError("SLO names must be unique within an SLA")
        unknown = sorted({c.slo for c in self.credits} - set(names))
        if unknown:
            raise ValueError(f"credits name SLOs the SLA does not have: {', '.join(unknown)}")
        return self
