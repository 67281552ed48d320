"""`LocalBackend`: versions loaded in this process, each served by its own pool of replicas."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from modelfleet.errors import ArtifactMismatch, InvalidBatch, ModelLoadError, NotDeployed
from modelfleet.runtime import Health, LocalBackend, VersionRef, VersionSpec
from modelfleet.runtime.model import Outputs
from tests.runtime.conftest import FEATURES, Digits, write


@pytest.fixture
def backend() -> Iterator[LocalBackend]:
    b = LocalBackend()
    yield b
    b.close()


def infer(backend: LocalBackend, ref: VersionRef, batch: dict[str, np.ndarray]) -> Outputs:
    return asyncio.run(backend.infer(ref, batch))


def test_a_deployed_version_infers_what_its_estimator_predicts(
    backend: LocalBackend, digits_spec: VersionSpec, classifier: LogisticRegression, digits: Digits
) -> None:
    backend.deploy(digits_spec, replicas=2)

    out = infer(backend, digits_spec.ref, digits.batch(500, 600))

    np.testing.assert_array_equal(out.predictions, classifier.predict(digits.x[500:600]))
    assert backend.health(digits_spec.ref) == Health("loaded", replicas=2)


def test_scaling_changes_the_replicas_and_the_version_keeps_serving(
    backend: LocalBackend, digits_spec: VersionSpec, digits: Digits
) -> None:
    backend.deploy(digits_spec, replicas=1)
    backend.scale(digits_spec.ref, 3)

    assert backend.health(digits_spec.ref) == Health("loaded", replicas=3)
    assert len(infer(backend, digits_spec.ref, digits.batch(0, 4))) == 4


def test_replicas_run_predictions_at_the_same_time(backend: LocalBackend, tmp_path: Path) -> None:
    # Each call waits at a two-party barrier: only two predictions running at once get through.
    source = (
        b"import threading\nimport numpy as np\nBARRIER = threading.Barrier(2)\n"
        b"def meet(batch):\n    BARRIER.wait(timeout=10)\n    return np.zeros(len(batch['image']))\n"
    )
    sha = write(tmp_path / "meet.py", source)
    spec = VersionSpec("meet", "v1", "python", f"{tmp_path / 'meet.py'}:meet", sha, FEATURES)
    backend.deploy(spec, replicas=2)
    batch = {"image": np.zeros((1, 8, 8))}

    async def both() -> list[Outputs]:
        return await asyncio.gather(backend.infer(spec.ref, batch), backend.infer(spec.ref, batch))

    assert [len(o) for o in asyncio.run(both())] == [1, 1]


def test_undeploying_stops_serving_and_may_be_repeated(
    backend: LocalBackend, digits_spec: VersionSpec, digits: Digits
) -> None:
    backend.deploy(digits_spec, replicas=1)
    backend.undeploy(digits_spec.ref)
    backend.undeploy(digits_spec.ref)

    assert backend.health(digits_spec.ref) == Health("absent")
    with pytest.raises(NotDeployed, match="digits/v1 is not deployed"):
        infer(backend, digits_spec.ref, digits.batch(0, 1))
    with pytest.raises(NotDeployed):
        backend.scale(digits_spec.ref, 2)


def test_a_failing_deploy_leaves_other_versions_serving(
    backend: LocalBackend, digits_spec: VersionSpec, digits: Digits, tmp_path: Path
) -> None:
    backend.deploy(digits_spec, replicas=1)
    corrupt = tmp_path / "v2.joblib"
    broken = dataclasses.replace(
        digits_spec, version="v2", artifact=str(corrupt), sha256=write(corrupt, b"corrupt")
    )

    with pytest.raises(ModelLoadError):
        backend.deploy(broken, replicas=1)

    health = backend.health(broken.ref)
    assert health.state == "failed" and "joblib could not read it" in (health.reason or "")
    assert backend.health(digits_spec.ref).serving
    assert len(infer(backend, digits_spec.ref, digits.batch(0, 2))) == 2


def test_a_failing_redeploy_keeps_the_version_serving(
    backend: LocalBackend, digits_spec: VersionSpec, digits: Digits
) -> None:
    backend.deploy(digits_spec, replicas=2)
    tampered = dataclasses.replace(digits_spec, sha256=hashlib.sha256(b"other").hexdigest())

    with pytest.raises(ArtifactMismatch):
        backend.deploy(tampered, replicas=1)

    assert backend.health(digits_spec.ref) == Health("loaded", replicas=2)
    assert len(infer(backend, digits_spec.ref, digits.batch(0, 2))) == 2


def test_an_invalid_batch_reaches_the_caller(
    backend: LocalBackend, digits_spec: VersionSpec
) -> None:
    backend.deploy(digits_spec, replicas=1)
    with pytest.raises(InvalidBatch, match="missing image"):
        infer(backend, digits_spec.ref, {"pixels": np.zeros((1, 64))})


def test_an_unknown_version_is_absent_and_zero_replicas_are_refused(
    backend: LocalBackend, digits_spec: VersionSpec
) -> None:
    assert backend.health(VersionRef("digits", "v9")) == Health("absent")
    with pytest.raises(ValueError, match="at least 1"):
        backend.deploy(digits_spec, replicas=0)
