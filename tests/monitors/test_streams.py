"""The anomaly controller on a real store: streams, restarts, partial minutes, ended streams."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from modelfleet.config import load_fleet
from modelfleet.monitors.streams import ALL_VERSIONS, AnomalyController
from modelfleet.registry import apply_fleet
from modelfleet.registry.splits import set_serving_version
from modelfleet.sim.history import StreamLoad, synthetic_rollups
from modelfleet.store import Store
from modelfleet.store.tables import cursors, detector_states
from modelfleet.telemetry.rollup import Rollup, RollupKey
from modelfleet.telemetry.writer import write_rollups

START = datetime(2026, 11, 2, tzinfo=UTC)
MODEL = "product-recognizer"
CONFIDENCES = np.linspace(0.6, 1.0, 50)


@pytest.fixture
def fleet(store: Store, trained_example: Path) -> Store:
    apply_fleet(store, load_fleet([trained_example / "fleet.yaml"]), actor="t", now=START)
    load = StreamLoad("acme-grocers", MODEL, "v1", "eu-west", 48.0)
    with store.begin() as conn:
        write_rollups(
            conn, synthetic_rollups([load], START, 600, confidences=CONFIDENCES), now=START
        )
    return store


def states(store: Store) -> dict[str, dict[str, object]]:
    with store.begin() as conn:
        return {r.stream: r.state for r in conn.execute(select(detector_states))}


def failing_minute(store: Store, minute: datetime, requests: int, errors: int) -> None:
    rollup = Rollup(RollupKey("acme-grocers", MODEL, "v1", "eu-west", minute))
    for i in range(requests):
        rollup.record(500 if i < errors else 200, 0.02, [0.9])
    with store.begin() as conn:
        write_rollups(conn, [rollup], now=minute)


def test_a_restarted_controller_learns_on_exactly_as_one_that_never_stopped(
    fleet: Store,
) -> None:
    at = START + timedelta(minutes=300)
    AnomalyController(fleet).tick(at)
    AnomalyController(fleet).tick(at + timedelta(minutes=200))  # a new process, same store
    restarted = states(fleet)
    assert restarted  # every stream's detector was saved
    with fleet.begin() as conn:  # the same history, learned by one controller in one go
        conn.execute(detector_states.delete())
        conn.execute(cursors.delete())
    AnomalyController(fleet).tick(at + timedelta(minutes=200))
    assert states(fleet) == restarted


def test_demand_is_one_stream_over_all_versions_and_ratios_one_per_version(fleet: Store) -> None:
    AnomalyController(fleet).tick(START + timedelta(minutes=600))
    streams = set(states(fleet))
    assert f"request_rate|acme-grocers|{MODEL}|{ALL_VERSIONS}|eu-west" in streams
    assert f"error_rate|acme-grocers|{MODEL}|v1|eu-west" in streams
    assert not any(s.startswith("request_rate") and "|v1|" in s for s in streams)


def test_errors_in_a_minute_still_filling_fire_an_alert_with_its_first_anomalous_minute(
    fleet: Store,
) -> None:
    minute = START + timedelta(minutes=600)
    controller = AnomalyController(fleet)
    controller.tick(minute)
    failing_minute(fleet, minute, requests=20, errors=20)
    events = controller.tick(minute + timedelta(seconds=20))
    firing = [e for e in events if e.kind == "anomaly.firing"]
    assert [e.details["alert"]["labels"]["alertname"] for e in firing] == ["ErrorRateAnomaly"]
    assert firing[0].details["alert"]["anomaly_at"] == minute.isoformat()


def test_a_stream_that_ends_resolves_its_alert(fleet: Store) -> None:
    minute = START + timedelta(minutes=600)
    controller = AnomalyController(fleet)
    controller.tick(minute)
    failing_minute(fleet, minute, requests=20, errors=20)
    controller.tick(minute + timedelta(seconds=20))
    with fleet.begin() as conn:  # v2 serves from now on: v1's stream ends
        set_serving_version(conn, "product-recognizer", "v2", actor="t", now=minute)
    events = controller.tick(minute + timedelta(seconds=40))
    resolved = [e for e in events if e.kind == "anomaly.resolved"]
    assert [e.details["alert"]["labels"]["version"] for e in resolved] == ["v1"]
