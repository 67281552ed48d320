"""The capacity controller on a real store: measured capacity, a forecast, recorded decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import select

from modelfleet.capacity.controller import CapacityController
from modelfleet.config import load_fleet, load_fleet_text
from modelfleet.registry import apply_fleet
from modelfleet.sim.faults import LatencyModel
from modelfleet.sim.history import StreamLoad, model_latencies, synthetic_rollups
from modelfleet.store import Store
from modelfleet.store.tables import capacity_decisions, capacity_forecasts, replica_targets
from modelfleet.telemetry.writer import write_rollups

START = datetime(2026, 11, 2, tzinfo=UTC)
POLICY = """
kind: InstanceType
metadata: {name: small}
spec: {cpus: 2, memory_gib: 4, on_demand_hourly: 0.1, reserved_hourly: 0.06}
---
kind: CapacityPolicy
metadata: {name: recognizer}
spec:
  model: product-recognizer
  instance_type: small
  min_replicas: 1
  max_replicas: 8
"""


def test_it_measures_capacity_forecasts_and_scales_within_bounds(
    store: Store, trained_example: Path
) -> None:
    apply_fleet(store, load_fleet([trained_example / "fleet.yaml"]), actor="t", now=START)
    apply_fleet(store, load_fleet_text(POLICY), actor="t", now=START)
    load = StreamLoad("acme-grocers", "product-recognizer", "v1", "eu-west", 600.0, daily_swing=0.5)
    with store.begin() as conn:
        write_rollups(
            conn,
            synthetic_rollups(
                [load],
                START,
                3 * 1440,
                confidences=np.array([0.9]),
                latencies=model_latencies(LatencyModel(median_s=0.02)),
            ),
            now=START,
        )
    now = START + timedelta(days=3)
    controller = CapacityController(store)
    events = controller.tick(now)
    with store.begin() as conn:
        forecast = conn.execute(select(capacity_forecasts)).one()
        decisions = conn.execute(select(capacity_decisions)).all()
        target = conn.execute(select(replica_targets.c.replicas)).scalar()
    assert forecast.per_replica_rps is not None and forecast.per_replica_rps > 0
    assert len(forecast.upper) == 168 and min(forecast.lower) >= 0
    assert len(decisions) == 1 and 1 <= decisions[0].replicas <= 8
    assert decisions[0].inputs["per_replica_rps"] == forecast.per_replica_rps
    if decisions[0].replicas != decisions[0].previous:
        assert target == decisions[0].replicas and events
    assert controller.tick(now) == []  # once a minute
