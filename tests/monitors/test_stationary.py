"""A stationary simulated week: hourly windows drawn from the reference raise no drift event.
(Drift injected into one tenant's traffic is flagged for it alone: test_monitors.py.)"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from modelfleet.clock import VirtualClock
from modelfleet.config import load_fleet
from modelfleet.config.schema import Model
from modelfleet.monitors import MonitorController, latest_results
from modelfleet.registry import apply_fleet
from modelfleet.registry.events import recent_events
from modelfleet.runtime import load_model
from modelfleet.store import Store, open_store
from modelfleet.telemetry.edges import feature_columns, reference_edges
from modelfleet.telemetry.rollup import RollupBuffer
from modelfleet.telemetry.writer import write_rollups

TENANTS = ("acme-grocers", "bayside-market", "corner-deli", "dune-foods")
MODEL = "product-recognizer"


def simulate_week(
    store: Store, example: Path, clock: VirtualClock, *, shift: str | None = None
) -> None:
    """168 hours of traffic drawn from the reference, 1,000 rows per tenant and hour (written
    as the gateway writes rollups), with the monitor controller ticking at each hour's end."""
    fleet = load_fleet([example / "fleet.yaml"])
    model = next(m for m in fleet.models if isinstance(m, Model))
    features = model.spec.input.features
    reference = str(example / "artifacts" / "reference.npz")
    edges = reference_edges(reference, features)
    v1 = next(v for v in fleet.versions if v.name == "v1")
    artifact = example / v1.spec.artifact
    predictor = load_model(
        "sklearn",
        str(artifact),
        hashlib.sha256(artifact.read_bytes()).hexdigest(),
        features,
        model.spec.output.labels,
    )
    with np.load(reference) as data:
        clean = np.asarray(data["pixels"], dtype=np.float32)
    # The model's answers on every reference image, and on the same images overexposed.
    inputs = {False: clean, True: np.clip(clean * 1.6 + 2.0, 0, 16).astype(np.float32)}
    answers = {shifted: predictor.predict({"pixels": x}) for shifted, x in inputs.items()}
    rng = np.random.default_rng(7)
    controller = MonitorController(store)
    for _ in range(168):
        buffer = RollupBuffer(lambda m, v: edges)
        for tenant in TENANTS:
            shifted = tenant == shift
            for _ in range(5):  # requests of 200 rows drawn from the reference
                pick = rng.integers(0, len(clean), 200)
                batch = {"pixels": inputs[shifted][pick]}
                outputs = answers[shifted]
                assert outputs.confidences is not None
                buffer.record(
                    tenant,
                    MODEL,
                    "v1",
                    "eu-west",
                    clock.now(),
                    200,
                    0.002,
                    outputs.confidences[pick],
                    feature_columns(batch, features),
                    rows=len(pick),
                    classes=outputs.predictions[pick],
                )
        with store.begin() as conn:
            write_rollups(conn, buffer.drain(), now=clock.now())
        clock.advance(timedelta(hours=1))
        controller.tick(clock.now())


@pytest.fixture
def week_store(trained_example: Path, tmp_path: Path, clock: VirtualClock) -> Store:
    store = open_store(f"sqlite:///{tmp_path / 'week.db'}")
    apply_fleet(store, load_fleet([trained_example / "fleet.yaml"]), actor="t", now=clock.now())
    return store


def test_a_stationary_week_raises_no_drift_event(
    week_store: Store, trained_example: Path, clock: VirtualClock
) -> None:
    simulate_week(week_store, trained_example, clock)
    with week_store.begin() as conn:
        assert recent_events(conn) == []
        status = latest_results(conn, model=MODEL)
    assert {s.tenant for s in status} == set(TENANTS)
    assert all(s.status("drift") in ("ok", "warning") for s in status)
    assert all(s.status("data_quality") == "ok" for s in status)
