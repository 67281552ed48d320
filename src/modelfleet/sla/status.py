"""Where each tenant stands against its SLA: the store read, the pure maths applied.

For one SLA, tenant and period this reads the tenant's rollups (every version and region,
shadow traffic never) and the critical incidents that affected it, and gives each SLO's
indicator so far, the error budget left, the value projected to the period's end, and the
service credit owed at that value. The SLA controller, the CLI and the customers' API all
read SLAs through here, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from modelfleet.config.schema import SLA, Tenant
from modelfleet.config.sla import SLOSpec
from modelfleet.registry.resources import load_state
from modelfleet.sla.budget import budget_left, projected
from modelfleet.sla.credits import credit_share
from modelfleet.sla.periods import MINUTE, Period, excluded_minutes, period_of
from modelfleet.sla.sli import (
    Incident,
    MinuteCounts,
    SLIValue,
    counts_of,
    in_window,
    incident_response,
    measure,
    measured,
    per_minute,
)
from modelfleet.store.tables import incidents, sla_credits
from modelfleet.telemetry.rollup import Rollup
from modelfleet.telemetry.writer import read_rollups


@dataclass(frozen=True)
class SLOStatus:
    slo: SLOSpec
    sli: SLIValue
    budget_left: float
    projected: float

    @property
    def met(self) -> bool:
        return self.sli.value >= self.slo.objective


@dataclass(frozen=True)
class TenantStatus:
    sla: SLA
    tenant: str
    period: Period
    slos: list[SLOStatus]
    credit_share: float  # of the monthly fee, at the values so far
    projected_credit_share: float  # at the projected end-of-period values
    reasons: tuple[str, ...]
    incidents: list[dict[str, Any]] = field(default_factory=list)
    daily: dict[str, dict[date, float]] = field(default_factory=dict)  # SLO -> day -> value

    @property
    def credit_amount(self) -> float:
        return self.credit_share * self.sla.spec.monthly_fee

    @property
    def credit_at_risk(self) -> float:
        return self.projected_credit_share * self.sla.spec.monthly_fee

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: what a customer's API call and `-o json` show."""
        spec = self.sla.spec
        return {
            "sla": self.sla.name,
            "tenant": self.tenant,
            "period": str(self.period),
            "time_zone": spec.time_zone,
            "slos": [
                {
                    "name": s.slo.name,
                    "type": s.slo.type,
                    "objective": s.slo.objective,
                    "good": s.sli.good,
                    "total": s.sli.total,
                    "value": s.sli.value,
                    "met": s.met,
                    "budget_left": s.budget_left,
                    "projected": s.projected,
                }
                for s in self.slos
            ],
            "credit": {
                "share": self.credit_share,
                "amount": self.credit_amount,
                "projected_share": self.projected_credit_share,
                "projected_amount": self.credit_at_risk,
                "currency": spec.currency,
                "reasons": list(self.reasons),
            },
            "incidents": self.incidents,
            "daily": {
                slo: {d.isoformat(): v for d, v in days.items()} for slo, days in self.daily.items()
            },
        }


def covered_tenants(conn: Connection, sla: SLA) -> list[str]:
    """The tenants an SLA covers: those it names, or every tenant of its tier."""
    if sla.spec.tenants:
        return sorted(sla.spec.tenants)
    state = load_state(conn)
    return sorted(
        r.resource.name
        for r in state.of_kind(Tenant)
        if isinstance(r.resource, Tenant) and r.resource.spec.tier == sla.spec.tier
    )


def minute_counts(
    conn: Connection, tenant: str, models: Sequence[str], since: datetime, until: datetime
) -> list[MinuteCounts]:
    """The tenant's counts per minute in [since, until), over every version and region."""
    return counts_from(read_rollups(conn, since=since, until=until, tenant=tenant).values(), models)


def counts_from(rollups: Iterable[Rollup], models: Sequence[str]) -> list[MinuteCounts]:
    """Counts per minute of the rollups of `models` (all when empty), e.g. every region's."""
    return per_minute([counts_of(r) for r in rollups if not models or r.key.model in models])


def critical_incidents(
    conn: Connection, tenant: str, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """Critical incidents detected in [since, until) that affected the tenant."""
    rows = conn.execute(
        select(incidents).where(
            incidents.c.severity == "critical",
            incidents.c.detected_at >= since,
            incidents.c.detected_at < until,
        )
    )
    return [
        {
            "id": r.id,
            "title": r.title,
            "detected_at": r.detected_at,
            "acknowledged_at": r.acknowledged_at,
            "resolved_at": r.resolved_at,
        }
        for r in rows
        if tenant in (r.tenants or [])
    ]


def tenant_status(
    conn: Connection,
    sla: SLA,
    tenant: str,
    now: datetime,
    period: Period | None = None,
    *,
    counts: Sequence[MinuteCounts] | None = None,
) -> TenantStatus:
    """Where `tenant` stands in `period` (default: the one holding `now`), as of `now`.

    `counts`: the tenant's minute counts covering the period so far, when the caller keeps
    them (the SLA controller does); otherwise they are read from the rollups."""
    spec = sla.spec
    period = period or period_of(now, spec.time_zone)
    until = min(now, period.end)
    if counts is None:
        counts = minute_counts(conn, tenant, spec.models, period.start, until)
    counts = measured(in_window(counts, period.start, until), period, spec.maintenance)
    elapsed_share = period.elapsed(until)
    skipped = excluded_minutes(period, spec.maintenance)
    elapsed_minutes = max(0, (until - period.start) // MINUTE)
    counted_so_far = elapsed_minutes - sum(1 for m in skipped if m < until)
    found = critical_incidents(conn, tenant, period.start, until)
    slos = []
    values: dict[str, float] = {}
    projections: dict[str, float] = {}
    for slo in spec.slos:
        if slo.type == "incident_response":
            pairs: list[Incident] = [
                (i["detected_at"], i["acknowledged_at"], i["resolved_at"]) for i in found
            ]
            sli = incident_response(pairs, slo.respond_within, now=until)
        else:
            sli = measure(slo, counts, max(counted_so_far, len(counts)))
        values[slo.name] = sli.value
        projections[slo.name] = projected(sli.value, elapsed_share, slo.objective)
        slos.append(
            SLOStatus(slo, sli, budget_left(sli.value, slo.objective), projections[slo.name])
        )
    share, reasons = credit_share(spec, values)
    at_risk, _ = credit_share(spec, projections)
    return TenantStatus(
        sla,
        tenant,
        period,
        slos,
        share,
        at_risk,
        reasons,
        [{**i, **{k: _iso(v) for k, v in i.items() if isinstance(v, datetime)}} for i in found],
        _daily(spec.slos, counts, spec.time_zone),
    )


def _daily(
    slos: Sequence[SLOSpec], counts: Sequence[MinuteCounts], time_zone: str
) -> dict[str, dict[date, float]]:
    """Each rollup-based SLO's value per local day: the series a report charts."""
    zone = ZoneInfo(time_zone)
    by_day: dict[date, list[MinuteCounts]] = {}
    for c in counts:
        by_day.setdefault(c.minute.astimezone(zone).date(), []).append(c)
    out: dict[str, dict[date, float]] = {}
    for slo in slos:
        if slo.type == "incident_response":
            continue
        # Uptime per day counts the minutes with traffic: the day's share of them that was up.
        out[slo.name] = {
            day: measure(slo, minutes, len(minutes)).value
            for day, minutes in sorted(by_day.items())
        }
    return out


def _iso(value: datetime) -> str:
    return value.isoformat()


def ledger(conn: Connection, *, tenant: str | None = None) -> list[Any]:
    """The credits ledger, newest period first."""
    query = select(sla_credits).order_by(sla_credits.c.period.desc(), sla_credits.c.tenant)
    if tenant is not None:
        query = query.where(sla_credits.c.tenant == tenant)
    return list(conn.execute(query))
