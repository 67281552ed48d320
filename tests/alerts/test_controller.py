"""The alert controller with remediation and incidents, on a virtual clock, with a real receiver.

Alerts are raised the way every source raises them (events carrying an alert), then the real
controllers tick: grouping timing, flap damping, escalation, hold-for-remediation and guards.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from modelfleet.alerts.commands import acknowledge
from modelfleet.alerts.controller import AlertController
from modelfleet.clock import VirtualClock
from modelfleet.config import load_fleet_text
from modelfleet.incidents import IncidentController, list_incidents
from modelfleet.registry.apply import apply_fleet
from modelfleet.registry.events import Event, alert_details, record_event
from modelfleet.remediation.actions import Operations
from modelfleet.remediation.controller import RemediationController, list_runs
from modelfleet.store import Store
from tests.alerts.conftest import HTTPReceiver

LABELS = {
    "alertname": "ErrorRateAnomaly",
    "severity": "critical",
    "tenant": "acme",
    "model": "m",
    "version": "v2",
    "region": "eu",
    "scope": "model",
}


def fleet(url: str, runbook: str = "") -> str:
    return f"""
kind: Receiver
metadata: {{name: team}}
spec:
  webhook: [{{url: "{url}"}}]
---
kind: Receiver
metadata: {{name: pager}}
spec:
  pagerduty: [{{routing_key: k, url: "{url}"}}]
  escalation: esc
---
kind: OnCallSchedule
metadata: {{name: primary}}
spec:
  time_zone: Europe/Berlin
  participants: [{{name: Ada, email: ada@example.com}}, {{name: Bo, email: bo@example.com}}]
  rotation: {{length: 7d, start: 2026-11-02, handoff: "09:00"}}
---
kind: EscalationPolicy
metadata: {{name: esc}}
spec:
  levels:
    - {{schedule: primary, escalate_after: 10m}}
    - people: [{{name: Cy, email: cy@example.com}}]
---
kind: AlertRouting
metadata: {{name: default}}
spec:
  receiver: team
  group_by: [alertname, model]
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
{runbook}
"""


RESTART = """---
kind: Runbook
metadata: {name: restart}
spec:
  match: ['alertname="ErrorRateAnomaly"']
  actions: [{action: restart, verify: 2m}]
  guards: {max_runs_per_hour: 2, cooldown: 0s}
"""


class Loop:
    def __init__(self, store: Store, clock: VirtualClock) -> None:
        self.store, self.clock = store, clock
        ops = Operations(rollback=lambda *a, **k: "rolled back", open_review=lambda *a, **k: 0)
        self.controllers = [
            AlertController(store),
            RemediationController(store, ops),
            IncidentController(store),
        ]

    def signal(self, state: str, anomaly_at: datetime | None = None) -> None:
        with self.store.begin() as conn:
            record_event(
                conn,
                Event(
                    at=self.clock.now(),
                    source="monitors",
                    kind=f"anomaly.{state}",
                    severity="critical",
                    subject="m/v2",
                    message="test",
                    details={"alert": alert_details(dict(LABELS), state, anomaly_at=anomaly_at)},
                ),
            )

    def run(self, seconds: int, step: int = 10) -> list[Event]:
        out: list[Event] = []
        for _ in range(seconds // step):
            self.clock.advance(timedelta(seconds=step))
            for c in self.controllers:
                out += c.tick(self.clock.now())
        return out


def setup(store: Store, clock: VirtualClock, url: str, runbook: str = "") -> Loop:
    apply_fleet(store, load_fleet_text(fleet(url, runbook)), actor="test", now=clock.now())
    return Loop(store, clock)


def kinds(events: list[Event], kind: str) -> list[Event]:
    return [e for e in events if e.kind == kind]


def test_a_group_waits_group_wait_then_pages_the_one_person_on_call(
    store: Store, clock: VirtualClock, http_receiver: HTTPReceiver
) -> None:
    loop = setup(store, clock, http_receiver.url)
    loop.signal("firing", anomaly_at=clock.now() - timedelta(seconds=40))
    events = loop.run(20)
    assert kinds(events, "alert.firing") and not kinds(events, "alert.paged")
    events = loop.run(20)  # group_wait (30 s) has passed
    paged = kinds(events, "alert.paged")
    assert [e.details["people"] for e in paged] == [["Ada"]]
    bodies = [r.body for r in http_receiver.requests]
    assert [b["event_action"] for b in bodies] == ["trigger"]


def test_an_unacknowledged_page_escalates_after_its_level_and_an_ack_stops_it(
    store: Store, clock: VirtualClock, http_receiver: HTTPReceiver
) -> None:
    loop = setup(store, clock, http_receiver.url)
    loop.signal("firing")
    events = loop.run(60)
    assert len(kinds(events, "alert.paged")) == 1
    events = loop.run(9 * 60)  # 10 minutes after the page: not yet
    assert not kinds(events, "alert.escalated")
    events = loop.run(60)
    assert [e.details["people"] for e in kinds(events, "alert.escalated")] == [["Cy"]]
    with store.begin() as conn:
        acknowledge(conn, "1", actor="cy", now=clock.now())
    assert not kinds(loop.run(30 * 60), "alert.escalated")
    assert http_receiver.requests[-1].body["event_action"] == "acknowledge"


def test_a_runbook_that_fixes_the_alert_holds_the_page_and_resolves_the_incident(
    store: Store, clock: VirtualClock, http_receiver: HTTPReceiver
) -> None:
    loop = setup(store, clock, http_receiver.url, RESTART)
    started = clock.now()
    loop.signal("firing", anomaly_at=started - timedelta(seconds=30))
    events = loop.run(60)
    assert kinds(events, "remediation.action") and not kinds(events, "alert.paged")
    loop.signal("resolved")
    events = loop.run(60)
    assert kinds(events, "remediation.verified")
    assert not http_receiver.requests  # nobody was woken up
    with store.begin() as conn:
        (incident,) = list_incidents(conn)
    assert incident.status == "resolved" and incident.resolved_by == "runbook restart"
    assert incident.pages == 0
    assert incident.mttd == timedelta(seconds=30)


def test_a_runbook_that_does_not_help_escalates_to_a_page(
    store: Store, clock: VirtualClock, http_receiver: HTTPReceiver
) -> None:
    loop = setup(store, clock, http_receiver.url, RESTART)
    loop.signal("firing")
    events = loop.run(60)
    assert not kinds(events, "alert.paged")
    events = loop.run(150)  # verify is 2m
    assert kinds(events, "remediation.escalated")
    assert len(kinds(events, "alert.paged")) == 1


def test_the_guard_stops_a_runbook_that_keeps_fixing_the_same_symptom(
    store: Store, clock: VirtualClock, http_receiver: HTTPReceiver
) -> None:
    loop = setup(store, clock, http_receiver.url, RESTART)
    for _ in range(3):  # fires, the runbook "fixes" it, it comes back 16 minutes later ...
        loop.signal("firing")
        loop.run(30)
        loop.signal("resolved")
        loop.run(16 * 60 - 30, step=30)
    with store.begin() as conn:
        runs = list_runs(conn)
    assert [r.state for r in reversed(runs)] == ["succeeded", "succeeded", "blocked"]
    pages = [r for r in http_receiver.requests if r.body.get("event_action") == "trigger"]
    assert len(pages) == 1  # the blocked one went to a person


def test_an_alert_that_flaps_within_the_window_is_one_alert_one_incident_and_one_page(
    store: Store, clock: VirtualClock, http_receiver: HTTPReceiver
) -> None:
    loop = setup(store, clock, http_receiver.url)
    for _ in range(4):
        loop.signal("firing")
        loop.run(60)
        loop.signal("resolved")
        loop.run(60)
    with store.begin() as conn:
        incidents = list_incidents(conn)
    assert len(incidents) == 1
    pages = [r for r in http_receiver.requests if r.body.get("event_action") == "trigger"]
    assert len(pages) == 1
