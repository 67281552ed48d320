"""From a registered artifact to a `Model`: read once, verify the sha256, hand to the format.

The artifact's bytes are read once and both hashed and loaded from memory, so a file that
changes between the check and the load cannot slip through: what runs is exactly what was
registered (the registry's immutability, enforced where it matters).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

from modelfleet.config.schema import Feature
from modelfleet.errors import ArtifactMismatch, ModelLoadError
from modelfleet.runtime.formats import onnx, python, sklearn
from modelfleet.runtime.model import Model

Loader = Callable[[bytes, str, Sequence[Feature], Sequence[str] | None], Model]

FORMATS: dict[str, Loader] = {
    "sklearn": sklearn.load,
    "onnx": onnx.load,
    "python": python.load,
}


def artifact_file(format: str, artifact: str) -> Path:
    """The file whose bytes a version's sha256 covers: for `python`, the part before the `:`."""
    return python.split_artifact(artifact)[0] if format == "python" else Path(artifact)


def load_model(
    format: str,
    artifact: str,
    expected_sha256: str,
    features: Sequence[Feature],
    labels: Sequence[str] | None,
) -> Model:
    """Load a version's artifact, after checking its bytes are the ones registered.

    Raises ArtifactMismatch when the file's sha256 is not `expected_sha256`, and
    ModelLoadError, with the reason, for any other failure to load.
    """
    _loader(format, artifact)  # an unknown format says so, whether or not the file exists
    return load_model_bytes(
        format, artifact, read_artifact(format, artifact), expected_sha256, features, labels
    )


def read_artifact(format: str, artifact: str) -> bytes:
    """The bytes of a version's artifact file; raises ModelLoadError when it cannot be read."""
    path = artifact_file(format, artifact)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(artifact, f"cannot read {path}: {exc.strerror or exc}") from exc


def load_model_bytes(
    format: str,
    artifact: str,
    data: bytes,
    expected_sha256: str,
    features: Sequence[Feature],
    labels: Sequence[str] | None,
) -> Model:
    """Load a version from its artifact's bytes, read here or shipped to another host (a Ray
    replica), after checking they are the ones registered; raises as `load_model`."""
    load = _loader(format, artifact)
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256.lower():
        raise ArtifactMismatch(artifact, expected_sha256, actual)
    return load(data, artifact, features, labels)


def _loader(format: str, artifact: str) -> Loader:
    load = FORMATS.get(format)
    if load is None:
        raise ModelLoadError(artifact, f"unknown format {format!r}; known: {', '.join(FORMATS)}")
    return load
