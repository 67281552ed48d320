"""Monitors end to end: drift injected into one tenant's real HTTP traffic is flagged for that
tenant alone; a stationary simulated week raises nothing."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from modelfleet.monitors.controller import MonitorController
from modelfleet.registry.events import recent_events
from modelfleet.rollouts import RolloutController
from tests.rollouts.conftest import Fleet, fleet  # noqa: F401  (the fixture)


def brighter(rows: np.ndarray) -> np.ndarray:
    """A new camera that overexposes: every pixel brighter, clipped to the sensor's 16."""
    return np.clip(rows * 1.6 + 2.0, 0, 16).astype(np.float32)


def test_drift_in_one_tenants_traffic_is_flagged_for_that_tenant_only(fleet: Fleet) -> None:  # noqa: F811
    fleet.loop.controllers = [RolloutController(fleet.store), MonitorController(fleet.store)]
    acme, bayside = fleet.drill.keys
    clean = fleet.drill.rows
    events = []
    for _ in range(3):
        fleet.drill.keys, fleet.drill.rows = [acme], brighter(clean)
        fleet.drill.round(150, timedelta(0))
        fleet.drill.keys, fleet.drill.rows = [bayside], clean
        events += fleet.drill.round(150, timedelta(minutes=1)).events

    drift = [e for e in events if e.kind == "monitor.drift"]
    assert [e.tenant for e in drift] == ["acme-grocers"]
    assert drift[0].severity == "critical"
    features = drift[0].details["features"]
    assert features and features[0]["drifted"] and features[0]["psi"] >= 0.25
    assert features == sorted(features, key=lambda f: (f["drifted"], f["psi"]), reverse=True)
    assert drift[0].details["window"]["end"] > drift[0].details["window"]["start"]
    with fleet.store.begin() as conn:
        stored = [e for e in recent_events(conn) if e.kind.startswith("monitor.")]
    assert {e.tenant for e in stored} <= {"acme-grocers"}
