"""The remediation controller: a runbook takes on each firing alert it matches, step by step.

A run is one runbook working on one episode of one alert:

    running --action--> verifying --alert resolved--> succeeded
                            | deadline passed
                            v
                       next step ... --no step left--> escalated (a person is paged)

A step whose action has nothing to act on is skipped at once. Before a run starts, the guards
are asked (runs per hour, cool-down): a refused run is `blocked` and the alert goes to people.
A step that needs approval waits in `awaiting_approval` until `modelfleet runbooks approve`;
pages are not held meanwhile, since a person must act. A dry run records what it would have
done and holds nothing. While a run is `running` or `verifying`, the alert controller holds
the alert's pages back: the fix comes first.

Every run and step is an event (`remediation.*`) and every action is in the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from modelfleet.config.matchers import matches_all, parse_matchers
from modelfleet.config.schema import Runbook
from modelfleet.errors import InvalidInput, NotFound
from modelfleet.registry.audit import record
from modelfleet.registry.declarations import declared
from modelfleet.registry.events import Event, record_event
from modelfleet.remediation.actions import ACTIONS, Context, Operations
from modelfleet.remediation.guards import PastRun, refusal
from modelfleet.store import Store
from modelfleet.store.tables import alerts, runbook_runs, tenant_throttles

SOURCE = "remediation"
ACTIVE = ("running", "verifying", "awaiting_approval")


@dataclass(frozen=True)
class Run:
    id: int
    runbook: str
    fingerprint: str
    labels: dict[str, str]
    state: str
    step: int
    deadline: datetime | None
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None
    outcomes: list[dict[str, Any]]


def _run(row: Any) -> Run:
    return Run(
        row.id,
        row.runbook,
        row.fingerprint,
        dict(row.labels),
        row.state,
        row.step,
        row.deadline,
        row.dry_run,
        row.started_at,
        row.finished_at,
        list(row.outcomes),
    )


def list_runs(conn: Connection, *, limit: int = 50) -> list[Run]:
    rows = conn.execute(select(runbook_runs).order_by(runbook_runs.c.id.desc()).limit(limit))
    return [_run(r) for r in rows]


class RemediationController:
    """Starts, steps and verifies runbook runs; see the module docstring."""

    def __init__(self, store: Store, operations: Operations) -> None:
        self.store = store
        self.operations = operations

    def tick(self, now: datetime) -> list[Event]:
        events: list[Event] = []
        with self.store.begin() as conn:
            runbooks = declared(conn, Runbook)
            by_name = {r.name: r for r in runbooks}
            firing = {
                r.fingerprint: r
                for r in conn.execute(select(alerts).where(alerts.c.state == "firing"))
            }
            active = {
                r.fingerprint: _run(r)
                for r in conn.execute(select(runbook_runs).where(runbook_runs.c.state.in_(ACTIVE)))
            }
            for run in active.values():
                runbook = by_name.get(run.runbook)
                if runbook is not None:
                    events += self._advance(conn, runbook, run, firing.get(run.fingerprint), now)
            for fp, alert in firing.items():
                if fp in active or alert.suppressed_by:
                    continue  # muted alerts are consequences: fixing their cause fixes them
                runbook = next(
                    (
                        r
                        for r in runbooks
                        if matches_all(parse_matchers(r.spec.match), alert.labels)
                    ),
                    None,
                )
                if runbook is not None and not self._tried(conn, fp, alert.starts_at):
                    events += self._start(conn, runbook, alert, now)
            _lift_throttles(conn, now)
            for event in events:
                record_event(conn, event)
        return events

    def _tried(self, conn: Connection, fingerprint: str, since: datetime) -> bool:
        """Whether a run already took on this episode of the alert (and ended)."""
        found = conn.execute(
            select(runbook_runs.c.id).where(
                runbook_runs.c.fingerprint == fingerprint, runbook_runs.c.started_at >= since
            )
        ).first()
        return found is not None

    def _start(self, conn: Connection, runbook: Runbook, alert: Any, now: datetime) -> list[Event]:
        past = [
            PastRun(r.started_at, r.finished_at)
            for r in conn.execute(
                select(runbook_runs).where(
                    runbook_runs.c.runbook == runbook.name,
                    runbook_runs.c.state.not_in(("blocked",)),
                )
            )
        ]
        reason = refusal(runbook.spec.guards, past, now)
        dry_run = runbook.spec.guards.dry_run
        inserted = conn.execute(
            insert(runbook_runs).values(
                runbook=runbook.name,
                fingerprint=alert.fingerprint,
                labels=dict(alert.labels),
                state="blocked" if reason else "running",
                step=0,
                deadline=None,
                dry_run=dry_run,
                started_at=now,
                finished_at=now if reason else None,
                outcomes=[],
            )
        ).inserted_primary_key
        assert inserted is not None
        run = _run(conn.execute(select(runbook_runs).where(runbook_runs.c.id == inserted[0])).one())
        if reason:
            return [_event(run, "blocked", f"{runbook.name} did not run: {reason}", now)]
        started = _event(
            run,
            "started",
            f"{runbook.name} takes on {alert.name}" + (" (dry run)" if dry_run else ""),
            now,
        )
        return [started, *self._step(conn, runbook, run, alert.starts_at, now)]

    def _advance(
        self, conn: Connection, runbook: Runbook, run: Run, alert: Any, now: datetime
    ) -> list[Event]:
        if run.state == "awaiting_approval":
            return []
        if run.state == "running":  # approved since the last tick
            started = alert.starts_at if alert is not None else run.started_at
            return self._step(conn, runbook, run, started, now, approved=True)
        if alert is None:  # verifying, and the alert resolved: the action worked
            step = runbook.spec.actions[run.step]
            _save(conn, run, state="succeeded", finished_at=now)
            return [
                _event(
                    run,
                    "verified",
                    f"{runbook.name}: {run.labels.get('alertname', 'the alert')} recovered after "
                    f"{step.action}",
                    now,
                )
            ]
        if run.deadline is not None and now >= run.deadline:
            failed = _event(
                run,
                "failed",
                f"{runbook.name}: still firing {runbook.spec.actions[run.step].verify} after "
                f"{runbook.spec.actions[run.step].action}",
                now,
            )
            moved = _save(conn, run, step=run.step + 1)
            return [failed, *self._step(conn, runbook, moved, alert.starts_at, now)]
        return []

    def _step(
        self,
        conn: Connection,
        runbook: Runbook,
        run: Run,
        alert_started_at: datetime,
        now: datetime,
        *,
        approved: bool = False,
    ) -> list[Event]:
        """Take the run's current step, skipping those with nothing to act on."""
        events: list[Event] = []
        while run.step < len(runbook.spec.actions):
            step = runbook.spec.actions[run.step]
            if step.approval and not approved and not run.dry_run:
                _save(conn, run, state="awaiting_approval")
                msg = (
                    f"{runbook.name}: {step.action} waits for approval (runbooks approve {run.id})"
                )
                return [*events, _event(run, "awaiting_approval", msg, now)]
            approved = False
            context = Context(
                conn=conn,
                now=now,
                labels=run.labels,
                step=step,
                actor=f"runbook:{runbook.name}",
                operations=self.operations,
                alert_started_at=alert_started_at,
            )
            if step.when and not _holds(conn, step.when, run.labels):
                outcome_text, done = (
                    f"{step.action} skipped: no alert {', '.join(step.when)}",
                    False,
                )
            elif run.dry_run:
                outcome_text, done = f"would {step.action} (dry run)", False
            else:
                outcome = ACTIONS[step.action](context)
                outcome_text, done = outcome.message, outcome.done
            outcomes = [
                *run.outcomes,
                {
                    "step": run.step,
                    "action": step.action,
                    "done": done,
                    "outcome": outcome_text,
                    "at": now.isoformat(),
                },
            ]
            events.append(
                _event(run, "action", f"{runbook.name}: {outcome_text}", now, step=step.action)
            )
            if done:
                _save(conn, run, state="verifying", deadline=now + step.verify, outcomes=outcomes)
                return events
            run = _save(conn, run, step=run.step + 1, outcomes=outcomes)
        state = "dry_run" if run.dry_run else "escalated"
        _save(conn, run, state=state, finished_at=now)
        message = (
            f"{runbook.name}: dry run done, nothing changed"
            if run.dry_run
            else f"{runbook.name}: every step tried and the alert still fires: a person is paged"
        )
        return [*events, _event(run, "escalated" if not run.dry_run else "dry_run", message, now)]


def _holds(conn: Connection, when: list[str], labels: dict[str, str]) -> bool:
    """Whether an alert matching `when` fires for the same tenant, model and region."""
    matchers = parse_matchers(when)
    shared = [k for k in ("tenant", "model", "region") if k in labels]
    for row in conn.execute(select(alerts.c.labels).where(alerts.c.state == "firing")):
        other = dict(row.labels)
        if matches_all(matchers, other) and all(other.get(k) == labels[k] for k in shared):
            return True
    return False


def _lift_throttles(conn: Connection, now: datetime) -> None:
    """End the throttles whose time is up; the audit entry makes the gateways reload quotas."""
    for row in conn.execute(select(tenant_throttles).where(tenant_throttles.c.until <= now)):
        conn.execute(tenant_throttles.delete().where(tenant_throttles.c.tenant == row.tenant))
        record(
            conn,
            at=now,
            actor="remediation",
            action="unthrottle",
            kind="Tenant",
            name=row.tenant,
            old={"factor": row.factor},
            new=None,
        )


def approve(conn: Connection, run_id: int, *, actor: str, now: datetime) -> Run:
    """Let a run's waiting step go ahead (it runs at the next tick)."""
    row = conn.execute(select(runbook_runs).where(runbook_runs.c.id == run_id)).one_or_none()
    if row is None:
        raise NotFound("runbook run", str(run_id))
    if row.state != "awaiting_approval":
        raise InvalidInput(f"run {run_id} is {row.state}, not awaiting approval")
    run = _save(conn, _run(row), state="running")
    record(
        conn,
        at=now,
        actor=actor,
        action="approve",
        kind="RunbookRun",
        name=str(run_id),
        old=None,
        new={"step": run.step},
    )
    return run


def _save(conn: Connection, run: Run, **values: Any) -> Run:
    conn.execute(update(runbook_runs).where(runbook_runs.c.id == run.id).values(**values))
    return _run(conn.execute(select(runbook_runs).where(runbook_runs.c.id == run.id)).one())


def _event(run: Run, what: str, message: str, now: datetime, *, step: str | None = None) -> Event:
    severity = "warning" if what in ("escalated", "blocked", "failed") else "info"
    return Event(
        at=now,
        source=SOURCE,
        kind=f"remediation.{what}",
        severity=severity,  # type: ignore[arg-type]
        subject=run.runbook,
        message=message,
        details={
            "run_id": run.id,
            "runbook": run.runbook,
            "fingerprint": run.fingerprint,
            "step": run.step,
            "action": step,
            "outcome": message,
            "dry_run": run.dry_run,
        },
        tenant=run.labels.get("tenant"),
    )
