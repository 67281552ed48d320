"""The SLA controller on a real store: burn-rate pages and tickets, budget warnings, credits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from modelfleet.alerts.controller import AlertController
from modelfleet.config import load_fleet_text
from modelfleet.registry import apply_fleet
from modelfleet.registry.events import Event
from modelfleet.sla.controller import SLAController
from modelfleet.store import Store
from modelfleet.store.tables import sla_credits
from modelfleet.telemetry.rollup import Rollup, RollupKey
from modelfleet.telemetry.writer import write_rollups
from tests.alerts.conftest import SMTPReceiver, smtp_receiver  # noqa: F401  (the fixture)

START = datetime(2026, 11, 2, tzinfo=UTC)
FLEET = """
kind: Tenant
metadata: {name: acme}
spec: {display_name: Acme, tier: enterprise, home_region: eu, contact_email: ops@acme.example}
---
kind: SLA
metadata: {name: gold}
spec:
  tenants: [acme]
  time_zone: Europe/Berlin
  monthly_fee: 10000
  currency: EUR
  slos:
    - {name: availability, type: availability, objective: 0.999}
  credits:
    - {slo: availability, below: 0.999, credit: 0.1}
    - {slo: availability, below: 0.99, credit: 0.25}
"""


def traffic(store: Store, start: datetime, minutes: int, per_minute: int, errors: int) -> None:
    rollups = []
    for m in range(minutes):
        rollup = Rollup(RollupKey("acme", "m", "v1", "eu", start + timedelta(minutes=m)))
        for i in range(per_minute):
            rollup.record(500 if i < errors else 200, 0.02)
        rollups.append(rollup)
    with store.begin() as conn:
        write_rollups(conn, rollups, now=start)


def run(controller: SLAController, start: datetime, minutes: int) -> list[Event]:
    out: list[Event] = []
    for m in range(1, minutes + 1):
        out += controller.tick(start + timedelta(minutes=m))
    return out


def burn_alerts(events: list[Event]) -> list[tuple[str, str]]:
    return [
        (e.details["alert"]["labels"]["window"], e.details["alert"]["state"])
        for e in events
        if e.kind == "sla.burn"
    ]


def setup(store: Store) -> SLAController:
    apply_fleet(store, load_fleet_text(FLEET), actor="t", now=START)
    return SLAController(store)


def test_a_fast_burn_pages_within_five_minutes(store: Store) -> None:
    controller = setup(store)
    traffic(store, START, 60, per_minute=1000, errors=0)
    run(controller, START, 60)
    fault = START + timedelta(minutes=60)
    # 17.3 % of requests fail for 5 minutes: over the last hour that is a burn of 14.4, 2 % of
    # a 30-day budget spent (the workbook's page).
    traffic(store, fault, 5, per_minute=1000, errors=173)
    events = run(controller, fault, 5)
    assert ("1h/5m", "firing") in burn_alerts(events)
    paging = [e for e in events if e.kind == "sla.burn" and e.severity == "critical"]
    assert paging and paging[0].at <= fault + timedelta(minutes=5)


def test_a_burn_under_one_fires_nothing_and_a_slow_burn_only_a_ticket(store: Store) -> None:
    controller = setup(store)
    # Three days at 0.9x the allowed rate: nothing fires.
    traffic(store, START, 3 * 1440, per_minute=100, errors=0)
    events = run(controller, START, 10)
    assert burn_alerts(events) == []
    slow_start = START + timedelta(days=3)
    # A slow burn at 2x over the next 3 days: errors 0.2 % of requests (budget 0.1 %).
    traffic(store, slow_start, 3 * 1440, per_minute=1000, errors=2)
    controller_late = SLAController(store)
    events = controller_late.tick(slow_start + timedelta(days=3))
    fired = burn_alerts(events)
    assert ("3d/6h", "firing") in fired
    assert all(window == "3d/6h" for window, _ in fired)  # a ticket, never a page


def test_the_period_credit_is_provisional_then_final(store: Store) -> None:
    controller = setup(store)
    november = datetime(2026, 10, 31, 23, tzinfo=UTC)  # 00:00 Berlin, Nov 1
    # 1000 requests a minute for an hour, 2 % failing: availability 0.98, under 0.99.
    traffic(store, november, 60, per_minute=1000, errors=20)
    controller.tick(november + timedelta(minutes=61))
    with store.begin() as conn:
        (row,) = conn.execute(select(sla_credits)).all()
    assert (row.period, row.state, row.share, row.amount) == ("2026-11", "provisional", 0.25, 2500)
    events = SLAController(store).tick(datetime(2026, 12, 1, 0, 1, tzinfo=UTC))
    with store.begin() as conn:
        final = conn.execute(select(sla_credits).where(sla_credits.c.period == "2026-11")).one()
    assert final.state == "final" and final.amount == 2500
    owed = [e for e in events if e.kind == "sla.credit"]
    assert owed and "2500.00 EUR" in owed[0].message


def test_at_period_close_the_customer_is_mailed_what_it_is_owed(
    store: Store,
    smtp_receiver: SMTPReceiver,  # noqa: F811 (the fixture)
) -> None:
    notices = f"""
---
kind: Receiver
metadata: {{name: customer-notices}}
spec:
  email: [{{from: billing@fleet.example, smarthost: "{smtp_receiver.smarthost}", to_customer: true}}]
---
kind: AlertRouting
metadata: {{name: default}}
spec:
  receiver: customer-notices
  group_wait: 0s
"""
    apply_fleet(store, load_fleet_text(FLEET + notices), actor="t", now=START)
    november = datetime(2026, 10, 31, 23, tzinfo=UTC)
    traffic(store, november, 60, per_minute=1000, errors=20)
    SLAController(store).tick(november + timedelta(minutes=61))
    close = datetime(2026, 12, 1, 0, 1, tzinfo=UTC)
    SLAController(store).tick(close)
    alerts = AlertController(store)
    alerts.tick(close)
    alerts.tick(close + timedelta(seconds=10))
    (mail,) = smtp_receiver.mails
    assert mail.rcpt_tos == ["ops@acme.example"]
    assert "SLACreditOwed" in mail.message["Subject"]
    assert "2500.00 EUR" in mail.message.get_body(("plain",)).get_content()
