"""Incident records: one row per incident, its timeline, and the response times they give.

An incident is what people respond to: one alert group of warning or critical severity, from
the moment it opened until it resolved. Its `status` moves one way, `open` → `acknowledged` →
`resolved`, and never back: a group that opens again later is a new incident. Its times give
the three response figures:

- MTTD, time to detect: `detected_at − anomaly_at` (the first anomalous point, when a detector
  knows it; unknown otherwise);
- MTTA, time to acknowledge: `acknowledged_at − detected_at`;
- MTTR, time to resolve: `resolved_at − detected_at`.

`summary` takes their median and mean over a set of incidents (a pure function: no store).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, select

from modelfleet.errors import NotFound
from modelfleet.registry.events import Severity
from modelfleet.store.tables import incident_timeline
from modelfleet.store.tables import incidents as incident_rows

Status = Literal["open", "acknowledged", "resolved"]
RECOVERED = "recovered"  # resolved_by when the alerts cleared with no runbook or person
RUNBOOK = "runbook "  # resolved_by's prefix when a runbook's action made them clear


@dataclass(frozen=True)
class Incident:
    id: int
    group_key: str  # the alert group's key: its route and grouped label values
    title: str
    severity: Severity  # the highest its alerts reached
    status: Status
    labels: dict[str, str]  # the group's labels
    tenants: tuple[str, ...]  # every tenant affected while it was open
    anomaly_at: datetime | None  # the first anomalous point, when a detector knows it
    detected_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    resolved_by: str | None  # "runbook <name>", a person, or "recovered"
    pages: int  # pages delivered to people

    @property
    def mttd(self) -> timedelta | None:
        """Time to detect; None when the anomaly's start is unknown."""
        return None if self.anomaly_at is None else self.detected_at - self.anomaly_at

    @property
    def mtta(self) -> timedelta | None:
        """Time to acknowledge; None until someone acknowledged."""
        return None if self.acknowledged_at is None else self.acknowledged_at - self.detected_at

    @property
    def mttr(self) -> timedelta | None:
        """Time to resolve; None while open."""
        return None if self.resolved_at is None else self.resolved_at - self.detected_at

    @property
    def resolved_automatically(self) -> bool:
        """Resolved with no person's hand: by a runbook, or by recovering."""
        return self.resolved_by is not None and (
            self.resolved_by == RECOVERED or self.resolved_by.startswith(RUNBOOK)
        )


@dataclass(frozen=True)
class TimelineEntry:
    id: int
    incident: int
    at: datetime
    kind: str  # the event's kind: alert.firing, alert.notified, remediation.action, ...
    message: str
    details: dict[str, Any]


def incident_of(row: Any) -> Incident:
    return Incident(
        id=row.id,
        group_key=row.group_key,
        title=row.title,
        severity=row.severity,
        status=row.status,
        labels=dict(row.labels),
        tenants=tuple(row.tenants),
        anomaly_at=row.anomaly_at,
        detected_at=row.detected_at,
        acknowledged_at=row.acknowledged_at,
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        pages=row.pages,
    )


def list_incidents(
    conn: Connection,
    *,
    status: Status | None = None,
    tenant: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[Incident]:
    """The newest incidents first; `since` keeps those detected at or after it, `tenant` those
    that affected it."""
    query = select(incident_rows).order_by(
        incident_rows.c.detected_at.desc(), incident_rows.c.id.desc()
    )
    if status is not None:
        query = query.where(incident_rows.c.status == status)
    if since is not None:
        query = query.where(incident_rows.c.detected_at >= since)
    if tenant is None:
        return [incident_of(row) for row in conn.execute(query.limit(limit))]
    # Tenants are a JSON list, which SQLite and PostgreSQL search differently; incidents are
    # few, so they are filtered here, reading only as far as `limit` needs.
    found: list[Incident] = []
    for row in conn.execute(query):
        if len(found) >= limit:
            break
        if tenant in row.tenants:
            found.append(incident_of(row))
    return found


def get_incident(conn: Connection, incident_id: int) -> Incident:
    """The incident with that id; `NotFound` if there is none."""
    row = conn.execute(select(incident_rows).where(incident_rows.c.id == incident_id)).one_or_none()
    if row is None:
        raise NotFound("incident", str(incident_id))
    return incident_of(row)


def timeline(conn: Connection, incident_id: int) -> list[TimelineEntry]:
    """An incident's timeline, in the order its events were written; `NotFound` if there is
    no such incident."""
    get_incident(conn, incident_id)
    query = (
        select(incident_timeline)
        .where(incident_timeline.c.incident == incident_id)
        .order_by(incident_timeline.c.id)
    )
    return [
        TimelineEntry(r.id, r.incident, r.at, r.kind, r.message, dict(r.details))
        for r in conn.execute(query)
    ]


def summary(incidents: Iterable[Incident]) -> dict[str, Any]:
    """Counts and response times over `found`, times in seconds (None where nothing to measure).

    `count`, `open` (not yet resolved) and `resolved`; the median and mean of MTTD (over those
    whose anomaly start is known), MTTA (over those acknowledged) and MTTR (over those
    resolved); `resolved_automatically`, the share of resolved incidents that no person
    resolved (a runbook, or recovery), and `resolved_by_runbook`, the share a runbook did.
    """
    found = list(incidents)
    resolved = [i for i in found if i.status == "resolved"]
    result: dict[str, Any] = {
        "count": len(found),
        "open": len(found) - len(resolved),
        "resolved": len(resolved),
    }
    for name, times in (
        ("mttd", [i.mttd for i in found]),
        ("mtta", [i.mtta for i in found]),
        ("mttr", [i.mttr for i in found]),
    ):
        seconds = [t.total_seconds() for t in times if t is not None]
        result[f"{name}_median_seconds"] = statistics.median(seconds) if seconds else None
        result[f"{name}_mean_seconds"] = statistics.fmean(seconds) if seconds else None
    result["resolved_automatically"] = _share(resolved, lambda i: i.resolved_automatically)
    result["resolved_by_runbook"] = _share(
        resolved, lambda i: (i.resolved_by or "").startswith(RUNBOOK)
    )
    return result


def _share(among: Sequence[Incident], which: Callable[[Incident], bool]) -> float | None:
    return sum(1 for i in among if which(i)) / len(among) if among else None
