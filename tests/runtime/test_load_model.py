"""Loading checks the artifact's bytes against the registered sha256 before anything runs."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from modelfleet.errors import ArtifactMismatch, ModelLoadError
from modelfleet.runtime import load_model
from tests.runtime.conftest import FEATURES, LABELS, write


def test_an_artifact_whose_bytes_changed_is_refused_naming_both_hashes(
    tmp_path: Path, sklearn_artifact: tuple[Path, str]
) -> None:
    original, registered = sklearn_artifact
    path = tmp_path / "digits.joblib"
    shutil.copy(original, path)
    with path.open("ab") as f:
        f.write(b"\0")
    actual = hashlib.sha256(path.read_bytes()).hexdigest()

    with pytest.raises(ArtifactMismatch) as caught:
        load_model("sklearn", str(path), registered, FEATURES, LABELS)

    assert registered in str(caught.value) and actual in str(caught.value)
    assert (caught.value.expected_sha256, caught.value.actual_sha256) == (registered, actual)
    assert isinstance(caught.value, ModelLoadError)


def test_a_python_artifacts_hash_is_of_its_file(tmp_path: Path) -> None:
    sha = write(tmp_path / "m.py", b"def f(batch):\n    return batch['image'][:, 0, 0]\n")
    load_model("python", f"{tmp_path / 'm.py'}:f", sha, FEATURES, None)

    (tmp_path / "m.py").write_bytes(b"def f(batch):\n    return 0\n")
    with pytest.raises(ArtifactMismatch, match=sha):
        load_model("python", f"{tmp_path / 'm.py'}:f", sha, FEATURES, None)


@pytest.mark.parametrize(
    ("format", "name", "data", "reason"),
    [
        ("sklearn", "m.joblib", b"not a pickle at all", "joblib could not read it"),
        ("sklearn", "m.joblib", b"", "joblib could not read it"),
        ("onnx", "m.onnx", b"\x08\x07garbage", "onnxruntime could not load it"),
        ("python", "m.py:f", b"def f(:\n", "SyntaxError"),
    ],
    ids=["sklearn-garbage", "sklearn-empty", "onnx-garbage", "python-syntax"],
)
def test_a_corrupt_artifact_is_a_model_load_error_with_its_reason(
    tmp_path: Path, format: str, name: str, data: bytes, reason: str
) -> None:
    sha = write(tmp_path / name.split(":")[0], data)
    with pytest.raises(ModelLoadError, match=reason) as caught:
        load_model(format, str(tmp_path / name), sha, FEATURES, None)
    assert not isinstance(caught.value, ArtifactMismatch)
    assert caught.value.__cause__ is not None  # the library's error, kept for debugging


def test_a_missing_artifact_is_a_model_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="No such file"):
        load_model("sklearn", str(tmp_path / "gone.joblib"), "0" * 64, FEATURES, None)


def test_an_unknown_format_is_a_model_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="unknown format 'pmml'"):
        load_model("pmml", str(tmp_path / "m.pmml"), "0" * 64, FEATURES, None)
