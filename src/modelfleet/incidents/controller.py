"""The incident controller: turns the alert manager's and the runbooks' events into incidents.

It reads only the events table, past its cursor, oldest first, and moves the cursor in the same
transaction as everything it writes, so a crash or a restart neither skips an event nor puts
one on a timeline twice. What it does with each event:

- `alert.group_opened` of warning or critical severity opens an incident (an info group opens
  none, unless an `alert.group_changed` later raises it to warning). Detection is the earliest
  `starts_at` of the group's serious alerts, the anomaly's start the earliest `anomaly_at`
  they carry, both read back from the `alert.firing` events in the store; those events go on
  the new incident's timeline first.
- Every event that names an open incident's group (`group_id`, `group_ids`) or one of its
  alerts (`fingerprint`) goes on its timeline, whatever its kind; some also change the
  incident: `alert.group_changed` (tenants, severity: the incident keeps the highest),
  `alert.notified` (a delivered page counts once), `alert.acknowledged`.
- `alert.group_resolved` resolves it, by "runbook <name>" when a runbook's action made one of
  its alerts recover (`remediation.verified`, not in dry run), else by the person who resolved
  an alert by hand, else "recovered".

What an open incident learned from its timeline beyond its row (its group, its alerts, the
pages counted, the runbook and person seen) is replayed from the timeline at each tick, so
nothing lives only in memory. A group that fires again within its flap window reopens
(`alert.group_reopened`), and so does its incident: a flapping alert is one incident. A group
that opens anew later is a new incident. The controller writes `incident.opened` and
`incident.resolved` events, and skips its own when it reads them back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from modelfleet.incidents.records import RECOVERED, RUNBOOK, Status
from modelfleet.registry.cursors import move_cursor, read_cursor
from modelfleet.registry.events import Event, Severity, events_after, record_event
from modelfleet.store import Store
from modelfleet.store.tables import events, incident_timeline, incidents

SOURCE = "incidents"
CURSOR = "incidents"
RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}
SERIOUS = RANK["warning"]  # the lowest severity that makes an incident
BY_ALERTING = ("source", "timeout")  # alert.resolved's `by` when no person resolved it

# The timeline entries that teach an open incident more than its row holds (see `_Open.learn`).
LEARNED = (
    "alert.group_opened",
    "alert.group_changed",
    "alert.firing",
    "alert.notified",
    "alert.resolved",
    "remediation.verified",
)

Seen = tuple[int, Event]  # an event with its id in the events table


@dataclass
class _Open:
    """An open incident: its row's changing fields, and what its timeline taught."""

    id: int
    group_id: int
    title: str
    severity: str
    status: Status
    tenants: list[str]
    anomaly_at: datetime | None
    detected_at: datetime
    acknowledged_at: datetime | None
    pages: int
    fingerprints: set[str] = field(default_factory=set)
    paged: set[int] = field(default_factory=set)  # notification ids counted in `pages`
    runbook: str | None = None
    person: str | None = None

    def concerns(self, details: dict[str, Any]) -> bool:
        """Whether an event with these details is about this incident's group or alerts."""
        return self.group_id in _group_ids(details) or details.get("fingerprint") in (
            self.fingerprints
        )

    def learn(self, kind: str, details: dict[str, Any]) -> None:
        """Take in what a timeline entry says beyond the row; replayed after a restart."""
        if kind in ("alert.group_opened", "alert.group_changed"):
            self.fingerprints.update(str(f) for f in details.get("fingerprints") or [])
        elif kind == "alert.firing" and details.get("fingerprint") is not None:
            self.fingerprints.add(str(details["fingerprint"]))
        elif kind == "alert.notified" and _delivered_page(details):
            if isinstance(details.get("notification_id"), int):
                self.paged.add(details["notification_id"])
        elif kind == "remediation.verified" and not details.get("dry_run"):
            self.runbook = str(details.get("runbook") or "")
        elif kind == "alert.resolved" and details.get("by") not in (None, *BY_ALERTING):
            self.person = str(details["by"])

    def apply(self, event: Event) -> None:
        """Take in a new event on the timeline: the row's fields, then what it teaches."""
        details = event.details
        if event.kind == "alert.notified" and _delivered_page(details):
            if details.get("notification_id") not in self.paged:
                self.pages += 1
        elif event.kind == "alert.group_changed" and details.get("group_id") == self.group_id:
            self.tenants = sorted({*self.tenants, *(str(t) for t in details.get("tenants") or [])})
            self.severity = _highest(self.severity, details.get("severity"))
        elif event.kind == "alert.acknowledged" and self.acknowledged_at is None:
            self.acknowledged_at = event.at
            self.status = "acknowledged"
        self.learn(event.kind, details)

    def resolver(self) -> str:
        if self.runbook:
            return f"{RUNBOOK}{self.runbook}"
        return self.person or RECOVERED


class IncidentController:
    """Opens, updates and resolves incidents from the events past its cursor."""

    def __init__(self, store: Store, *, batch: int = 10_000) -> None:
        self.store = store
        self.batch = batch  # the most events read in one tick; the rest wait for the next

    def tick(self, now: datetime) -> list[Event]:
        emitted: list[Event] = []
        with self.store.begin() as conn:
            seen = events_after(conn, read_cursor(conn, CURSOR), limit=self.batch)
            if not seen:
                return []
            book = _open_incidents(conn)
            for event_id, event in seen:
                if event.source != SOURCE:
                    emitted += _consume(conn, book, (event_id, event))
            for event in emitted:
                record_event(conn, event)
            move_cursor(conn, CURSOR, seen[-1][0], now=now)
        return emitted


def _consume(conn: Connection, book: dict[int, _Open], seen: Seen) -> list[Event]:
    event_id, event = seen
    details = event.details
    group_id = details.get("group_id")
    opening: Seen | None = None
    if (
        event.kind in ("alert.group_opened", "alert.group_changed")
        and isinstance(group_id, int)
        and RANK.get(str(details.get("severity")), 0) >= SERIOUS
        and not any(o.group_id == group_id for o in book.values())
    ):
        opening = seen if event.kind == "alert.group_opened" else _group_opening(conn, seen)
    if opening is not None:
        opened = _open(conn, opening, seen)
        book[opened.id] = opened
        return [_opened_event(opened, opening[1], at=event.at)]
    if event.kind == "alert.group_reopened" and isinstance(group_id, int):
        _reopen(conn, book, group_id)

    emitted: list[Event] = []
    for incident in [o for o in book.values() if o.concerns(details)]:
        known = set(incident.fingerprints)
        _append(conn, incident.id, [seen])
        incident.apply(event)
        # An alert that joins may show the anomaly began earlier than the incident knew.
        joined = [seen] if event.kind == "alert.firing" else []
        if event.kind == "alert.group_changed" and incident.fingerprints - known:
            found = _latest_firing(conn, incident.fingerprints - known, before=event_id)
            joined = list(found.values())
        _, anomaly_at = _detection(joined, at=incident.detected_at)
        incident.anomaly_at = _earliest(incident.anomaly_at, anomaly_at)
        if event.kind == "alert.group_resolved" and group_id == incident.group_id:
            emitted.append(_resolve(conn, incident, event.at))
            del book[incident.id]
        else:
            _write(conn, incident)
    return emitted


def _open(conn: Connection, opening: Seen, current: Seen) -> _Open:
    """Open an incident for the group `opening` opened, made serious by `current` (the same
    event, or a later `alert.group_changed`)."""
    (_, opened), (current_id, latest) = opening, current
    group_labels = {str(k): str(v) for k, v in (opened.details.get("group_labels") or {}).items()}
    fingerprints = [str(f) for f in latest.details.get("fingerprints") or []]
    firing = _latest_firing(conn, fingerprints, before=current_id)
    detected_at, anomaly_at = _detection(firing.values(), at=latest.at)
    title = str(opened.details.get("title") or "") or _title(group_labels, firing.values())
    incident_id = conn.execute(
        insert(incidents)
        .values(
            group_key=str(opened.details.get("group_key") or opened.subject)[:600],
            title=title[:300],
            severity=str(latest.details["severity"]),
            status="open",
            labels=group_labels,
            tenants=sorted({str(t) for t in latest.details.get("tenants") or []}),
            anomaly_at=anomaly_at,
            detected_at=detected_at,
            acknowledged_at=None,
            resolved_at=None,
            resolved_by=None,
            pages=0,
        )
        .returning(incidents.c.id)
    ).scalar_one()
    incident = _Open(
        id=int(incident_id),
        group_id=int(opened.details["group_id"]),
        title=title,
        severity=str(latest.details["severity"]),
        status="open",
        tenants=sorted({str(t) for t in latest.details.get("tenants") or []}),
        anomaly_at=anomaly_at,
        detected_at=detected_at,
        acknowledged_at=None,
        pages=0,
    )
    # The alerts' firing, and the group's opening when a change made it serious, came before
    # the incident existed: they open its timeline, in the order they happened.
    entries = sorted(
        {i: e for i, e in [*firing.values(), opening, current]}.items(), key=lambda s: s[0]
    )
    _append(conn, incident.id, entries)
    for _, entry in entries:
        incident.learn(entry.kind, entry.details)
    return incident


def _resolve(conn: Connection, incident: _Open, at: datetime) -> Event:
    resolved_by = incident.resolver()
    incident.status = "resolved"
    _write(conn, incident, resolved_at=at, resolved_by=resolved_by[:200])
    duration = at - incident.detected_at
    mttd = None if incident.anomaly_at is None else incident.detected_at - incident.anomaly_at
    return Event(
        at=at,
        source=SOURCE,
        kind="incident.resolved",
        severity="info",
        subject=f"incident/{incident.id}",
        tenant=_one(incident.tenants),
        message=f"incident {incident.id} resolved by {resolved_by} after {duration}: "
        f"{incident.title}",
        details={
            "incident_id": incident.id,
            "group_id": incident.group_id,
            "resolved_by": resolved_by,
            "resolved_at": at.isoformat(),
            "mttd_seconds": None if mttd is None else mttd.total_seconds(),
            "mttr_seconds": duration.total_seconds(),
            "pages": incident.pages,
        },
    )


def _opened_event(incident: _Open, opened: Event, *, at: datetime) -> Event:
    return Event(
        at=at,
        source=SOURCE,
        kind="incident.opened",
        severity=_severity(incident.severity),
        subject=f"incident/{incident.id}",
        tenant=_one(incident.tenants),
        message=f"incident {incident.id} opened ({incident.severity}): {incident.title}",
        details={
            "incident_id": incident.id,
            "group_id": incident.group_id,
            "group_key": opened.details.get("group_key"),
            "title": incident.title,
            "severity": incident.severity,
            "tenants": incident.tenants,
            "anomaly_at": None if incident.anomaly_at is None else incident.anomaly_at.isoformat(),
            "detected_at": incident.detected_at.isoformat(),
        },
    )


def _reopen(conn: Connection, book: dict[int, _Open], group_id: int) -> None:
    """A group fired again within its flap window: its incident, resolved, is open again (the
    same incident: one alert, one page), and the event goes on its timeline."""
    if any(o.group_id == group_id for o in book.values()):
        return
    opened = conn.execute(
        select(incident_timeline.c.incident)
        .where(incident_timeline.c.kind == "alert.group_opened")
        .order_by(incident_timeline.c.id.desc())
    )
    for (incident_id,) in opened:
        details = conn.execute(
            select(incident_timeline.c.details).where(
                incident_timeline.c.incident == incident_id,
                incident_timeline.c.kind == "alert.group_opened",
            )
        ).scalar()
        if details and details.get("group_id") == group_id:
            conn.execute(
                update(incidents)
                .where(incidents.c.id == incident_id)
                .values(status="open", resolved_at=None, resolved_by=None)
            )
            book.update({k: v for k, v in _open_incidents(conn).items() if k == incident_id})
            return


def _open_incidents(conn: Connection) -> dict[int, _Open]:
    """Every incident not yet resolved, with what its timeline taught replayed."""
    rows = conn.execute(
        select(incidents).where(incidents.c.status != "resolved").order_by(incidents.c.id)
    ).all()
    if not rows:
        return {}
    entries: dict[int, list[tuple[str, dict[str, Any]]]] = {row.id: [] for row in rows}
    query = (
        select(incident_timeline.c.incident, incident_timeline.c.kind, incident_timeline.c.details)
        .where(incident_timeline.c.incident.in_(entries), incident_timeline.c.kind.in_(LEARNED))
        .order_by(incident_timeline.c.id)
    )
    for entry in conn.execute(query):
        entries[entry.incident].append((entry.kind, dict(entry.details)))
    book: dict[int, _Open] = {}
    for row in rows:
        group_ids = [d["group_id"] for k, d in entries[row.id] if k == "alert.group_opened"]
        if not group_ids:  # not opened by this controller: nothing would ever name it
            continue
        incident = _Open(
            id=row.id,
            group_id=int(group_ids[0]),
            title=row.title,
            severity=row.severity,
            status=row.status,
            tenants=list(row.tenants),
            anomaly_at=row.anomaly_at,
            detected_at=row.detected_at,
            acknowledged_at=row.acknowledged_at,
            pages=row.pages,
        )
        for kind, details in entries[row.id]:
            incident.learn(kind, details)
        book[incident.id] = incident
    return book


def _append(conn: Connection, incident_id: int, entries: Sequence[Seen]) -> None:
    conn.execute(
        insert(incident_timeline),
        [
            {
                "incident": incident_id,
                "at": e.at,
                "kind": e.kind,
                "message": e.message,
                "details": e.details,
            }
            for _, e in entries
        ],
    )


def _write(conn: Connection, incident: _Open, **resolution: Any) -> None:
    conn.execute(
        update(incidents)
        .where(incidents.c.id == incident.id)
        .values(
            severity=incident.severity,
            status=incident.status,
            tenants=incident.tenants,
            anomaly_at=incident.anomaly_at,
            acknowledged_at=incident.acknowledged_at,
            pages=incident.pages,
            **resolution,
        )
    )


def _latest_firing(
    conn: Connection, fingerprints: Iterable[str], *, before: int
) -> dict[str, Seen]:
    """The latest `alert.firing` event of each alert, among those written before `before`."""
    wanted = sorted(set(fingerprints))
    if not wanted:
        return {}
    query = (
        select(events)
        .where(
            events.c.kind == "alert.firing",
            events.c.id < before,
            events.c.details["fingerprint"].as_string().in_(wanted),
        )
        .order_by(events.c.id)
    )
    return {str(r.details["fingerprint"]): (r.id, _event(r)) for r in conn.execute(query)}


def _group_opening(conn: Connection, changed: Seen) -> Seen | None:
    """The `alert.group_opened` event of the group a change is about, if that group is still
    open: a change can raise an info group to an incident's severity."""
    changed_id, change = changed
    row = conn.execute(
        select(events)
        .where(
            events.c.kind.in_(("alert.group_opened", "alert.group_resolved")),
            events.c.id < changed_id,
            events.c.details["group_id"].as_integer() == int(change.details["group_id"]),
        )
        .order_by(events.c.id.desc())
        .limit(1)
    ).one_or_none()
    if row is None or row.kind != "alert.group_opened":
        return None
    return row.id, _event(row)


def _detection(firing: Iterable[Seen], *, at: datetime) -> tuple[datetime, datetime | None]:
    """When the serious alerts among `firing` were detected (no later than `at`), and when
    their anomaly began, where a detector knows it and it began before detection."""
    serious = [
        e.details
        for _, e in firing
        if RANK.get(str((e.details.get("labels") or {}).get("severity")), SERIOUS) >= SERIOUS
    ]
    starts = [t for d in serious if (t := _time(d.get("starts_at"))) is not None]
    detected = min([at, *starts])
    # An anomaly that began after detection is a later alert's, not this incident's start.
    anomalies = [t for d in serious if (t := _time(d.get("anomaly_at"))) and t <= detected]
    return detected, min(anomalies, default=None)


def _title(group_labels: dict[str, str], firing: Iterable[Seen]) -> str:
    names = [str((e.details.get("labels") or {}).get("alertname", "")) for _, e in firing]
    alertname = group_labels.get("alertname") or next((n for n in names if n), "alerts")
    shown = ", ".join(f"{k}={v}" for k, v in sorted(group_labels.items()) if k != "alertname")
    return f"{alertname} ({shown})" if shown else alertname


def _event(row: Any) -> Event:
    return Event(
        row.at,
        row.source,
        row.kind,
        row.severity,
        row.subject,
        row.message,
        dict(row.details),
        row.tenant,
    )


def _group_ids(details: dict[str, Any]) -> set[int]:
    found = {g for g in details.get("group_ids") or [] if isinstance(g, int)}
    if isinstance(details.get("group_id"), int):
        found.add(details["group_id"])
    return found


def _delivered_page(details: dict[str, Any]) -> bool:
    return bool(details.get("page")) and bool(details.get("delivered"))


def _highest(current: str, other: Any) -> str:
    return str(other) if RANK.get(str(other), -1) > RANK.get(current, -1) else current


def _severity(value: str) -> Severity:
    if value == "critical":
        return "critical"
    return "warning" if value == "warning" else "info"


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return min(a, b)


def _time(value: Any) -> datetime | None:
    """An ISO 8601 time from an event's details; naive times are taken as UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _one(tenants: list[str]) -> str | None:
    return tenants[0] if len(tenants) == 1 else None
