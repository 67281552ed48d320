"""Reference profiles of the example's versions: the gateway's edges, the model's own outputs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from modelfleet.config import load_fleet
from modelfleet.config.schema import Model
from modelfleet.monitors.profile import Profile, build_profile, read_profile, write_profile
from modelfleet.runtime import VersionSpec
from modelfleet.store import Store
from modelfleet.telemetry.edges import reference_edges


@pytest.fixture(scope="module")
def v1(trained_example: Path) -> VersionSpec:
    fleet = load_fleet([trained_example / "fleet.yaml"])
    model = next(m for m in fleet.models if isinstance(m, Model))
    artifact = trained_example / "artifacts" / "v1.joblib"
    assert model.spec.output.labels is not None
    return VersionSpec(
        "product-recognizer",
        "v1",
        "sklearn",
        str(artifact),
        hashlib.sha256(artifact.read_bytes()).hexdigest(),
        tuple(model.spec.input.features),
        tuple(model.spec.output.labels),
        str(trained_example / "artifacts" / "reference.npz"),
    )


def test_a_profile_uses_the_gateways_edges_and_the_models_own_predictions(v1: VersionSpec) -> None:
    profile = build_profile(v1)
    assert v1.reference_data is not None
    edges = reference_edges(v1.reference_data, v1.features)
    assert {n: c.edges for n, c in profile.columns.items()} == edges
    with np.load(v1.reference_data) as data:
        rows = len(data["pixels"])
    assert profile.rows == rows
    assert all(sum(c.counts) == rows for c in profile.columns.values())
    assert all(c.counts[0] == 0 and c.counts[-1] == 0 for c in profile.columns.values())
    assert profile.classes is not None and sum(profile.classes.values()) == rows
    assert profile.confidence is not None and sum(profile.confidence) == rows
    with np.load(v1.reference_data) as data:
        assert profile.columns["pixels[5]"].maximum == float(data["pixels"][:, 5].max())


def test_a_profile_survives_the_store(v1: VersionSpec, store: Store, clock) -> None:  # type: ignore[no-untyped-def]
    profile = build_profile(v1)
    with store.begin() as conn:
        write_profile(conn, profile, now=clock.now())
        write_profile(conn, profile, now=clock.now())  # replaced, not doubled
        assert read_profile(conn, "product-recognizer", "v1") == profile
        assert read_profile(conn, "product-recognizer", "v9") is None
    assert Profile.from_dict(profile.to_dict()) == profile
