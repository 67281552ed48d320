"""The retail-vision example's train.py: its artifacts, their reproducibility, and v1-v3's story."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
from pathlib import Path
from types import ModuleType
from typing import Any

import joblib
import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn.metrics import accuracy_score, recall_score

TRAIN_SCRIPT = Path(__file__).resolve().parents[2] / "examples/retail-vision/train.py"
FILES = ("v1.joblib", "v2.joblib", "v3.joblib", "reference.npz", "evaluation.npz")
VERSIONS = ("v1", "v2", "v3")
CLASSES = list(range(10))
DONUT, ICECREAM = 3, 8

Dataset = tuple[NDArray[np.float32], NDArray[np.int64]]


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("retail_vision_train", TRAIN_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trained(script: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """What train() returned; the one training run most tests share."""
    paths: dict[str, Path] = script.train(tmp_path_factory.mktemp("artifacts"))
    return paths


@pytest.fixture(scope="module")
def artifacts(trained: dict[str, Path]) -> Path:
    return trained["v1"].parent


@pytest.fixture(scope="module")
def rerun(script: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A second, independent training, through the command line, into a missing directory."""
    out = tmp_path_factory.mktemp("rerun") / "not" / "there" / "yet"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        script.main(["--out", str(out)])
    return out, printed.getvalue()


def load(path: Path) -> Dataset:
    with np.load(path) as data:
        assert sorted(data.files) == ["label", "pixels"]
        return data["pixels"], data["label"]


class Quality:
    """One version's accuracy and per-class recall on the evaluation set, computed here."""

    def __init__(self, model: Any, evaluation: Dataset) -> None:
        pixels, label = evaluation
        predicted = model.predict(pixels)
        self.accuracy = float(accuracy_score(label, predicted))
        self.recall = recall_score(label, predicted, labels=CLASSES, average=None)


@pytest.fixture(scope="module")
def quality(artifacts: Path) -> dict[str, Quality]:
    evaluation = load(artifacts / "evaluation.npz")
    return {v: Quality(joblib.load(artifacts / f"{v}.joblib"), evaluation) for v in VERSIONS}


def sha256s(directory: Path) -> dict[str, str]:
    return {name: hashlib.sha256((directory / name).read_bytes()).hexdigest() for name in FILES}


def test_it_writes_the_five_files_and_returns_their_paths(
    trained: dict[str, Path], artifacts: Path
) -> None:
    assert sorted(trained) == ["evaluation", "reference", "v1", "v2", "v3"]
    assert all(path.parent == artifacts for path in trained.values())
    assert sorted(p.name for p in artifacts.iterdir()) == sorted(FILES)


@pytest.mark.parametrize("name", ["reference", "evaluation"])
def test_data_sets_hold_float32_pixels_and_int64_labels_of_every_class(
    artifacts: Path, name: str
) -> None:
    pixels, label = load(artifacts / f"{name}.npz")
    assert pixels.dtype == np.float32 and label.dtype == np.int64
    assert pixels.ndim == 2 and pixels.shape[1] == 64 and pixels.shape[0] > 300
    assert label.shape == (pixels.shape[0],)
    assert sorted(set(label.tolist())) == CLASSES


def test_reference_and_evaluation_sets_share_no_image(artifacts: Path) -> None:
    reference, _ = load(artifacts / "reference.npz")
    evaluation, _ = load(artifacts / "evaluation.npz")
    # The bundled digits hold no duplicate images, so a shared row would be a leaky split.
    assert not {r.tobytes() for r in reference} & {e.tobytes() for e in evaluation}


def test_training_twice_writes_byte_identical_files(
    artifacts: Path, rerun: tuple[Path, str]
) -> None:
    out, _ = rerun
    assert sha256s(out) == sha256s(artifacts)


def test_the_command_line_prints_the_quality_table_and_each_files_sha256(
    rerun: tuple[Path, str],
) -> None:
    out, printed = rerun
    for line in ("accuracy", "3 donut", "8 icecream"):
        assert line in printed
    for name, digest in sha256s(out).items():
        assert f"{digest}  {out / name}" in printed


@pytest.mark.parametrize("version", VERSIONS)
def test_every_version_gives_probabilities_for_classes_0_to_9_in_order(
    artifacts: Path, version: str
) -> None:
    model = joblib.load(artifacts / f"{version}.joblib")
    assert model.classes_.tolist() == CLASSES
    pixels, _ = load(artifacts / "evaluation.npz")
    proba = model.predict_proba(pixels[:5])
    assert proba.shape == (5, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)


def test_products_name_the_ten_classes(script: ModuleType) -> None:
    assert list(script.PRODUCTS) == [
        "apple", "banana", "carrot", "donut", "egg", "fig", "grape", "honey", "icecream", "juice",
    ]  # fmt: skip


def test_v2_is_more_accurate_than_v1(quality: dict[str, Quality]) -> None:
    assert quality["v2"].accuracy > quality["v1"].accuracy


def test_v3_is_accurate_overall_but_fails_two_classes(quality: dict[str, Quality]) -> None:
    v1, v3 = quality["v1"], quality["v3"]
    # Margins wider than what is trained today (2.2 points overall, 24 and 26 points of recall),
    # so that another scikit-learn release moving an image or two does not break the story.
    assert v3.accuracy >= 0.9 and v3.accuracy >= v1.accuracy - 0.04
    for product in (DONUT, ICECREAM):
        assert v3.recall[product] <= v1.recall[product] - 0.15, product
