"""The dashboard's boards and the portal's data, read from a real store holding two tenants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, insert

from modelfleet.alerts.alert import Signal
from modelfleet.alerts.records import apply_signal
from modelfleet.alerts.silences import create_silence
from modelfleet.config import load_fleet
from modelfleet.errors import NotFound
from modelfleet.registry import apply_fleet
from modelfleet.stats import LatencySketch
from modelfleet.store import Store
from modelfleet.store.tables import (
    capacity_decisions,
    capacity_forecasts,
    incident_timeline,
    incidents,
    sla_credits,
)
from modelfleet.telemetry.rollup import Rollup, RollupKey
from modelfleet.telemetry.writer import write_rollups
from modelfleet.web.ui.boards import (
    alerts_board,
    capacity_board,
    incident_detail,
    incidents_board,
    sla_board,
    tenant_credits,
    tenant_incidents,
    tenant_usage,
)
from tests.capacity.test_usage import FLEET as CAPACITY_FLEET
from tests.capacity.test_usage import START, decide, every_minute, traffic, write_fleet

NOW = START + timedelta(hours=2)
FLEET = (
    CAPACITY_FLEET
    + """---
kind: SLA
metadata: {name: gold}
spec:
  tenants: [acme, bolt]
  monthly_fee: 1000
  slos: [{name: availability, type: availability, objective: 0.999}]
  credits: [{slo: availability, below: 0.999, credit: 0.1}]
---
kind: OnCallSchedule
metadata: {name: primary}
spec:
  time_zone: Europe/Berlin
  participants:
    - {name: Alice Example, email: alice@example.com}
    - {name: Bob Example, email: bob@example.com}
  rotation: {length: 7d, start: 2026-11-01, handoff: "09:00"}
"""
)
FLAP = timedelta(minutes=5)


def signal(name: str, severity: str, tenant: str, at: datetime, state: str = "firing") -> Signal:
    labels = {"alertname": name, "severity": severity, "tenant": tenant}
    return Signal(labels, state, at, "rules", {"summary": f"{name} for {tenant}"})  # type: ignore[arg-type]


def incident(conn: Connection, title: str, tenants: list[str], **times: datetime | None) -> int:
    labels = {"alertname": title.split(" ")[0]}
    row = conn.execute(
        insert(incidents)
        .values(
            group_key=title,
            title=title,
            severity="critical",
            status="resolved" if times.get("resolved_at") else "open",
            labels=labels,
            tenants=tenants,
            anomaly_at=times.get("anomaly_at"),
            detected_at=times["detected_at"],
            acknowledged_at=times.get("acknowledged_at"),
            resolved_at=times.get("resolved_at"),
            resolved_by="recovered" if times.get("resolved_at") else None,
            pages=1,
        )
        .returning(incidents.c.id)
    )
    return int(row.scalar_one())


def credit(conn: Connection, tenant: str, period: str, amount: float) -> None:
    conn.execute(
        insert(sla_credits).values(
            sla="gold",
            tenant=tenant,
            period=period,
            state="final",
            slis={},
            share=amount / 1000,
            amount=amount,
            currency="USD",
            reasons=[f"availability below 99.9% for {tenant}"],
            computed_at=START,
        )
    )


@pytest.fixture
def fleet(store: Store, tmp_path: Path) -> Store:
    """Two tenants on digits for two hours (acme's first minute had 10 errors), with alerts,
    silences, incidents, capacity decisions, a forecast and credits."""
    apply_fleet(store, load_fleet([write_fleet(tmp_path / "fleet", FLEET)]), actor="t", now=START)
    with store.begin() as conn:
        traffic(conn, {"acme": 60, "bolt": 30}, every_minute(START, 120), latency=0.01)
        errors = Rollup(RollupKey.at("acme", "digits", "v1", "eu-west", START))
        for _ in range(10):
            errors.record(500, 2.0)
        write_rollups(conn, [errors], now=START)
        decide(conn, START - timedelta(minutes=1), 2, 2, 1.0)
        conn.execute(
            insert(capacity_decisions).values(
                model="digits",
                version="v1",
                at=NOW - timedelta(minutes=30),
                replicas=3,
                previous=2,
                reason="observed 1.5 rps on 2 replicas needs 3",
                inputs={"observed_rps": 1.5, "forecast_upper_rps": 2.0, "per_replica_rps": 1.0},
            )
        )
        conn.execute(
            insert(capacity_forecasts).values(
                model="digits",
                fitted_at=NOW,
                start=NOW,
                mean=[5400.0, 5000.0],
                lower=[5000.0, 4500.0],
                upper=[6000.0, 5600.0],
                method="mstl",
                mase=0.8,
                per_replica_rps=1.0,
            )
        )
        apply_signal(conn, signal("SlowModel", "warning", "bolt", START), flap_window=FLAP)
        apply_signal(conn, signal("HighErrorRate", "critical", "acme", NOW), flap_window=FLAP)
        apply_signal(conn, signal("Gone", "critical", "acme", START), flap_window=FLAP)
        apply_signal(conn, signal("Gone", "critical", "acme", NOW, "resolved"), flap_window=FLAP)
        for starts, ends in ((NOW - timedelta(hours=1), NOW + timedelta(hours=1)), (START, NOW)):
            create_silence(
                conn,
                matchers=['tenant="bolt"'],
                starts_at=starts,
                ends_at=ends,
                created_by="ops",
                comment="maintenance",
            )
        own = incident(
            conn,
            "HighErrorRate (tenant=acme)",
            ["acme"],
            anomaly_at=START,
            detected_at=START + timedelta(minutes=2),
            acknowledged_at=START + timedelta(minutes=5),
            resolved_at=START + timedelta(minutes=20),
        )
        conn.execute(
            insert(incident_timeline),
            [
                {"incident": own, "at": START + timedelta(minutes=2), "kind": "alert.firing",
                 "message": "HighErrorRate fired", "details": {}},
                {"incident": own, "at": START + timedelta(minutes=20), "kind": "alert.resolved",
                 "message": "HighErrorRate resolved", "details": {}},
            ],
        )  # fmt: skip
        incident(conn, "SlowModel (model=digits)", ["acme", "bolt"], detected_at=NOW)
        incident(conn, "Latency (tenant=bolt)", ["bolt"], detected_at=START)
        credit(conn, "acme", "2026-10", 100.0)
        credit(conn, "bolt", "2026-10", 7.0)
    return store


def test_the_alerts_board_shows_firing_alerts_active_silences_and_who_is_on_call(
    fleet: Store,
) -> None:
    with fleet.begin() as conn:
        board = alerts_board(conn, NOW)
    assert [(a.name, a.severity) for a in board.firing] == [
        ("HighErrorRate", "critical"),
        ("SlowModel", "warning"),
    ]
    assert board.firing[1].labels["tenant"] == "bolt" and board.firing[1].since == START
    assert board.firing[0].summary == "HighErrorRate for acme"
    [silence] = board.silences
    assert silence.matchers == ('tenant="bolt"',) and silence.ends_at == NOW + timedelta(hours=1)
    [rota] = board.on_call
    assert (rota.schedule, rota.person, rota.email) == (
        "primary",
        "Alice Example",
        "alice@example.com",
    )
    assert rota.until == datetime(2026, 11, 8, 8, tzinfo=UTC) and not rota.override  # 09:00 CET


def test_the_incidents_board_gives_response_times_and_a_timeline(fleet: Store) -> None:
    with fleet.begin() as conn:
        board = incidents_board(conn, NOW)
        own = board.incidents[1]
        detail = incident_detail(conn, own.id, NOW)
        with pytest.raises(NotFound):
            incident_detail(conn, 999)
    assert [i.title for i in board.incidents] == [
        "SlowModel (model=digits)",
        "HighErrorRate (tenant=acme)",
        "Latency (tenant=bolt)",
    ]
    assert (own.mttd_s, own.mtta_s, own.mttr_s, own.open_s) == (120.0, 180.0, 1080.0, None)
    shared = board.incidents[0]
    assert shared.status == "open" and shared.open_s == 0.0 and shared.tenants == ("acme", "bolt")
    assert board.incidents[2].open_s == 7200.0
    assert board.summary["count"] == 3 and board.summary["open"] == 2
    assert detail.incident == own
    assert [(e.kind, e.message) for e in detail.timeline] == [
        ("alert.firing", "HighErrorRate fired"),
        ("alert.resolved", "HighErrorRate resolved"),
    ]


def test_the_sla_board_shows_each_tenants_slos_budget_and_credit(fleet: Store) -> None:
    with fleet.begin() as conn:
        rows = sla_board(conn, NOW)
    assert [(r.sla, r.tenant, r.period) for r in rows] == [
        ("gold", "acme", "2026-11"),
        ("gold", "bolt", "2026-11"),
    ]
    acme, bolt = rows
    [slo] = acme.slos
    assert (slo.name, slo.objective, slo.good, slo.total) == ("availability", 0.999, 7200, 7210)
    assert slo.sli == 7200 / 7210 and not slo.met and slo.budget_left < 0
    assert acme.credit == pytest.approx(100.0) and acme.currency == "USD" and acme.reasons
    assert bolt.slos[0].met and bolt.credit == 0.0 and bolt.slos[0].budget_left == 1.0


def test_the_capacity_board_shows_replicas_demand_forecast_and_cost(fleet: Store) -> None:
    with fleet.begin() as conn:
        [model] = capacity_board(conn, NOW)
    assert (model.model, model.instance_type, model.min_replicas) == ("digits", "small", 2)
    assert model.per_replica_rps == 1.0
    assert [(d.replicas, d.observed_rps) for d in model.decisions] == [(2, None), (3, 1.5)]
    assert model.decisions[1].forecast_upper_rps == 2.0 and model.replicas_now == 2
    assert model.forecast is not None
    assert (model.forecast.upper, model.forecast.mase) == ([6000.0, 5600.0], 0.8)
    # A week of 2 instances at 0.6 an hour, 3 for the last half hour; two hours had traffic.
    assert model.total_cost == pytest.approx(7 * 24 * 1.2 + 0.5 * 0.6)
    costs = {c.tenant: c for c in model.costs}
    assert (costs["acme"].requests, costs["bolt"].requests) == (7210, 3600)
    assert costs["acme"].cost > costs["bolt"].cost > 0 and model.idle_cost is not None
    assert sum(c.cost for c in model.costs) + model.idle_cost == pytest.approx(model.total_cost)


def test_the_portal_gives_a_tenant_its_incidents_and_nothing_of_another(fleet: Store) -> None:
    with fleet.begin() as conn:
        acme = tenant_incidents(conn, "acme", NOW)
        bolt = tenant_incidents(conn, "bolt", NOW)
    assert [i.title for i in acme] == ["SlowModel", "HighErrorRate (tenant=acme)"]
    assert [i.title for i in bolt] == ["SlowModel", "Latency (tenant=bolt)"]
    assert acme[1].mttr_s == 1080.0
    assert "bolt" not in repr(acme) and "acme" not in repr(bolt)


def test_the_portal_gives_a_tenant_its_usage_and_credits_only(fleet: Store) -> None:
    with fleet.begin() as conn:
        acme = tenant_usage(conn, "acme", START, NOW)
        bolt = tenant_usage(conn, "bolt", START, NOW)
        credits = {t: tenant_credits(conn, t) for t in ("acme", "bolt", "cove")}
    [day] = acme
    assert (day.day, day.requests, day.errors, day.rejected) == (START.date(), 7210, 10, 0)
    merged = LatencySketch()
    merged.add(0.01, 7200)
    merged.add(2.0, 10)
    assert day.p99_s == merged.quantile(0.99)
    assert [(d.requests, d.errors) for d in bolt] == [(3600, 0)]
    assert [(c.period, c.amount) for c in credits["acme"]] == [("2026-10", 100.0)]
    assert [(c.period, c.amount) for c in credits["bolt"]] == [("2026-10", 7.0)]
    assert credits["cove"] == [] and "bolt" not in repr(credits["acme"])
