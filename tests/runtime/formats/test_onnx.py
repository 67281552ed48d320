"""ONNX graphs: one matrix input or one input per feature; probabilities or predictions out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from sklearn.linear_model import LogisticRegression

from modelfleet.config.schema import Feature
from modelfleet.errors import ModelLoadError, PredictionError
from modelfleet.runtime import load_model
from modelfleet.runtime.formats.onnx import OnnxModel
from tests.runtime.conftest import FEATURES, LABELS, Digits, softmax_graph, write


def graph(nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto], output: str) -> bytes:
    g = helper.make_graph(
        nodes, "g", inputs, [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)]
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_a_softmax_graph_predicts_what_the_classifier_predicts(
    onnx_artifact: tuple[Path, str], classifier: LogisticRegression, digits: Digits
) -> None:
    path, sha = onnx_artifact
    model = load_model("onnx", str(path), sha, FEATURES, LABELS)

    out = model.predict(digits.batch(500, 700))

    expected = classifier.predict_proba(digits.x[500:700])
    assert out.probabilities is not None and out.probabilities.shape == (200, 10)
    np.testing.assert_allclose(out.probabilities, expected, atol=1e-5)
    np.testing.assert_array_equal(out.predictions, classifier.predict(digits.x[500:700]))


def test_a_session_uses_one_intra_op_thread_by_default(onnx_artifact: tuple[Path, str]) -> None:
    path, sha = onnx_artifact
    model = load_model("onnx", str(path), sha, FEATURES, LABELS)
    assert isinstance(model, OnnxModel)
    assert model.session.get_session_options().intra_op_num_threads == 1


def test_inputs_named_like_features_are_fed_each_cast_to_their_type(tmp_path: Path) -> None:
    data = graph(
        [
            helper.make_node("Add", ["left", "right"], ["sum"]),
            helper.make_node("Softmax", ["sum"], ["p"], axis=1),
        ],
        [
            helper.make_tensor_value_info("left", TensorProto.FLOAT, ["N", 2]),
            helper.make_tensor_value_info("right", TensorProto.FLOAT, ["N", 2]),
        ],
        "p",
    )
    features = [
        Feature(name="right", dtype="float64", shape=[2]),
        Feature(name="left", dtype="int64", shape=[2]),
    ]
    sha = write(tmp_path / "g.onnx", data)
    left = np.array([[0, 1], [2, 0]], dtype=np.int64)
    right = np.array([[0.5, 0.0], [0.0, 0.25]])

    out = load_model("onnx", str(tmp_path / "g.onnx"), sha, features, ["a", "b"]).predict(
        {"left": left, "right": right}
    )

    s = left + right
    expected = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(out.probabilities, expected, rtol=1e-6)
    np.testing.assert_array_equal(out.predictions, [1, 0])


def test_a_one_column_output_is_a_regressors_predictions(tmp_path: Path) -> None:
    weights = numpy_helper.from_array(np.array([[1.0], [2.0], [3.0]], dtype=np.float32), "w")
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "regressor",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])],
        initializer=[weights],
    )
    data = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    sha = write(tmp_path / "r.onnx", data)
    features = [Feature(name="x", dtype="float32", shape=[3])]

    out = load_model("onnx", str(tmp_path / "r.onnx"), sha, features, None).predict(
        {"x": np.array([[1, 1, 1], [0, 0, 2]], dtype=np.float32)}
    )

    np.testing.assert_array_equal(out.predictions, [6.0, 6.0])
    assert out.predictions.dtype == np.float64 and out.probabilities is None


@pytest.mark.parametrize(
    ("inputs", "reason"),
    [
        (
            [
                helper.make_tensor_value_info("u", TensorProto.FLOAT, ["N", 64]),
                helper.make_tensor_value_info("v", TensorProto.FLOAT, ["N", 64]),
            ],
            "neither one input nor named like the features",
        ),
        (
            [helper.make_tensor_value_info("u", TensorProto.FLOAT, ["N", 63])],
            r"has shape \['N', 63\] but the features give \(n, 64\)",
        ),
        (
            [helper.make_tensor_value_info("u", TensorProto.FLOAT, [1, 64])],
            "fixed batch dimension 1",
        ),
    ],
    ids=["unmatched-inputs", "wrong-width", "fixed-batch"],
)
def test_a_graph_that_cannot_take_the_features_is_refused_at_load(
    tmp_path: Path, inputs: list[onnx.ValueInfoProto], reason: str
) -> None:
    nodes = [helper.make_node("Identity", [inputs[0].name], ["out"])]
    sha = write(tmp_path / "g.onnx", graph(nodes, inputs, "out"))
    with pytest.raises(ModelLoadError, match=reason):
        load_model("onnx", str(tmp_path / "g.onnx"), sha, FEATURES, None)


def test_a_graph_with_too_few_classes_for_the_labels_fails_on_predict(
    tmp_path: Path, digits: Digits
) -> None:
    sha = write(tmp_path / "g.onnx", softmax_graph(np.ones((64, 3)), np.zeros(3)))
    model = load_model("onnx", str(tmp_path / "g.onnx"), sha, FEATURES, LABELS)
    with pytest.raises(PredictionError, match="3 class probabilities but 10 labels"):
        model.predict(digits.batch(0, 2))
