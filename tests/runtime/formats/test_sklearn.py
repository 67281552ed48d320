"""scikit-learn artifacts: classifiers give probabilities in `classes_` order, regressors values."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression, RidgeClassifier

from modelfleet.config.schema import Feature
from modelfleet.errors import InvalidBatch, ModelLoadError
from modelfleet.runtime import load_model
from tests.runtime.conftest import FEATURES, LABELS, Digits


def saved(tmp_path: Path, estimator: Any) -> tuple[str, str]:
    path = tmp_path / "model.joblib"
    joblib.dump(estimator, path)
    return str(path), hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_classifier_predicts_what_its_estimator_predicts(
    sklearn_artifact: tuple[Path, str], classifier: LogisticRegression, digits: Digits
) -> None:
    path, sha = sklearn_artifact
    model = load_model("sklearn", str(path), sha, FEATURES, LABELS)

    out = model.predict(digits.batch(500, 700))

    expected = classifier.predict_proba(digits.x[500:700])
    np.testing.assert_allclose(out.probabilities, expected, rtol=1e-12)
    np.testing.assert_array_equal(out.predictions, classifier.predict(digits.x[500:700]))
    np.testing.assert_allclose(out.confidences, expected.max(axis=1), rtol=1e-12)
    assert out.predictions.dtype == np.int64


def test_predictions_index_classes_in_classes_order(tmp_path: Path, digits: Digits) -> None:
    names = np.array(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    )
    estimator = RidgeClassifier().fit(digits.x[:500], names[digits.targets[:500]])
    path, sha = saved(tmp_path, estimator)
    labels = [str(c) for c in estimator.classes_]  # alphabetical: eight, five, four, ...

    out = load_model("sklearn", path, sha, FEATURES, labels).predict(digits.batch(500, 600))

    predicted = estimator.predict(digits.x[500:600])
    assert [labels[i] for i in out.predictions] == list(predicted)
    assert out.probabilities is None and out.confidences is None


def test_labels_in_another_order_than_classes_are_refused(tmp_path: Path, digits: Digits) -> None:
    names = np.array(["even", "odd"])
    estimator = RidgeClassifier().fit(digits.x[:200], names[digits.targets[:200] % 2])
    path, sha = saved(tmp_path, estimator)

    with pytest.raises(ModelLoadError, match="not the estimator's classes_"):
        load_model("sklearn", path, sha, FEATURES, ["odd", "even"])


def test_a_wrong_number_of_labels_is_refused(sklearn_artifact: tuple[Path, str]) -> None:
    path, sha = sklearn_artifact
    with pytest.raises(ModelLoadError, match="10 classes but 3 labels"):
        load_model("sklearn", str(path), sha, FEATURES, ["a", "b", "c"])


def test_features_are_flattened_and_concatenated_in_declared_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    estimator = LinearRegression().fit(x, x @ np.array([1.0, 10.0, 100.0]))
    features = [
        Feature(name="pair", dtype="float32", shape=[2]),
        Feature(name="scalar", dtype="float64"),
    ]
    path, sha = saved(tmp_path, estimator)
    batch = {"scalar": x[:, 2], "pair": x[:, :2].astype(np.float32)}

    out = load_model("sklearn", path, sha, features, None).predict(batch)

    expected = estimator.predict(np.column_stack([x[:, :2].astype(np.float32), x[:, 2]]))
    np.testing.assert_array_equal(out.predictions, expected)
    assert out.predictions.dtype == np.float64 and out.probabilities is None


def test_an_artifact_that_is_not_an_estimator_is_refused(tmp_path: Path) -> None:
    path, sha = saved(tmp_path, {"weights": [1, 2, 3]})
    with pytest.raises(ModelLoadError, match="not an estimator"):
        load_model("sklearn", path, sha, FEATURES, None)


def test_a_batch_of_the_wrong_dtype_is_an_invalid_batch(
    sklearn_artifact: tuple[Path, str], digits: Digits
) -> None:
    path, sha = sklearn_artifact
    model = load_model("sklearn", str(path), sha, FEATURES, LABELS)
    with pytest.raises(InvalidBatch, match="image: expected float64, got float32"):
        model.predict({"image": digits.images[:3].astype(np.float32)})
