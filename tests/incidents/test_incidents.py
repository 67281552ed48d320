"""Incidents from the alert manager's and the runbooks' events, on SQLite and on PostgreSQL.

The events are written by hand, as the alert and remediation controllers write them, on a
virtual timeline: minute 0 is 09:00.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, func, select

from modelfleet.errors import NotFound
from modelfleet.incidents import (
    Incident,
    IncidentController,
    TimelineEntry,
    get_incident,
    list_incidents,
    postmortem,
    summary,
    timeline,
)
from modelfleet.registry.cursors import read_cursor
from modelfleet.registry.events import Event, recent_events, record_event
from modelfleet.store import Store
from modelfleet.store.tables import events, incident_timeline

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
GROUP = 7


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


def event(kind: str, minute: float, details: dict[str, Any], **fields: Any) -> Event:
    source = kind.split(".")[0] + ("s" if kind.startswith("alert.") else "")
    return Event(
        at=at(minute),
        source=fields.pop("source", source),
        kind=kind,
        severity=fields.pop("severity", "info"),
        subject=fields.pop("subject", "test"),
        message=fields.pop("message", f"{kind} at minute {minute}"),
        details=details,
        tenant=fields.pop("tenant", None),
    )


def firing(
    fingerprint: str,
    minute: float,
    *,
    anomaly: float | None = None,
    severity: str = "critical",
    tenant: str = "acme",
    groups: Sequence[int] = (GROUP,),
) -> Event:
    labels = {"alertname": "HighErrorRate", "severity": severity, "tenant": tenant}
    return event(
        "alert.firing",
        minute,
        {
            "fingerprint": fingerprint,
            "labels": labels,
            "annotations": {"summary": "errors above 5%"},
            "starts_at": at(minute).isoformat(),
            "anomaly_at": None if anomaly is None else at(anomaly).isoformat(),
            "group_ids": list(groups),
        },
        severity=severity,
        tenant=tenant,
    )


def opened(
    minute: float,
    fingerprints: Sequence[str],
    *,
    severity: str = "critical",
    tenants: Sequence[str] = ("acme",),
    group: int = GROUP,
    title: str = "",
) -> Event:
    return event(
        "alert.group_opened",
        minute,
        {
            "group_id": group,
            "group_key": f'{{}}/team-ml:{{alertname="HighErrorRate"}}#{group}',
            "receiver": "team-ml",
            "group_labels": {"alertname": "HighErrorRate", "model": "digits"},
            "severity": severity,
            "fingerprints": list(fingerprints),
            "tenants": list(tenants),
            "title": title,
        },
    )


def changed(
    minute: float,
    fingerprints: Sequence[str],
    *,
    severity: str,
    tenants: Sequence[str],
    group: int = GROUP,
) -> Event:
    details = {
        "group_id": group,
        "fingerprints": list(fingerprints),
        "tenants": list(tenants),
        "severity": severity,
    }
    return event("alert.group_changed", minute, details)


def notified(
    minute: float, notification: int, *, page: bool = True, delivered: bool = True
) -> Event:
    details = {
        "group_id": GROUP,
        "notification_id": notification,
        "receiver": "team-ml",
        "integration": "pagerduty" if page else "slack",
        "kind": "firing",
        "page": page,
        "person": "alice" if page else None,
        "level": 0 if page else None,
        "delivered": delivered,
        "attempts": 1,
        "error": None if delivered else "HTTP 503",
    }
    return event("alert.notified", minute, details)


def acknowledged(minute: float, by: str = "alice") -> Event:
    return event("alert.acknowledged", minute, {"group_id": GROUP, "by": by})


def resolved(fingerprint: str, minute: float, by: str = "source") -> Event:
    details = {
        "fingerprint": fingerprint,
        "labels": {"alertname": "HighErrorRate"},
        "ends_at": at(minute).isoformat(),
        "group_ids": [GROUP],
        "by": by,
    }
    return event("alert.resolved", minute, details)


def remediation(kind: str, fingerprint: str, minute: float, *, dry_run: bool = False) -> Event:
    details = {
        "run_id": 3,
        "runbook": "rollback-on-errors",
        "fingerprint": fingerprint,
        "step": 0,
        "action": "rollback",
        "outcome": "rolled digits-prod back to v1",
        "dry_run": dry_run,
    }
    return event(f"remediation.{kind}", minute, details, source="remediation")


def group_resolved(minute: float, group: int = GROUP) -> Event:
    details = {"group_id": group, "group_key": f"team-ml#{group}", "at": at(minute).isoformat()}
    return event("alert.group_resolved", minute, details)


def feed(store: Store, *written: Event) -> None:
    with store.begin() as conn:
        for e in written:
            record_event(conn, e)


def run(store: Store, *written: Event, minute: float = 60) -> list[Event]:
    """Write `written`, then tick a controller once at `minute`."""
    feed(store, *written)
    return IncidentController(store).tick(at(minute))


def only_incident(store: Store) -> Incident:
    with store.begin() as conn:
        found = list_incidents(conn)
    assert len(found) == 1
    return found[0]


def entries(store: Store, incident: Incident) -> list[TimelineEntry]:
    with store.begin() as conn:
        return timeline(conn, incident.id)


def test_a_critical_group_opens_an_incident_detected_when_its_first_alert_fired(
    store: Store,
) -> None:
    emitted = run(store, firing("a", 2, anomaly=0), opened(2.5, ["a"]), minute=3)

    incident = only_incident(store)
    assert incident.status == "open"
    assert incident.severity == "critical"
    assert incident.title == "HighErrorRate (model=digits)"
    assert incident.labels == {"alertname": "HighErrorRate", "model": "digits"}
    assert incident.tenants == ("acme",)
    assert (incident.anomaly_at, incident.detected_at) == (at(0), at(2))
    assert incident.mttd == timedelta(minutes=2)
    assert incident.mttr is None and incident.resolved_by is None and incident.pages == 0
    assert [(e.kind, e.source, e.severity, e.tenant) for e in emitted] == [
        ("incident.opened", "incidents", "critical", "acme")
    ]
    assert emitted[0].details["incident_id"] == incident.id
    with store.begin() as conn:
        assert [e.kind for e in recent_events(conn, source="incidents")] == ["incident.opened"]


def test_the_groups_own_title_names_the_incident(store: Store) -> None:
    run(store, firing("a", 1), opened(1, ["a"], title="digits-prod errors for acme"))

    assert only_incident(store).title == "digits-prod errors for acme"


def test_every_event_about_the_incident_goes_on_its_timeline_in_order(store: Store) -> None:
    other = firing("z", 3, tenant="bolt", groups=[GROUP + 1])
    run(
        store,
        firing("a", 1, anomaly=0),
        opened(1.5, ["a"]),
        notified(2, 1),
        other,
        event("alert.escalated", 10, {"group_id": GROUP, "level": 1, "people": ["bob"]}),
        minute=10,
    )
    run(
        store,
        acknowledged(12),
        remediation("started", "a", 13),
        remediation("action", "a", 13.5),
        remediation("started", "z", 14),  # another alert's runbook
        event("rollout.rolled_back", 14, {"deployment": "digits-prod"}, source="rollouts"),
        event("custom.note", 15, {"group_id": GROUP, "text": "customer called"}),
        firing("b", 16, groups=[GROUP]),
        changed(16, ["a", "b"], severity="critical", tenants=["acme"]),
        remediation("verified", "a", 20),
        resolved("a", 20),
        resolved("b", 21),
        group_resolved(22),
        notified(22, 2, page=False),  # the resolved notice, after the incident closed
        minute=30,
    )

    incident = only_incident(store)
    assert [(e.kind, e.at) for e in entries(store, incident)] == [
        ("alert.firing", at(1)),
        ("alert.group_opened", at(1.5)),
        ("alert.notified", at(2)),
        ("alert.escalated", at(10)),
        ("alert.acknowledged", at(12)),
        ("remediation.started", at(13)),
        ("remediation.action", at(13.5)),
        ("custom.note", at(15)),
        ("alert.firing", at(16)),
        ("alert.group_changed", at(16)),
        ("remediation.verified", at(20)),
        ("alert.resolved", at(20)),
        ("alert.resolved", at(21)),
        ("alert.group_resolved", at(22)),
    ]
    first = entries(store, incident)[0]
    assert first.message == "alert.firing at minute 1"
    assert first.details["fingerprint"] == "a"
    assert incident.status == "resolved"


def test_a_page_counts_once_when_it_is_delivered(store: Store) -> None:
    run(
        store,
        firing("a", 1),
        opened(1, ["a"]),
        notified(1, 1, delivered=False),  # the first attempt failed
        notified(2, 1),  # the retry got through
        notified(2, 1),  # said twice: still one page
        notified(2, 2, page=False),  # a chat message is no page
        notified(15, 3, delivered=False),  # escalated, never delivered
        notified(16, 4),  # escalated to the next level
    )

    incident = only_incident(store)
    assert incident.pages == 2
    assert [e.kind for e in entries(store, incident)].count("alert.notified") == 6


def test_mttd_mtta_and_mttr_are_exact_on_a_virtual_timeline(store: Store) -> None:
    run(store, firing("a", 3, anomaly=0.5), opened(3 + 1 / 6, ["a"]), minute=4)
    run(store, acknowledged(10), minute=10)
    run(store, resolved("a", 44.75), group_resolved(45), minute=45)

    incident = only_incident(store)
    assert incident.mttd == timedelta(minutes=2, seconds=30)
    assert incident.mtta == timedelta(minutes=7)
    assert incident.mttr == timedelta(minutes=42)
    assert (incident.acknowledged_at, incident.resolved_at) == (at(10), at(45))


def test_an_incident_without_a_known_anomaly_start_has_no_mttd(store: Store) -> None:
    run(store, firing("a", 3), opened(3, ["a"]), group_resolved(8))

    incident = only_incident(store)
    assert incident.anomaly_at is None and incident.mttd is None
    assert incident.mttr == timedelta(minutes=5)


@pytest.mark.parametrize(
    ("response", "resolved_by"),
    [
        (
            [remediation("action", "a", 5), remediation("verified", "a", 8), resolved("a", 8)],
            "runbook rollback-on-errors",
        ),
        ([remediation("verified", "a", 8, dry_run=True), resolved("a", 8)], "recovered"),
        ([acknowledged(4, "alice"), resolved("a", 8, by="alice")], "alice"),
        ([acknowledged(4, "alice"), resolved("a", 8, by="timeout")], "recovered"),
        ([resolved("a", 8)], "recovered"),
    ],
    ids=["runbook", "dry-run-runbook", "person", "acknowledged-then-timed-out", "recovered"],
)
def test_resolved_by_names_a_runbook_a_person_or_recovery(
    store: Store, response: list[Event], resolved_by: str
) -> None:
    emitted = run(store, firing("a", 1), opened(1, ["a"]), *response, group_resolved(9))

    incident = only_incident(store)
    assert (incident.status, incident.resolved_by) == ("resolved", resolved_by)
    assert incident.resolved_automatically == (resolved_by != "alice")
    assert [e.kind for e in emitted] == ["incident.opened", "incident.resolved"]
    assert emitted[1].details["resolved_by"] == resolved_by
    assert emitted[1].details["mttr_seconds"] == 8 * 60


def test_a_restarted_controller_carries_on_without_repeating_anything(store: Store) -> None:
    feed(store, firing("a", 1, anomaly=0), opened(1, ["a"]), notified(2, 1))
    IncidentController(store).tick(at(2))
    feed(store, notified(3, 1), remediation("verified", "a", 4))  # a repeated page, then a fix
    IncidentController(store).tick(at(4))
    IncidentController(store).tick(at(4))  # nothing new: nothing changes
    feed(store, resolved("a", 5), group_resolved(6))
    emitted = IncidentController(store).tick(at(6))
    assert IncidentController(store).tick(at(7)) == []  # reads its own event back, skips it

    incident = only_incident(store)
    assert [e.kind for e in emitted] == ["incident.resolved"]
    assert incident.pages == 1
    assert incident.resolved_by == "runbook rollback-on-errors"
    assert [e.kind for e in entries(store, incident)] == [
        "alert.firing",
        "alert.group_opened",
        "alert.notified",
        "alert.notified",
        "remediation.verified",
        "alert.resolved",
        "alert.group_resolved",
    ]
    with store.begin() as conn:
        last = conn.execute(select(func.max(events.c.id))).scalar_one()
        assert read_cursor(conn, "incidents") == last


class CrashingStore(Store):
    """The real store, but every transaction dies just before it commits."""

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with super().begin() as conn:
            yield conn
            raise RuntimeError("the process died before it committed")


def test_a_tick_that_dies_before_committing_consumes_nothing(store: Store) -> None:
    feed(store, firing("a", 1), opened(1, ["a"]))
    with pytest.raises(RuntimeError):
        IncidentController(CrashingStore(store.engine)).tick(at(2))
    with store.begin() as conn:
        assert read_cursor(conn, "incidents") == 0
        assert list_incidents(conn) == []

    IncidentController(store).tick(at(2))
    assert len(entries(store, only_incident(store))) == 2


def test_an_info_group_opens_no_incident(store: Store) -> None:
    emitted = run(
        store,
        firing("a", 1, severity="info"),
        opened(1, ["a"], severity="info"),
        notified(2, 1, page=False),
        resolved("a", 5),
        group_resolved(6),
    )

    assert emitted == []
    with store.begin() as conn:
        assert list_incidents(conn) == []
        assert conn.execute(select(func.count()).select_from(incident_timeline)).scalar() == 0


def test_an_info_group_raised_to_critical_opens_an_incident_then(store: Store) -> None:
    emitted = run(
        store,
        firing("a", 1, severity="info", anomaly=0),
        opened(1, ["a"], severity="info"),
        firing("b", 4, anomaly=3),
        changed(4.5, ["a", "b"], severity="critical", tenants=["acme", "bolt"]),
        group_resolved(9),
    )

    incident = only_incident(store)
    assert [e.kind for e in emitted] == ["incident.opened", "incident.resolved"]
    assert emitted[0].at == at(4.5)
    assert incident.severity == "critical"
    assert incident.tenants == ("acme", "bolt")
    assert (incident.anomaly_at, incident.detected_at) == (at(3), at(4))  # b's, not info a's
    assert [e.kind for e in entries(store, incident)] == [
        "alert.firing",
        "alert.group_opened",
        "alert.firing",
        "alert.group_changed",
        "alert.group_resolved",
    ]


def test_a_changing_group_widens_the_incident_and_keeps_its_highest_severity(
    store: Store,
) -> None:
    run(
        store,
        firing("a", 2, anomaly=1.5, severity="warning"),
        opened(2, ["a"], severity="warning"),
        firing("b", 3, anomaly=0.5, tenant="bolt"),  # its anomaly began earlier
        changed(3, ["a", "b"], severity="critical", tenants=["acme", "bolt"]),
        resolved("b", 6),
        changed(6, ["a"], severity="warning", tenants=["acme"]),
    )

    incident = only_incident(store)
    assert incident.severity == "critical"
    assert incident.tenants == ("acme", "bolt")
    assert (incident.anomaly_at, incident.detected_at) == (at(0.5), at(2))


def test_a_group_that_opens_again_is_a_new_incident(store: Store) -> None:
    run(store, firing("a", 1), opened(1, ["a"]), resolved("a", 5), group_resolved(5))
    run(store, firing("a", 30), opened(30, ["a"]), notified(31, 9), minute=31)

    with store.begin() as conn:
        later, first = list_incidents(conn)
        assert (first.status, first.resolved_at, first.pages) == ("resolved", at(5), 0)
        assert (later.status, later.detected_at, later.pages) == ("open", at(30), 1)
        assert [e.at for e in timeline(conn, later.id)] == [at(30), at(30), at(31)]


def test_incidents_are_listed_newest_first_and_filtered(store: Store) -> None:
    run(
        store,
        firing("a", 1),
        opened(1, ["a"]),
        firing("b", 2, tenant="bolt", groups=[8]),
        opened(2, ["b"], group=8, tenants=["bolt"], severity="warning"),
        acknowledged(3),
        firing("c", 4, groups=[9]),
        opened(4, ["c"], group=9),
        group_resolved(5, group=9),
    )

    with store.begin() as conn:
        assert [i.detected_at for i in list_incidents(conn)] == [at(4), at(2), at(1)]
        assert [i.status for i in list_incidents(conn)] == ["resolved", "open", "acknowledged"]
        assert [i.detected_at for i in list_incidents(conn, status="open")] == [at(2)]
        assert [i.detected_at for i in list_incidents(conn, tenant="acme")] == [at(4), at(1)]
        assert [i.detected_at for i in list_incidents(conn, tenant="acme", limit=1)] == [at(4)]
        assert [i.detected_at for i in list_incidents(conn, since=at(2))] == [at(4), at(2)]
        assert list_incidents(conn, tenant="nobody") == []
        first = list_incidents(conn)[-1]
        assert get_incident(conn, first.id) == first


def test_an_unknown_incident_is_not_found(store: Store) -> None:
    with store.begin() as conn, pytest.raises(NotFound, match="incident '404' not found"):
        get_incident(conn, 404)
    with store.begin() as conn, pytest.raises(NotFound):
        timeline(conn, 404)


def incident(
    *,
    anomaly: float | None,
    detected: float,
    acknowledged: float | None = None,
    resolved: float | None = None,
    by: str | None = None,
) -> Incident:
    return Incident(
        id=1,
        group_key="team-ml#7",
        title="HighErrorRate (model=digits)",
        severity="critical",
        status="resolved" if resolved is not None else "open",
        labels={"alertname": "HighErrorRate"},
        tenants=("acme",),
        anomaly_at=None if anomaly is None else at(anomaly),
        detected_at=at(detected),
        acknowledged_at=None if acknowledged is None else at(acknowledged),
        resolved_at=None if resolved is None else at(resolved),
        resolved_by=by,
        pages=0,
    )


def test_summary_takes_the_median_and_mean_of_each_response_time() -> None:
    found = [
        incident(anomaly=0, detected=1, acknowledged=2, resolved=11, by="runbook rollback"),
        incident(anomaly=0, detected=2, acknowledged=5, resolved=32, by="alice"),
        incident(anomaly=None, detected=0, resolved=5, by="recovered"),
        incident(anomaly=0, detected=6),  # still open
    ]

    figures = summary(found)

    assert figures == {
        "count": 4,
        "open": 1,
        "resolved": 3,
        "mttd_median_seconds": 120.0,  # of 1, 2 and 6 minutes
        "mttd_mean_seconds": 180.0,
        "mtta_median_seconds": 120.0,  # of 1 and 3
        "mtta_mean_seconds": 120.0,
        "mttr_median_seconds": 600.0,  # of 10, 30 and 5
        "mttr_mean_seconds": 900.0,
        "resolved_automatically": pytest.approx(2 / 3),
        "resolved_by_runbook": pytest.approx(1 / 3),
    }


def test_summary_of_no_incidents_measures_nothing() -> None:
    figures = summary([])

    assert figures["count"] == 0
    assert figures["mttr_median_seconds"] is None and figures["mttd_mean_seconds"] is None
    assert figures["resolved_automatically"] is None


def test_a_postmortem_has_the_summary_table_the_timeline_and_the_headings_to_fill(
    store: Store,
) -> None:
    run(
        store,
        firing("a", 2, anomaly=0),
        opened(2, ["a"]),
        notified(2.75, 1),
        acknowledged(5),
        event("custom.note", 6, {"group_id": GROUP}, message="error rate | 12%\nstill rising"),
        remediation("verified", "a", 70),
        resolved("a", 70),
        group_resolved(72.5),
        minute=73,
    )
    found = only_incident(store)

    text = postmortem(found, entries(store, found))

    assert text.startswith(f"# Incident {found.id}: HighErrorRate (model=digits)\n")
    for row in [
        "| Severity | critical |",
        "| Status | resolved |",
        "| Tenants affected | acme |",
        "| Anomaly start | 2026-11-02 09:00:00 UTC (-2:00) |",
        "| Detected | 2026-11-02 09:02:00 UTC |",
        "| Acknowledged | 2026-11-02 09:05:00 UTC (+3:00) |",
        "| Resolved | 2026-11-02 10:12:30 UTC (+1:10:30) |",
        "| MTTD (time to detect) | 2m 00s |",
        "| MTTA (time to acknowledge) | 3m 00s |",
        "| MTTR (time to resolve) | 1h 10m 30s |",
        "| Resolved by | runbook rollback-on-errors |",
        "| Pages | 1 |",
        "| +0:00 | 2026-11-02 09:02:00 | `alert.firing` | alert.firing at minute 2 |",
        "| +0:45 | 2026-11-02 09:02:45 | `alert.notified` | alert.notified at minute 2.75 |",
        "| +4:00 | 2026-11-02 09:06:00 | `custom.note` | error rate \\| 12% still rising |",
        "| +1:10:30 | 2026-11-02 10:12:30 | `alert.group_resolved` | "
        "alert.group_resolved at minute 72.5 |",
    ]:
        assert row + "\n" in text
    timeline_rows = [line for line in text.splitlines() if line.startswith("| +")]
    assert len(timeline_rows) == len(entries(store, found))
    for heading in ["Summary", "Timeline", "Root cause", "What went well", "What went wrong"]:
        assert f"\n## {heading}\n\n" in text
    assert "\n## Action items\n" in text and "| Action | Owner | Due | Tracking |" in text


def test_a_postmortem_of_an_open_incident_says_so() -> None:
    text = postmortem(incident(anomaly=None, detected=0), [])

    assert "still open" in text
    assert "| Resolved | not resolved |" in text
    assert "| MTTD (time to detect) | — |" in text
    assert "| | | | nothing was recorded |" in text
