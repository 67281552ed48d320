"""What each dashboard and portal page shows, read from the store as plain frozen rows.

Every board is built with the same domain functions the CLI calls (`alerts list`, `oncall
who`, `incidents list/show`, `sla status`, `capacity cost`), so a page and a command cannot
disagree. A board takes a connection and `now` and returns dataclasses; the pages only render.

The portal's functions (`tenant_incidents`, `tenant_usage`, `tenant_credits`) take the tenant
and return only what concerns it: no other tenant's name, traffic or credit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, select

from modelfleet.alerts.alert import Alert
from modelfleet.alerts.oncall import on_call, shifts
from modelfleet.alerts.records import firing_alerts
from modelfleet.alerts.silences import list_silences
from modelfleet.capacity.cost import allocate
from modelfleet.capacity.usage import usage
from modelfleet.config.schema import SLA, CapacityPolicy, InstanceType, OnCallSchedule
from modelfleet.incidents import Incident, get_incident, list_incidents, summary, timeline
from modelfleet.registry.declarations import declared
from modelfleet.sla.status import covered_tenants, ledger, tenant_status
from modelfleet.stats import LatencySketch
from modelfleet.store.tables import capacity_decisions, capacity_forecasts
from modelfleet.telemetry.writer import read_rollups

DECISION_HISTORY: Final = timedelta(hours=6)  # the capacity board's replicas against demand
COST_WINDOW: Final = timedelta(days=7)
PORTAL_INCIDENTS: Final = timedelta(days=90)

# -- alerts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertRow:
    fingerprint: str
    name: str
    severity: str
    labels: dict[str, str]
    summary: str  # the `summary` annotation, or ""
    since: datetime
    suppressed_by: tuple[str, ...]  # silences and inhibitions muting it


@dataclass(frozen=True)
class SilenceRow:
    id: int
    matchers: tuple[str, ...]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str


@dataclass(frozen=True)
class OnCallRow:
    schedule: str
    person: str
    email: str
    until: datetime | None  # the end of this shift, when it ends within two rotations
    override: bool


@dataclass(frozen=True)
class AlertsBoard:
    firing: list[AlertRow]  # the most severe first, then the oldest
    silences: list[SilenceRow]  # active now
    on_call: list[OnCallRow]  # per schedule, by name


_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


def alerts_board(conn: Connection, now: datetime) -> AlertsBoard:
    """Firing alerts, the silences active at `now`, and who is on call at `now`."""
    firing = sorted(
        firing_alerts(conn), key=lambda a: (_SEVERITY_ORDER.get(a.severity, 1), a.starts_at)
    )
    silences = [
        SilenceRow(
            s.id, tuple(str(m) for m in s.matchers), s.starts_at, s.ends_at, s.created_by, s.comment
        )
        for s in list_silences(conn, at=now)
        if s.starts_at <= now
    ]
    rota = []
    for s in declared(conn, OnCallSchedule):
        horizon = now + 2 * s.spec.rotation.length
        current = shifts(s.spec, now, horizon)
        person = on_call(s.spec, now)
        rota.append(
            OnCallRow(
                schedule=s.name,
                person=person.name,
                email=str(person.email),
                until=current[0].end if current and current[0].end < horizon else None,
                override=bool(current and current[0].override),
            )
        )
    return AlertsBoard([_alert_row(a) for a in firing], silences, rota)


def _alert_row(a: Alert) -> AlertRow:
    return AlertRow(
        a.fingerprint,
        a.name,
        a.severity,
        dict(a.labels),
        a.annotations.get("summary", ""),
        a.starts_at,
        tuple(a.suppressed_by),
    )


# -- incidents -------------------------------------------------------------------------------


@dataclass(frozen=True)
class IncidentRow:
    id: int
    title: str
    severity: str
    status: str  # open, acknowledged, resolved
    tenants: tuple[str, ...]
    detected_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    resolved_by: str | None
    pages: int
    mttd_s: float | None
    mtta_s: float | None
    mttr_s: float | None
    open_s: float | None  # how long it has been open, while it is


@dataclass(frozen=True)
class TimelineRow:
    at: datetime
    kind: str  # alert.firing, alert.notified, remediation.action, ...
    message: str
    details: dict[str, Any]


@dataclass(frozen=True)
class IncidentsBoard:
    incidents: list[IncidentRow]  # the newest first
    summary: dict[str, Any]  # `incidents.summary`: counts, MTTD/MTTA/MTTR median and mean (s)


@dataclass(frozen=True)
class IncidentDetail:
    incident: IncidentRow
    timeline: list[TimelineRow]  # in the order it was written


def incidents_board(conn: Connection, now: datetime, *, limit: int = 100) -> IncidentsBoard:
    """The newest incidents with their response times, and their summary."""
    found = list_incidents(conn, limit=limit)
    return IncidentsBoard([_incident_row(i, now) for i in found], summary(found))


def incident_detail(
    conn: Connection, incident_id: int, now: datetime | None = None
) -> IncidentDetail:
    """One incident and its timeline; `NotFound` if there is no such incident."""
    found = get_incident(conn, incident_id)
    entries = [
        TimelineRow(e.at, e.kind, e.message, dict(e.details)) for e in timeline(conn, incident_id)
    ]
    return IncidentDetail(_incident_row(found, now), entries)


def _incident_row(i: Incident, now: datetime | None) -> IncidentRow:
    open_s = (
        None if now is None or i.resolved_at is not None else (now - i.detected_at).total_seconds()
    )
    return IncidentRow(
        id=i.id,
        title=i.title,
        severity=i.severity,
        status=i.status,
        tenants=i.tenants,
        detected_at=i.detected_at,
        acknowledged_at=i.acknowledged_at,
        resolved_at=i.resolved_at,
        resolved_by=i.resolved_by,
        pages=i.pages,
        mttd_s=_seconds(i.mttd),
        mtta_s=_seconds(i.mtta),
        mttr_s=_seconds(i.mttr),
        open_s=open_s,
    )


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


# -- SLAs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SLORow:
    name: str
    type: str
    objective: float
    sli: float  # the indicator so far this period
    good: int
    total: int
    met: bool
    budget_left: float  # share of the error budget left (negative: overspent)
    projected: float  # the indicator projected to the period's end


@dataclass(frozen=True)
class TenantSLARow:
    sla: str
    tenant: str
    period: str  # 2026-11
    slos: list[SLORow]
    credit: float  # owed at the values so far
    credit_at_risk: float  # owed at the projected values
    currency: str
    reasons: tuple[str, ...]


def sla_board(conn: Connection, now: datetime) -> list[TenantSLARow]:
    """Every tenant against every SLA covering it, this period, as `sla status` shows."""
    rows = []
    for sla in declared(conn, SLA):
        for tenant in covered_tenants(conn, sla):
            s = tenant_status(conn, sla, tenant, now)
            rows.append(
                TenantSLARow(
                    sla=sla.name,
                    tenant=tenant,
                    period=str(s.period),
                    slos=[
                        SLORow(
                            x.slo.name,
                            x.slo.type,
                            x.slo.objective,
                            x.sli.value,
                            x.sli.good,
                            x.sli.total,
                            x.met,
                            x.budget_left,
                            x.projected,
                        )
                        for x in s.slos
                    ],
                    credit=s.credit_amount,
                    credit_at_risk=s.credit_at_risk,
                    currency=sla.spec.currency,
                    reasons=s.reasons,
                )
            )
    return rows


# -- capacity --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecisionRow:
    at: datetime
    replicas: int
    previous: int
    reason: str
    observed_rps: float | None  # the demand it was decided on
    forecast_upper_rps: float | None


@dataclass(frozen=True)
class ForecastRow:
    fitted_at: datetime
    start: datetime  # the first hour forecast; one value per hour from there
    mean: list[float]  # requests per hour
    lower: list[float]
    upper: list[float]
    method: str
    mase: float | None  # accuracy on the week before (< 1: better than seasonal naive)


@dataclass(frozen=True)
class TenantCostRow:
    tenant: str
    requests: int
    cost: float
    share: float  # of the total cost


@dataclass(frozen=True)
class ModelCapacity:
    model: str
    instance_type: str
    mode: str
    min_replicas: int
    max_replicas: int
    replicas_now: int
    per_replica_rps: float | None  # measured; None: not yet, and no cost split without it
    decisions: list[DecisionRow]  # the last `DECISION_HISTORY`, oldest first
    forecast: ForecastRow | None
    currency: str
    costs: list[TenantCostRow]  # over the last `COST_WINDOW`, by tenant
    idle_cost: float | None  # None: per-replica capacity not measured yet
    total_cost: float


def capacity_board(conn: Connection, now: datetime) -> list[ModelCapacity]:
    """Per model with a CapacityPolicy: replicas, recent decisions, the stored forecast, and
    cost per tenant with idle apart over the last `COST_WINDOW` (as `capacity cost`)."""
    instances = {i.name: i.spec for i in declared(conn, InstanceType)}
    until = now.replace(second=0, microsecond=0)
    since = until - COST_WINDOW
    out = []
    for p in declared(conn, CapacityPolicy):
        policy = p.spec
        instance = instances.get(policy.instance_type)
        if instance is None:  # `apply` refuses this; a board shows what it can
            continue
        used = usage(conn, policy, instance, since=since, until=until)
        tenants = sorted(used.served)
        costs: list[TenantCostRow] = []
        idle: float | None = None
        total = sum(used.cost)
        if used.per_replica_rps:
            split = allocate(used.cost, used.served, used.utilization())
            idle, total = split.idle, split.total
            costs = [
                TenantCostRow(
                    t,
                    sum(used.served[t]),
                    split.by_tenant[t],
                    split.by_tenant[t] / split.total if split.total else 0.0,
                )
                for t in tenants
            ]
        else:
            costs = [TenantCostRow(t, sum(used.served[t]), 0.0, 0.0) for t in tenants]
        out.append(
            ModelCapacity(
                model=policy.model,
                instance_type=policy.instance_type,
                mode=policy.mode,
                min_replicas=policy.min_replicas,
                max_replicas=policy.max_replicas,
                replicas_now=used.replicas_now,
                per_replica_rps=used.per_replica_rps,
                decisions=_decisions(conn, policy.model, now - DECISION_HISTORY, now),
                forecast=_forecast(conn, policy.model),
                currency=instance.currency,
                costs=costs,
                idle_cost=idle,
                total_cost=total,
            )
        )
    return out


def _decisions(conn: Connection, model: str, since: datetime, until: datetime) -> list[DecisionRow]:
    t = capacity_decisions
    rows = conn.execute(
        select(t)
        .where(t.c.model == model, t.c.at >= since, t.c.at <= until)
        .order_by(t.c.at, t.c.id)
    )
    return [
        DecisionRow(
            r.at,
            r.replicas,
            r.previous,
            r.reason,
            _number(r.inputs.get("observed_rps")),
            _number(r.inputs.get("forecast_upper_rps")),
        )
        for r in rows
    ]


def _forecast(conn: Connection, model: str) -> ForecastRow | None:
    t = capacity_forecasts
    r = conn.execute(select(t).where(t.c.model == model)).one_or_none()
    if r is None:
        return None
    return ForecastRow(
        r.fitted_at,
        r.start,
        [float(v) for v in r.mean],
        [float(v) for v in r.lower],
        [float(v) for v in r.upper],
        r.method,
        r.mase,
    )


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


# -- the tenants' portal ---------------------------------------------------------------------


@dataclass(frozen=True)
class PortalIncident:
    """An incident as a tenant sees it: no labels, and no other tenant's name."""

    id: int
    title: str
    severity: str
    status: str
    detected_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    mttr_s: float | None


@dataclass(frozen=True)
class DayUsage:
    day: date  # UTC
    requests: int  # every request, quota rejections included
    rejected: int
    errors: int  # answered 5xx
    p99_s: float | None  # of the requests served that day


@dataclass(frozen=True)
class CreditRow:
    period: str  # 2026-11
    sla: str
    state: str  # provisional while the period runs, final once closed
    share: float  # of the monthly fee
    amount: float
    currency: str
    reasons: tuple[str, ...]
    computed_at: datetime


def tenant_incidents(conn: Connection, tenant: str, now: datetime) -> list[PortalIncident]:
    """Incidents of the last `PORTAL_INCIDENTS` that affected `tenant`, the newest first.

    An incident that affected several tenants is titled by its alert's name alone: its full
    title names the group's labels, which may be another tenant's."""
    found = list_incidents(conn, tenant=tenant, since=now - PORTAL_INCIDENTS)
    return [
        PortalIncident(
            i.id,
            i.title if i.tenants == (tenant,) else i.labels.get("alertname", "incident"),
            i.severity,
            i.status,
            i.detected_at,
            i.acknowledged_at,
            i.resolved_at,
            _seconds(i.mttr),
        )
        for i in found
    ]


def tenant_usage(conn: Connection, tenant: str, since: datetime, until: datetime) -> list[DayUsage]:
    """`tenant`'s requests per UTC day of [since, until), every model, version and region
    (shadow traffic never); days without traffic are left out."""
    days: dict[date, tuple[list[int], LatencySketch]] = {}
    for key, rollup in read_rollups(conn, since=since, until=until, tenant=tenant).items():
        day = key.minute.astimezone(UTC).date()
        counts, sketch = days.setdefault(day, ([0, 0, 0], LatencySketch()))
        counts[0] += rollup.requests
        counts[1] += rollup.status["rejected"]
        counts[2] += rollup.status["5xx"]
        sketch.merge(rollup.latency)
    return [
        DayUsage(day, counts[0], counts[1], counts[2], sketch.quantile(0.99))
        for day, (counts, sketch) in sorted(days.items())
    ]


def tenant_credits(conn: Connection, tenant: str) -> list[CreditRow]:
    """`tenant`'s service credits ledger, the newest period first."""
    return [
        CreditRow(
            r.period,
            r.sla,
            r.state,
            r.share,
            r.amount,
            r.currency,
            tuple(r.reasons),
            r.computed_at,
        )
        for r in ledger(conn, tenant=tenant)
    ]
