"""A fault-free week: the detectors and the alert manager must stay silent through it.

The retail-vision fleet's tenants send traffic with a daily cycle (half as much at night, half
again in the afternoon), a quieter weekend and Poisson noise, with service times that wander
from minute to minute, for `warm` days and then `days` more. The detectors learn the warm-up
silently; every minute of the days after is then judged, one hour per tick (a replay), and
every alert raised is counted. There is no fault, so each one is a false alarm.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from modelfleet.alerts.controller import AlertController
from modelfleet.config import load_fleet
from modelfleet.gateway.routing import version_spec
from modelfleet.monitors.streams import AnomalyController
from modelfleet.registry import apply_fleet, load_state
from modelfleet.registry.events import Event
from modelfleet.runtime.loader import load_model
from modelfleet.sim.history import StreamLoad, synthetic_rollups
from modelfleet.sim.rollout import with_blank_frames
from modelfleet.store import open_store
from modelfleet.store.tables import detector_states
from modelfleet.telemetry.writer import write_rollups

MODEL = "product-recognizer"
HOMES = {"acme-grocers": "eu-west", "bayside-market": "us-east", "corner-deli": "us-east"}
START = datetime(2026, 10, 5, tzinfo=UTC)  # a Monday


@dataclass(frozen=True)
class QuietOutcome:
    """What a fault-free replay raised: every anomaly and alert is a false alarm."""

    days: int
    streams: int
    points: int
    anomalies: list[Event]
    alerts: list[Event]


def quiet_days(
    example: Path, *, warm: int = 7, days: int = 7, per_minute: float = 48.0, seed: int = 1
) -> QuietOutcome:
    """Replay `warm` + `days` fault-free days; see the module docstring."""
    with tempfile.TemporaryDirectory(prefix="modelfleet-quiet-") as directory:
        store = open_store(f"sqlite:///{Path(directory) / 'fleet.db'}")
        try:
            apply_fleet(store, load_fleet([example / "fleet.yaml"]), actor="sim", now=START)
            with store.begin() as conn:
                spec = version_spec(load_state(conn), MODEL, "v1")
            assert spec is not None
            model = load_model(spec.format, spec.artifact, spec.sha256, spec.features, spec.labels)
            with np.load(example / "artifacts" / "reference.npz") as data:
                rows = np.asarray(data["pixels"], dtype=np.float32)
            confidences = model.predict({"pixels": with_blank_frames(rows, 0.1)}).confidences
            assert confidences is not None
            loads = [
                StreamLoad(t, MODEL, "v1", region, per_minute, daily_swing=0.5, weekend=0.6)
                for t, region in HOMES.items()
            ]
            total = warm + days
            rollups = synthetic_rollups(
                loads, START, total * 1440, confidences=confidences, seed=seed
            )
            with store.begin() as conn:
                write_rollups(conn, rollups, now=START)
            end_of_warm_up = START + timedelta(days=warm)
            AnomalyController(store, backfill=timedelta(days=total)).tick(end_of_warm_up)
            detectors = AnomalyController(store, silent_catch_up=None)
            alerts = AlertController(store)
            anomalies: list[Event] = []
            raised: list[Event] = []
            now = end_of_warm_up
            while now < START + timedelta(days=total):
                now += timedelta(hours=1)
                anomalies += [e for e in detectors.tick(now) if e.kind == "anomaly.firing"]
                raised += [e for e in alerts.tick(now) if e.kind == "alert.firing"]
            with store.begin() as conn:
                streams = conn.execute(
                    select(func.count()).where(detector_states.c.metric != "drift_score")
                ).scalar_one()  # no drift monitor runs in a replay: the drift score has no points
            return QuietOutcome(days, streams, streams * days * 1440, anomalies, raised)
        finally:
            store.close()
