"""Runbook actions write their decisions to the store, audited, where the data plane reads them."""

from __future__ import annotations

from datetime import datetime, timedelta

from modelfleet.clock import VirtualClock
from modelfleet.config.alerting import Guards, RunbookAction
from modelfleet.gateway.routing import load_route_table
from modelfleet.registry.audit import latest
from modelfleet.remediation.actions import ACTIONS, Context, Operations
from modelfleet.remediation.guards import PastRun, refusal
from modelfleet.store import Store
from modelfleet.store.tables import region_status

LABELS = {"alertname": "X", "tenant": "acme", "model": "m", "version": "v1", "region": "eu"}
OPS = Operations(rollback=lambda *a, **k: "rolled back", open_review=lambda *a, **k: 3)


def act(store: Store, now: datetime, **step: object) -> str:
    with store.begin() as conn:
        context = Context(
            conn=conn,
            now=now,
            labels=LABELS,
            step=RunbookAction.model_validate(step),
            actor="runbook:test",
            operations=OPS,
            alert_started_at=now,
        )
        outcome = ACTIONS[str(step["action"])](context)
    assert outcome.done, outcome.message
    return outcome.message


def test_scale_and_restart_reach_the_route_table_and_the_audit_log(
    store: Store, clock: VirtualClock
) -> None:
    now = clock.now()
    assert "from 1 to 3" in act(store, now, action="scale", add=2)
    act(store, now, action="restart")
    with store.begin() as conn:
        table = load_route_table(conn)
        entries = latest(conn, kind="ModelVersion", name="m/v1")
    assert table.replicas[("m", "v1")] == 3 and table.restarts[("m", "v1")] == 1
    assert [e.actor for e in entries] == ["runbook:test", "runbook:test"]


def test_scale_is_capped_at_max_replicas(store: Store, clock: VirtualClock) -> None:
    assert "to 4" in act(store, clock.now(), action="scale", replicas=9, max_replicas=4)


def test_failover_declares_the_alerts_region_down(store: Store, clock: VirtualClock) -> None:
    act(store, clock.now(), action="failover", to_region="us")
    with store.begin() as conn:
        row = conn.execute(region_status.select()).one()
    assert (row.region, row.status, row.failover_to) == ("eu", "down", "us")


def test_open_review_and_rollback_use_the_operations_handed_in(
    store: Store, clock: VirtualClock
) -> None:
    assert act(store, clock.now(), action="open_review") == "opened 3 review item(s) for acme m"
    assert act(store, clock.now(), action="rollback", deployment="d") == "rolled back"


def test_guards_refuse_past_the_hourly_limit_and_during_the_cool_down() -> None:
    now = datetime(2026, 11, 2, 12, 0)
    guards = Guards(max_runs_per_hour=2, cooldown=timedelta(minutes=10))
    runs = [PastRun(now - timedelta(minutes=50), now - timedelta(minutes=45))]
    assert refusal(guards, runs, now) is None
    runs.append(PastRun(now - timedelta(minutes=20), now - timedelta(minutes=15)))
    assert "the most its guard allows" in str(refusal(guards, runs, now))
    assert "cooling down" in str(refusal(guards, runs[:1], now - timedelta(minutes=40)))
