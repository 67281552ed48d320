"""Python-function artifacts: `file.py:function`, each load a module of its own."""

from __future__ import annotations

import hashlib
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from modelfleet.errors import ModelLoadError, PredictionError
from modelfleet.runtime import Model, load_model
from modelfleet.runtime.formats.python import PythonModel
from tests.runtime.conftest import FEATURES, Digits

SOURCE = '''
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Halves:
    """A dataclass in the module: importing needs the module in sys.modules."""

    top: np.ndarray
    bottom: np.ndarray


CALLS = 0


def top_or_bottom(batch: dict[str, np.ndarray]) -> np.ndarray:
    global CALLS
    CALLS += 1
    images = batch["image"]
    halves = Halves(images[:, :4].sum(axis=(1, 2)), images[:, 4:].sum(axis=(1, 2)))
    scores = np.stack([halves.top, halves.bottom], axis=1)
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def ink(batch: dict[str, np.ndarray]) -> np.ndarray:
    return batch["image"].sum(axis=(1, 2))


def broken(batch: dict[str, np.ndarray]) -> np.ndarray:
    raise RuntimeError("no model here")
'''


def module_file(tmp_path: Path, source: str = SOURCE) -> tuple[Path, str]:
    path = tmp_path / "digits_model.py"
    path.write_text(textwrap.dedent(source))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def load(path: Path, sha: str, function: str, labels: list[str] | None = None) -> Model:
    return load_model("python", f"{path}:{function}", sha, FEATURES, labels)


def test_a_function_returning_probabilities_is_a_classifier(tmp_path: Path, digits: Digits) -> None:
    path, sha = module_file(tmp_path)
    out = load(path, sha, "top_or_bottom", ["top", "bottom"]).predict(digits.batch(0, 50))

    images = digits.images[:50]
    scores = np.stack([images[:, :4].sum(axis=(1, 2)), images[:, 4:].sum(axis=(1, 2))], axis=1)
    expected = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(out.probabilities, expected, rtol=1e-12)
    np.testing.assert_array_equal(out.predictions, expected.argmax(axis=1))


def test_a_function_returning_one_value_per_row_is_a_regressor(
    tmp_path: Path, digits: Digits
) -> None:
    path, sha = module_file(tmp_path)
    out = load(path, sha, "ink").predict(digits.batch(0, 5))
    np.testing.assert_allclose(out.predictions, digits.images[:5].sum(axis=(1, 2)))
    assert out.probabilities is None


def test_each_load_gets_a_module_of_its_own(tmp_path: Path, digits: Digits) -> None:
    path, sha = module_file(tmp_path)
    first, second = load(path, sha, "top_or_bottom"), load(path, sha, "top_or_bottom")
    first.predict(digits.batch(0, 1))
    first.predict(digits.batch(0, 1))
    second.predict(digits.batch(0, 1))

    assert isinstance(first, PythonModel) and isinstance(second, PythonModel)
    modules = {sys.modules[m.function.__module__] for m in (first, second)}
    assert sorted(m.CALLS for m in modules) == [1, 2]


def test_a_function_that_raises_is_a_prediction_error(tmp_path: Path, digits: Digits) -> None:
    path, sha = module_file(tmp_path)
    with pytest.raises(PredictionError, match="no model here") as caught:
        load(path, sha, "broken").predict(digits.batch(0, 1))
    assert isinstance(caught.value.__cause__, RuntimeError)


@pytest.mark.parametrize(
    ("source", "function", "reason"),
    [
        (SOURCE, "missing", "has no function missing"),
        ("def f(batch):\n    return (\n", "f", "SyntaxError"),
        ("import not_a_module_anywhere\n", "f", "ModuleNotFoundError"),
    ],
    ids=["no-function", "syntax-error", "import-error"],
)
def test_a_module_that_cannot_give_its_function_is_refused_and_forgotten(
    tmp_path: Path, source: str, function: str, reason: str
) -> None:
    path, sha = module_file(tmp_path, source)
    before = {name for name in sys.modules if name.startswith("modelfleet_artifact_")}
    with pytest.raises(ModelLoadError, match=reason):
        load(path, sha, function)
    assert {name for name in sys.modules if name.startswith("modelfleet_artifact_")} == before


def test_an_artifact_without_a_function_name_is_refused(tmp_path: Path) -> None:
    path, sha = module_file(tmp_path)
    with pytest.raises(ModelLoadError, match=r"path/to/file.py:function"):
        load_model("python", str(path), sha, FEATURES, None)
