"""Real models on scikit-learn's digits: a fitted classifier, its artifacts in every format."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from modelfleet.config.schema import Feature
from modelfleet.runtime import VersionSpec
from modelfleet.runtime.model import Array

# One 8x8 image per row, so loading has a shape to flatten.
FEATURES = (Feature(name="image", dtype="float64", shape=[8, 8]),)
LABELS = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class Digits:
    images: Array  # (n, 8, 8) float64 in [0, 1]
    targets: Array  # (n,) int

    @property
    def x(self) -> Array:
        return self.images.reshape(len(self.images), 64)

    def batch(self, start: int, stop: int) -> dict[str, Array]:
        return {"image": self.images[start:stop]}


@pytest.fixture(scope="session")
def digits() -> Digits:
    data = load_digits()
    return Digits(data.images / 16.0, data.target)


@pytest.fixture(scope="session")
def classifier(digits: Digits) -> LogisticRegression:
    """Trained on the first 500 images; the rest are unseen."""
    return LogisticRegression(max_iter=1000).fit(digits.x[:500], digits.targets[:500])


def write(path: Path, data: bytes) -> str:
    """Write `data` to `path` and return its sha256, as the registry records it."""
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="session")
def sklearn_artifact(
    tmp_path_factory: pytest.TempPathFactory, classifier: LogisticRegression
) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("sklearn") / "digits.joblib"
    joblib.dump(classifier, path)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def softmax_graph(weights: Array, bias: Array) -> bytes:
    """x (N, d) float32 -> Softmax(x @ W + b) (N, k): a linear classifier as an ONNX graph."""
    d, k = weights.shape
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "linear-classifier",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", d])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", k])],
        initializer=[
            numpy_helper.from_array(weights.astype(np.float32), "W"),
            numpy_helper.from_array(bias.astype(np.float32), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


@pytest.fixture(scope="session")
def onnx_artifact(
    tmp_path_factory: pytest.TempPathFactory, classifier: LogisticRegression
) -> tuple[Path, str]:
    """The classifier's weights in a MatMul+Add+Softmax graph over 64 inputs."""
    path = tmp_path_factory.mktemp("onnx") / "digits.onnx"
    return path, write(path, softmax_graph(classifier.coef_.T, classifier.intercept_))


@pytest.fixture
def digits_spec(sklearn_artifact: tuple[Path, str]) -> VersionSpec:
    path, sha = sklearn_artifact
    return VersionSpec("digits", "v1", "sklearn", str(path), sha, FEATURES, LABELS)
