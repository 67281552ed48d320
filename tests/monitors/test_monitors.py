"""Monitors end to end: drift injected into one tenant's real HTTP traffic is flagged for that
tenant alone; a stationary simulated week raises nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import numpy as np
import pytest

from modelfleet.cli import main
from modelfleet.monitors.controller import MonitorController
from modelfleet.registry.events import recent_events
from modelfleet.rollouts import RolloutController
from tests.rollouts.conftest import Fleet, fleet  # noqa: F401  (the fixture)


def brighter(rows: np.ndarray) -> np.ndarray:
    """A new camera that overexposes: every pixel brighter, clipped to the sensor's 16."""
    return np.clip(rows * 1.6 + 2.0, 0, 16).astype(np.float32)


def noisy(rows: np.ndarray) -> np.ndarray:
    """A dirty lens or a failing sensor: noise on every pixel."""
    noise = np.random.default_rng(5).normal(0, 3.0, rows.shape)
    return np.clip(rows + noise, 0, 16).astype(np.float32)


def rescaled(rows: np.ndarray) -> np.ndarray:
    """A new camera model whose driver reports pixels on a 0-255 scale instead of 0-16."""
    return (rows * 255.0 / 16.0).astype(np.float32)


@pytest.mark.parametrize("shift", [brighter, noisy, rescaled], ids=lambda f: f.__name__)
def test_drift_in_one_tenants_traffic_is_flagged_for_that_tenant_only(
    fleet: Fleet,  # noqa: F811
    shift: Callable[[np.ndarray], np.ndarray],
) -> None:
    fleet.loop.controllers = [RolloutController(fleet.store), MonitorController(fleet.store)]
    acme, bayside = fleet.drill.keys
    clean = fleet.drill.rows
    events = []
    for _ in range(3):
        fleet.drill.keys, fleet.drill.rows = [acme], shift(clean)
        fleet.drill.round(150, timedelta(0))
        fleet.drill.keys, fleet.drill.rows = [bayside], clean
        events += fleet.drill.round(150, timedelta(minutes=1)).events

    drift = [e for e in events if e.kind == "monitor.drift"]
    assert [e.tenant for e in drift] == ["acme-grocers"]
    assert drift[0].severity == "critical"
    features = drift[0].details["features"]
    assert features and features[0]["drifted"]
    assert max(features[0]["psi"] / 0.25, features[0]["ks"] / 0.2, features[0]["js"] / 0.2) >= 1
    assert features == sorted(features, key=lambda f: (f["drifted"], f["psi"]), reverse=True)
    assert drift[0].details["window"]["end"] > drift[0].details["window"]["start"]
    with fleet.store.begin() as conn:
        stored = [e for e in recent_events(conn) if e.kind.startswith("monitor.")]
    assert {e.tenant for e in stored} <= {"acme-grocers"}


def test_monitor_status_shows_each_tenant_and_only_the_one_asked_for(
    fleet: Fleet,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fleet.loop.controllers = [MonitorController(fleet.store)]
    acme, bayside = fleet.drill.keys
    clean = fleet.drill.rows
    for _ in range(2):
        fleet.drill.keys, fleet.drill.rows = [acme], brighter(clean)
        fleet.drill.round(150, timedelta(0))
        fleet.drill.keys, fleet.drill.rows = [bayside], clean
        fleet.drill.round(250, timedelta(minutes=1))
    monkeypatch.setenv("MODELFLEET_DATABASE_URL", str(fleet.store.url))
    monkeypatch.setenv("COLUMNS", "250")
    with pytest.raises(SystemExit) as done:
        main(["monitor", "status"])
    assert done.value.code in (0, None)
    table = capsys.readouterr().out
    assert "acme-grocers" in table and "bayside-market" in table and "alert" in table
    with pytest.raises(SystemExit):
        main(["monitor", "status", "--tenant", "bayside-market", "-o", "json"])
    found = json.loads(capsys.readouterr().out)
    assert [s["tenant"] for s in found] == ["bayside-market"]
    assert found[0]["verdicts"]["drift"]["status"] in ("ok", "warning")
