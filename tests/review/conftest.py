"""A registered fleet (model `digits`, labels a, b, c; tenants acme and bolt) and a way to put
samples and logged predictions in its store as the gateway's flush writes them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from modelfleet.clock import VirtualClock
from modelfleet.config import load_fleet
from modelfleet.registry import apply_fleet
from modelfleet.store import Store
from modelfleet.store.tables import samples
from modelfleet.telemetry.feedback import write_predictions
from modelfleet.telemetry.writer import write_samples
from tests.registry.conftest import FLEET


@pytest.fixture
def fleet(store: Store, tmp_path: Path, clock: VirtualClock) -> Store:
    """`store` with the registry's small fleet applied."""
    (tmp_path / "v1.bin").write_bytes(b"model one")
    (tmp_path / "ref.npz").write_bytes(b"reference")
    (tmp_path / "fleet.yaml").write_text(FLEET)
    apply_fleet(store, load_fleet([tmp_path / "fleet.yaml"]), actor="test", now=clock.now())
    return store


def log_prediction(
    store: Store,
    request_id: str,
    predicted: list[Any],
    *,
    at: datetime,
    tenant: str = "acme",
    model: str = "digits",
    version: str = "v1",
    confidences: list[float] | None = None,
) -> None:
    """A prediction-log row, as the gateway writes it for a request with an id."""
    with store.begin() as conn:
        write_predictions(
            conn,
            [
                {
                    "tenant": tenant,
                    "model": model,
                    "version": version,
                    "request_id": request_id,
                    "at": at,
                    "predicted": predicted,
                    "confidences": confidences,
                }
            ],
        )


def add_sample(
    store: Store,
    request_id: str | None,
    *,
    at: datetime,
    tenant: str = "acme",
    reason: str = "low_confidence",
    predicted: str = "a",
    confidence: float = 0.4,
    version: str = "v1",
    pixels: list[float] | None = None,
) -> int:
    """A kept request and its prediction-log row, as one flush writes them; returns its id."""
    inputs = {"pixels": [pixels if pixels is not None else [float(i) for i in range(64)]]}
    with store.begin() as conn:
        write_samples(
            conn,
            [
                {
                    "tenant": tenant,
                    "model": "digits",
                    "version": version,
                    "region": "eu-west",
                    "at": at,
                    "reason": reason,
                    "inputs": inputs,
                    "outputs": {"predictions": [predicted], "confidences": [confidence]},
                    "request_id": request_id,
                }
            ],
        )
        sample_id = int(
            conn.execute(select(samples.c.id).order_by(samples.c.id.desc()).limit(1)).scalar_one()
        )
    if request_id is not None:
        log_prediction(
            store,
            request_id,
            [predicted],
            at=at,
            tenant=tenant,
            version=version,
            confidences=[confidence],
        )
    return sample_id
