"""The SLA controller: burn-rate alerts, budget warnings and the credits ledger, every minute.

Once per minute of the clock it looks at every tenant each SLA covers:

- **Burn rates** (Google SRE workbook, ch. 5): for every rollup-based SLO and every burn alert
  of the contract (by default 14.4 over 1 h and 5 m, 6 over 6 h and 30 m: page; 1 over 3 days
  and 6 h: ticket), the burn rate over both windows; an alert fires while both are at or above
  its rate and resolves when either falls below. Alerts reach the alert manager as events
  (`sla.burn`), labelled `alertname="SLOBurnRate"`, tenant, SLA, SLO and the windows.
- **Budget warnings**: `SLOBudgetLow` (warning) while an SLO's budget left in the period is
  under the contract's `budget_warning`.
- **Credits**: the period's credit so far is written to the ledger as provisional; once a
  period has closed its credit is computed again and written final (never changed after),
  and an `SLACreditOwed` alert goes to the alert manager, so the customer's receiver is told.

Only changes are written as events (an alert that starts or stops firing); a restarted
controller says the current state of each alert once, which the alert manager treats as a
refresh. Minute counts are cached in memory and extended each minute, so the windows (up to
three days) are not read again each time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update

from modelfleet.config.schema import SLA
from modelfleet.config.sla import BurnAlert
from modelfleet.registry.declarations import declared
from modelfleet.registry.events import Event, alert_details, record_event
from modelfleet.sla.budget import firing
from modelfleet.sla.periods import MINUTE, Period, period_of
from modelfleet.sla.sli import MinuteCounts, SLIValue, in_window, measure
from modelfleet.sla.status import TenantStatus, covered_tenants, minute_counts, tenant_status
from modelfleet.store import Store
from modelfleet.store.tables import sla_credits, tenants
from modelfleet.store.upsert import upsert

SOURCE = "sla"
_REFRESH = timedelta(minutes=2)  # recent minutes are read again: late flushes land there


class SLAController:
    """Burn rates, budget warnings and credits for every SLA; see the module docstring."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._last: datetime | None = None
        self._firing: dict[tuple[str, ...], bool] = {}
        self._counts: dict[tuple[str, str], dict[datetime, MinuteCounts]] = {}

    def tick(self, now: datetime) -> list[Event]:
        minute = now.replace(second=0, microsecond=0)
        if self._last == minute:
            return []
        self._last = minute
        events: list[Event] = []
        with self.store.begin() as conn:
            for sla in declared(conn, SLA):
                for tenant in covered_tenants(conn, sla):
                    events += self._watch(conn, sla, tenant, now)
            for event in events:
                record_event(conn, event)
        return events

    def _watch(self, conn: Connection, sla: SLA, tenant: str, now: datetime) -> list[Event]:
        events: list[Event] = []
        counts = self._window(conn, sla, tenant, now)
        for slo in sla.spec.slos:
            if slo.type == "incident_response":
                continue

            def sli(start: datetime, end: datetime, slo: Any = slo) -> SLIValue:
                window = in_window(counts, start, end)
                return measure(slo, window, max(len(window), 1))

            fired = firing(sla.spec.burn_alerts, sli, now, slo.objective)
            for alert in sla.spec.burn_alerts:
                fires = alert in fired
                events += self._say(
                    ("burn", sla.name, tenant, slo.name, _windows(alert)),
                    fires,
                    _burn_labels(sla, tenant, slo.name, alert),
                    f"{tenant}'s {slo.name} burns its error budget at {alert.rate:g}x or more "
                    f"over {_windows(alert)} (SLA {sla.name})",
                    now,
                    tenant,
                )
        status = tenant_status(conn, sla, tenant, now, counts=counts)
        for s in status.slos:
            low = s.sli.total > 0 and s.budget_left < sla.spec.budget_warning
            labels = {
                "alertname": "SLOBudgetLow",
                "severity": "warning",
                "tenant": tenant,
                "sla": sla.name,
                "slo": s.slo.name,
                "scope": "tenant",
            }
            events += self._say(
                ("budget", sla.name, tenant, s.slo.name),
                low,
                labels,
                f"{tenant}'s {s.slo.name} has {max(s.budget_left, 0):.0%} of its {status.period} "
                f"error budget left (warns under {sla.spec.budget_warning:.0%})",
                now,
                tenant,
            )
        events += self._ledger(conn, status, now)
        previous = _previous(status.period)
        if previous is not None:
            events += self._close(conn, sla, tenant, previous, now)
        return events

    def _window(self, conn: Connection, sla: SLA, tenant: str, now: datetime) -> list[MinuteCounts]:
        """The tenant's minute counts over the period so far and the longest burn window,
        cached between ticks: each tick reads only the minutes new since the last."""
        longest = max((a.long for a in sla.spec.burn_alerts), default=timedelta(hours=1))
        cache = self._counts.setdefault((sla.name, tenant), {})
        start = min(now - longest, period_of(now, sla.spec.time_zone).start)
        since = max(start, max(cache, default=start) - _REFRESH)
        for c in minute_counts(conn, tenant, sla.spec.models, since, now + MINUTE):
            cache[c.minute] = c
        for stale in [m for m in cache if m < start]:
            del cache[stale]
        return [cache[m] for m in sorted(cache)]

    def _say(
        self,
        key: tuple[str, ...],
        fires: bool,
        labels: dict[str, str],
        summary: str,
        now: datetime,
        tenant: str,
    ) -> list[Event]:
        if self._firing.get(key) == fires:
            return []
        first = key not in self._firing
        self._firing[key] = fires
        if first and not fires:
            return []  # nothing to say about an alert that never fired
        state = "firing" if fires else "resolved"
        return [
            Event(
                at=now,
                source=SOURCE,
                kind=f"sla.{key[0]}",
                severity=labels["severity"] if fires else "info",  # type: ignore[arg-type]
                subject=labels["sla"],
                message=f"{labels['alertname']} {state}: {summary}",
                details={"alert": alert_details(labels, state, annotations={"summary": summary})},
                tenant=tenant,
            )
        ]

    def _ledger(self, conn: Connection, status: TenantStatus, now: datetime) -> list[Event]:
        """The period's provisional credit, kept current in the ledger."""
        row = _row(conn, status.sla.name, status.tenant, str(status.period))
        if row is not None and row.state == "final":
            return []
        values = _values(status, now)
        if row is None or row.share != values["share"] or row.slis != values["slis"]:
            _write_ledger(conn, values)
        return []

    def _close(
        self, conn: Connection, sla: SLA, tenant: str, period: Period, now: datetime
    ) -> list[Event]:
        """Write a closed period's final credit once, and tell the customer what is owed.
        Only periods measured while they ran are closed: an SLA owes nothing from before it."""
        row = _row(conn, sla.name, tenant, str(period))
        if row is None or row.state == "final":
            return []  # never measured (before the SLA), or closed already
        status = tenant_status(conn, sla, tenant, period.end, period)
        _write_ledger(conn, _values(status, now) | {"state": "final"})
        conn.execute(
            update(sla_credits)
            .where(
                sla_credits.c.sla == sla.name,
                sla_credits.c.tenant == tenant,
                sla_credits.c.period == str(period),
            )
            .values(notified_at=now)
        )
        if status.credit_share <= 0:
            return []
        summary = (
            f"{tenant} is owed {status.credit_amount:.2f} {sla.spec.currency} "
            f"({status.credit_share:.0%} of the monthly fee) for {period}: "
            + "; ".join(status.reasons)
        )
        labels = {
            "alertname": "SLACreditOwed",
            "severity": "info",
            "tenant": tenant,
            "sla": sla.name,
            "period": str(period),
            "scope": "tenant",
        }
        report = "\n".join(
            f"{s.slo.name}: {s.sli.value:.4%} ({s.sli.good} of {s.sli.total}), "
            f"objective {s.slo.objective:.2%}"
            for s in status.slos
        )
        annotations = {"summary": summary, "report": report}
        contact = _contact(conn, tenant)
        if contact:
            annotations["customer_email"] = contact
        return [
            Event(
                at=now,
                source=SOURCE,
                kind="sla.credit",
                severity="info",
                subject=sla.name,
                message=summary,
                details={
                    "alert": alert_details(
                        labels, "firing", annotations=annotations, expires_in_s=3600.0
                    ),
                    "amount": status.credit_amount,
                    "share": status.credit_share,
                },
                tenant=tenant,
            )
        ]


def _values(status: TenantStatus, now: datetime) -> dict[str, Any]:
    return {
        "sla": status.sla.name,
        "tenant": status.tenant,
        "period": str(status.period),
        "state": "provisional",
        "slis": {
            s.slo.name: {"good": s.sli.good, "total": s.sli.total, "value": s.sli.value}
            for s in status.slos
        },
        "share": status.credit_share,
        "amount": status.credit_amount,
        "currency": status.sla.spec.currency,
        "reasons": list(status.reasons),
        "computed_at": now,
        "notified_at": None,
    }


def _write_ledger(conn: Connection, values: dict[str, Any]) -> None:
    upsert(
        conn,
        sla_credits,
        [values],
        unique=["sla", "tenant", "period"],
        update=["state", "slis", "share", "amount", "reasons", "computed_at"],
    )


def _row(conn: Connection, sla: str, tenant: str, period: str) -> Any:
    c = sla_credits.c
    return conn.execute(
        select(sla_credits).where(c.sla == sla, c.tenant == tenant, c.period == period)
    ).one_or_none()


def _contact(conn: Connection, tenant: str) -> str | None:
    found = conn.execute(select(tenants.c.contact_email).where(tenants.c.name == tenant)).scalar()
    return str(found) if found else None


def _previous(period: Period) -> Period | None:
    """The period before `period`."""
    return period_of(period.start - MINUTE, period.time_zone)


def _windows(alert: BurnAlert) -> str:
    return f"{_short(alert.long)}/{_short(alert.short)}"


def _short(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _burn_labels(sla: SLA, tenant: str, slo: str, alert: BurnAlert) -> dict[str, str]:
    return {
        "alertname": "SLOBurnRate",
        "severity": alert.severity,
        "tenant": tenant,
        "sla": sla.name,
        "slo": slo,
        "window": _windows(alert),
        "scope": "tenant",
    }


__all__: Sequence[str] = ["SLAController"]
