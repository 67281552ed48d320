"""The alert controller: signals in, notifications and pages out, once per control tick.

Each tick:

1. **Ingest.** Read the events appended since the last tick (rollbacks, monitor verdicts,
   anomaly detectors' alerts) and evaluate the threshold rules; each signal fires, refreshes
   or resolves an alert by fingerprint (alerts/records.py). Alerts that no source refreshed
   before their expiry resolve.
2. **Suppress.** A firing alert that an active silence matches, or that a firing alert inhibits
   (inhibition rules), is kept but muted.
3. **Route and group.** Every unmuted firing alert walks the routing tree; each receiver it
   reaches groups it by that route's `group_by` (alerts/groups.py has the timing).
4. **Hold for remediation.** While a runbook works on one of a group's alerts, the group waits:
   the fix comes first, and a person is paged only if the runbook escalates. This is what lets
   most incidents end without anyone woken up.
5. **Notify and escalate.** Due groups are notified through the outbox (alerts/outbox.py); a
   receiver with an escalation policy pages the on-call person of its first level, and the next
   level when nobody acknowledged in time.
6. **Deliver** what is due in the outbox, outside the transaction.

Everything it decides is written in one transaction with the event cursor, so a crash repeats
nothing and skips nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from modelfleet.alerts.alert import Alert, Signal
from modelfleet.alerts.groups import (
    Group,
    Timing,
    create_group,
    decide,
    latest_with_key,
    open_groups,
    save,
)
from modelfleet.alerts.inhibition import inhibitors
from modelfleet.alerts.notification import Notification, OnCallPerson
from modelfleet.alerts.oncall import next_escalation, people_at
from modelfleet.alerts.outbox import cancel_pending, deliver_due, enqueue
from modelfleet.alerts.records import (
    Change,
    alerts_by_fingerprint,
    apply_signal,
    expire_alerts,
    firing_alerts,
    set_suppression,
)
from modelfleet.alerts.routing import group_key, route
from modelfleet.alerts.rules import evaluate_rules
from modelfleet.alerts.silences import list_silences, silencing
from modelfleet.alerts.sources import signal_of
from modelfleet.config.alerting import AlertRoutingSpec, EscalationPolicySpec, OnCallScheduleSpec
from modelfleet.config.schema import (
    AlertRouting,
    AlertRule,
    EscalationPolicy,
    OnCallSchedule,
    Receiver,
)
from modelfleet.registry.cursors import move_cursor, read_cursor
from modelfleet.registry.declarations import declared
from modelfleet.registry.events import Event, events_after, record_event
from modelfleet.store import Store
from modelfleet.store.tables import runbook_runs

SOURCE = "alerts"
CURSOR = "alerts"
_SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
# Runbook runs in these states hold their alerts' pages back.
ACTIVE_RUNS = ("running", "verifying")


@dataclass(frozen=True)
class AlertingConfig:
    """The declared kinds the alert controller works from, read once per tick."""

    routing: AlertRoutingSpec | None
    receivers: dict[str, Receiver] = field(default_factory=dict)
    policies: dict[str, EscalationPolicySpec] = field(default_factory=dict)
    schedules: dict[str, OnCallScheduleSpec] = field(default_factory=dict)
    rules: list[AlertRule] = field(default_factory=list)

    @property
    def flap_window(self) -> timedelta:
        return self.routing.flap_window if self.routing else timedelta(minutes=15)

    @property
    def resolve_timeout(self) -> timedelta:
        return self.routing.resolve_timeout if self.routing else timedelta(minutes=5)


def load_config(conn: Connection) -> AlertingConfig:
    routings = declared(conn, AlertRouting)
    return AlertingConfig(
        routing=routings[0].spec if routings else None,
        receivers={r.name: r for r in declared(conn, Receiver)},
        policies={p.name: p.spec for p in declared(conn, EscalationPolicy)},
        schedules={s.name: s.spec for s in declared(conn, OnCallSchedule)},
        rules=declared(conn, AlertRule),
    )


class AlertController:
    """Ingests signals, groups, notifies, pages and escalates; see the module docstring.

    `secrets` maps the names of environment variables a receiver refers to (an SMTP password)
    to their values; the settings module reads them, nothing here does.
    """

    def __init__(
        self,
        store: Store,
        *,
        secrets: Mapping[str, str] | None = None,
        external_url: str = "http://localhost:8080",
    ) -> None:
        self.store = store
        self.secrets = dict(secrets or {})
        self.external_url = external_url

    def tick(self, now: datetime) -> list[Event]:
        events: list[Event] = []
        with self.store.begin() as conn:
            config = load_config(conn)
            changes, resolved_by = self._ingest(conn, config, now)
            events += self._route(conn, config, changes, resolved_by, now)
        events += deliver_due(self.store, now, secrets=self.secrets)
        return events

    # -- 1. ingest -------------------------------------------------------------------------

    def _ingest(
        self, conn: Connection, config: AlertingConfig, now: datetime
    ) -> tuple[list[Change], dict[str, str]]:
        position = read_cursor(conn, CURSOR)
        signals: list[Signal] = []
        for event_id, event in events_after(conn, position):
            position = event_id
            if event.source == SOURCE:
                continue
            signal = signal_of(event, resolve_timeout=config.resolve_timeout)
            if signal is not None:
                signals.append(signal)
        move_cursor(conn, CURSOR, position, now=now)
        signals += evaluate_rules(conn, config.rules, now)
        changes: list[Change] = []
        resolved_by: dict[str, str] = {}
        for signal in signals:
            change = apply_signal(conn, signal, flap_window=config.flap_window)
            if change is not None:
                changes.append(change)
                resolved_by[change.alert.fingerprint] = "source"
        for alert in expire_alerts(conn, now):
            changes.append(Change(alert, "resolved"))
            resolved_by[alert.fingerprint] = "timeout"
        return changes, resolved_by

    # -- 2-5. suppress, route, group, notify ------------------------------------------------

    def _route(
        self,
        conn: Connection,
        config: AlertingConfig,
        changes: list[Change],
        resolved_by: dict[str, str],
        now: datetime,
    ) -> list[Event]:
        firing = firing_alerts(conn)
        unmuted = self._suppress(conn, config, firing, now)
        group_ids: dict[str, list[int]] = {}
        events: list[Event] = []
        if config.routing is not None:
            events += self._group(conn, config, unmuted, group_ids, now)
        # Alerts first: whoever reads the events meets an alert before the group it is in.
        events = [_alert_event(c, group_ids, resolved_by, now) for c in changes] + events
        for event in events:
            record_event(conn, event)
        return events

    def _suppress(
        self, conn: Connection, config: AlertingConfig, firing: list[Alert], now: datetime
    ) -> list[Alert]:
        silences = list_silences(conn, at=now)
        rules = config.routing.inhibit_rules if config.routing else []
        unmuted = []
        for alert in firing:
            muted = [f"silence:{i}" for i in silencing(silences, alert.labels, now)]
            muted += [f"inhibited:{fp}" for fp in inhibitors(alert, firing, rules)]
            if muted != alert.suppressed_by:
                set_suppression(conn, alert.fingerprint, muted)
            if not muted:
                unmuted.append(alert)
        return unmuted

    def _group(
        self,
        conn: Connection,
        config: AlertingConfig,
        unmuted: list[Alert],
        group_ids: dict[str, list[int]],
        now: datetime,
    ) -> list[Event]:
        assert config.routing is not None
        events: list[Event] = []
        members: dict[str, list[Alert]] = {}
        shape: dict[str, tuple[str, dict[str, str], Timing]] = {}
        for alert in unmuted:
            for match in route(config.routing, alert.labels):
                key, labels = group_key(match, alert.labels)
                members.setdefault(key, []).append(alert)
                timing = Timing(match.group_wait, match.group_interval, match.repeat_interval)
                shape[key] = (match.receiver, labels, timing)
        groups = {g.key: g for g in open_groups(conn)}
        for key, alerts in members.items():
            group = groups.get(key)
            if group is None:
                group, event = self._open(conn, config, key, shape[key], alerts, now)
                groups[key] = group
                events.append(event)
            for alert in alerts:
                group_ids.setdefault(alert.fingerprint, []).append(group.id)
                if alert.fingerprint not in group.members:
                    group.members.append(alert.fingerprint)
                    save(conn, group)
        held = _held(conn)
        for group in groups.values():
            current = {a.fingerprint: a for a in members.get(group.key, [])}
            events += self._flush(conn, config, group, current, held, now)
        return events

    def _open(
        self,
        conn: Connection,
        config: AlertingConfig,
        key: str,
        shape: tuple[str, dict[str, str], Timing],
        alerts: list[Alert],
        now: datetime,
    ) -> tuple[Group, Event]:
        receiver, labels, timing = shape
        last = latest_with_key(conn, key)
        if (
            last is not None
            and last.closed_at is not None
            and now - last.closed_at <= config.flap_window
        ):
            # Flap damping: the same group (and incident) again; whoever was paged stays paged.
            last.state, last.closed_at, last.next_flush_at = "open", None, now
            save(conn, last)
            cancel_pending(conn, last.id, "resolved")  # it never stopped, as far as anyone hears
            event = self._group_event(
                "alert.group_reopened", last, alerts, now, f"{_title(last.labels)} fires again"
            )
            return last, event
        group = create_group(
            conn, key=key, receiver=receiver, labels=labels, timing=timing, now=now
        )
        event = self._group_event(
            "alert.group_opened", group, alerts, now, f"{_title(labels)} opened for {receiver}"
        )
        return group, event

    def _group_event(
        self, kind: str, group: Group, alerts: list[Alert], now: datetime, message: str
    ) -> Event:
        severity = max((a.severity for a in alerts), key=lambda s: _SEVERITY_RANK.get(s, 1))
        tenants = sorted({a.labels["tenant"] for a in alerts if "tenant" in a.labels})
        event = Event(
            at=now,
            source=SOURCE,
            kind=kind,
            severity=severity if severity in _SEVERITY_RANK else "warning",  # type: ignore[arg-type]
            subject=group.receiver,
            message=message,
            details={
                "group_id": group.id,
                "group_key": group.key,
                "receiver": group.receiver,
                "group_labels": group.labels,
                "severity": severity,
                "fingerprints": sorted(a.fingerprint for a in alerts),
                "tenants": tenants,
                "title": _title(group.labels),
            },
            tenant=tenants[0] if len(tenants) == 1 else None,
        )
        return event

    def _flush(
        self,
        conn: Connection,
        config: AlertingConfig,
        group: Group,
        current: dict[str, Alert],
        held: set[str],
        now: datetime,
    ) -> list[Event]:
        events: list[Event] = []
        receiver = config.receivers.get(group.receiver)
        if held & (set(current) | set(group.members)):
            # A runbook is on it: no notification until it succeeds or gives up, and the group
            # stays open until the runbook has seen its alert recover.
            return events
        decision = decide(group, set(current), now)
        if decision == "wait":
            events += self._escalate(conn, config, group, receiver, current, now)
            if events:
                save(conn, group)
            return events
        gone = alerts_by_fingerprint(conn, set(group.notified_firing) - set(current))
        alerts = [*current.values(), *gone.values()]
        if decision in ("resolve", "close_silently"):
            if decision == "resolve" and receiver is not None and receiver.spec.send_resolved:
                # Said once the flap window has passed: an alert that comes back within it
                # is the same alert, and nobody should have heard it had ended.
                note = self._notification(group, receiver, "resolved", alerts)
                later = now + config.flap_window
                enqueue(conn, group.id, receiver.spec, note, now, not_before=later)
            ended = [a.ends_at for a in gone.values() if a.ends_at is not None]
            group.state = "closed"
            group.closed_at = max(ended, default=now)
            save(conn, group)
            event = Event(
                at=now,
                source=SOURCE,
                kind="alert.group_resolved",
                severity="info",
                subject=group.receiver,
                message=f"{_title(group.labels)} resolved",
                details={
                    "group_id": group.id,
                    "group_key": group.key,
                    "at": group.closed_at.isoformat(),
                },
            )
            return [event]
        if receiver is not None:
            first_page = receiver.spec.escalation is not None and group.paged_at is None
            if first_page and not group.acknowledged:
                events += self._page(conn, config, group, receiver, alerts, 0, now)
            else:
                self._notify(conn, group, receiver, "firing", alerts, now)
        group.notified_firing = sorted(current)
        group.last_notified_at = now
        group.next_flush_at = now + group.timing.group_interval
        save(conn, group)
        return events

    def _escalate(
        self,
        conn: Connection,
        config: AlertingConfig,
        group: Group,
        receiver: Receiver | None,
        current: dict[str, Alert],
        now: datetime,
    ) -> list[Event]:
        """Page the next level of a paged group that nobody acknowledged in time."""
        if (
            receiver is None
            or receiver.spec.escalation is None
            or group.paged_at is None
            or group.acknowledged
            or not current
        ):
            return []
        policy = config.policies.get(receiver.spec.escalation)
        if policy is None:
            return []
        level = next_escalation(
            policy, level=group.escalation_level, paged_at=group.paged_at, now=now
        )
        if level is None:
            return []
        return self._page(conn, config, group, receiver, list(current.values()), level, now)

    def _page(
        self,
        conn: Connection,
        config: AlertingConfig,
        group: Group,
        receiver: Receiver,
        alerts: list[Alert],
        level: int,
        now: datetime,
    ) -> list[Event]:
        assert receiver.spec.escalation is not None
        policy = config.policies.get(receiver.spec.escalation)
        if policy is None:  # apply checks references; a policy deleted since is said, not paged
            self._notify(conn, group, receiver, "firing", alerts, now)
            return []
        people = people_at(policy, level, now, config.schedules)
        for person in people:
            notification = self._notification(group, receiver, "firing", alerts)
            notification = _as_page(
                notification, OnCallPerson(person.name, str(person.email)), level
            )
            enqueue(conn, group.id, receiver.spec, notification, now)
        group.paged_at = now
        group.escalation_level = level
        names = [p.name for p in people]
        kind = "alert.paged" if level == 0 else "alert.escalated"
        event = Event(
            at=now,
            source=SOURCE,
            kind=kind,
            severity="warning",
            subject=group.receiver,
            message=f"{_title(group.labels)}: paging {', '.join(names)} (level {level})",
            details={"group_id": group.id, "level": level, "people": names},
        )
        return [event]

    def _notification(
        self, group: Group, receiver: Receiver, kind: str, alerts: list[Alert]
    ) -> Notification:
        return Notification(
            receiver=receiver.name,
            kind=kind,  # type: ignore[arg-type]
            group_key=group.key,
            group_labels=group.labels,
            alerts=alerts,
            external_url=self.external_url,
        )

    def _notify(
        self,
        conn: Connection,
        group: Group,
        receiver: Receiver,
        kind: str,
        alerts: list[Alert],
        now: datetime,
    ) -> None:
        enqueue(
            conn, group.id, receiver.spec, self._notification(group, receiver, kind, alerts), now
        )


def _as_page(notification: Notification, person: OnCallPerson, level: int) -> Notification:
    return replace(notification, page=True, person=person, level=level)


def _held(conn: Connection) -> set[str]:
    """Fingerprints a runbook is working on now."""
    rows = conn.execute(
        select(runbook_runs.c.fingerprint).where(runbook_runs.c.state.in_(ACTIVE_RUNS))
    )
    return set(rows.scalars())


def _title(labels: Mapping[str, str]) -> str:
    name = labels.get("alertname", "alerts")
    rest = " ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "alertname")
    return f"{name} {rest}".strip()


def _alert_event(
    change: Change, group_ids: dict[str, list[int]], resolved_by: dict[str, str], now: datetime
) -> Event:
    alert = change.alert
    firing = change.what in ("fired", "refired")
    details: dict[str, Any] = {
        "fingerprint": alert.fingerprint,
        "labels": alert.labels,
        "annotations": alert.annotations,
        "group_ids": group_ids.get(alert.fingerprint, []),
    }
    if firing:
        details |= {
            "starts_at": alert.starts_at.isoformat(),
            "anomaly_at": alert.anomaly_at.isoformat() if alert.anomaly_at else None,
            "flap": change.what == "refired",
        }
    else:
        details |= {
            "ends_at": (alert.ends_at or now).isoformat(),
            "by": resolved_by.get(alert.fingerprint, "source"),
        }
    severity = alert.severity if firing and alert.severity in _SEVERITY_RANK else "info"
    summary = alert.annotations.get("summary", "")
    return Event(
        at=now,
        source=SOURCE,
        kind="alert.firing" if firing else "alert.resolved",
        severity=severity,  # type: ignore[arg-type]
        subject=alert.name,
        message=f"{alert.name} fires: {summary}"
        if firing and summary
        else f"{alert.name} {'fires' if firing else 'resolved'}",
        details=details,
        tenant=alert.labels.get("tenant"),
    )
