"""scikit-learn estimators saved with joblib.

Rows are formed by flattening each feature to `(n, prod(shape))` and concatenating the
features in the model's declared order. A classifier with `predict_proba` gives probabilities,
and its predictions are the argmax column, so class index i is `classes_[i]`; one without it
(a `RidgeClassifier`, an `SVC` without probabilities) has its predicted labels mapped to
indices in `classes_`. Anything else is a regressor and its values are the predictions.

joblib artifacts are pickles and run code when loaded: only bytes whose sha256 matches the
registered version reach this module.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import joblib
import numpy as np

from modelfleet.config.schema import Feature
from modelfleet.errors import ModelLoadError, PredictionError
from modelfleet.runtime.inputs import check_batch, design_matrix
from modelfleet.runtime.model import Array, Batch, Outputs


class SklearnModel:
    """A fitted estimator (or pipeline) behind the `Model` contract."""

    def __init__(
        self, estimator: Any, features: Sequence[Feature], labels: Sequence[str] | None
    ) -> None:
        self.estimator = estimator
        self.features = tuple(features)
        self.labels = None if labels is None else tuple(labels)
        self._classes: Array | None = getattr(estimator, "classes_", None)
        self._has_proba = self._classes is not None and hasattr(estimator, "predict_proba")

    def predict(self, batch: Batch) -> Outputs:
        """Predict for every row of `batch`."""
        rows = check_batch(batch, self.features)
        x = design_matrix(batch, self.features, rows)
        try:
            raw = self.estimator.predict_proba(x) if self._has_proba else self.estimator.predict(x)
        except Exception as exc:
            raise PredictionError(f"{type(self.estimator).__name__} failed: {exc}") from exc
        if self._has_proba:
            return Outputs.from_probabilities(np.asarray(raw), rows, self.labels)
        if self._classes is None:
            return Outputs.from_predictions(np.asarray(raw), rows, None)
        return Outputs.from_predictions(_class_indices(self._classes, raw), rows, self.labels)


def load(
    data: bytes, artifact: str, features: Sequence[Feature], labels: Sequence[str] | None
) -> SklearnModel:
    """An estimator from joblib bytes; raises ModelLoadError when they do not hold a usable one."""
    try:
        estimator = joblib.load(io.BytesIO(data))
    except Exception as exc:
        raise ModelLoadError(artifact, f"joblib could not read it: {exc!r}") from exc
    if not callable(getattr(estimator, "predict", None)):
        raise ModelLoadError(
            artifact, f"it holds a {type(estimator).__name__}, not an estimator with predict()"
        )
    classes = getattr(estimator, "classes_", None)
    if classes is not None and labels is not None:
        _check_labels(artifact, np.asarray(classes), labels)
    return SklearnModel(estimator, features, labels)


def _check_labels(artifact: str, classes: Array, labels: Sequence[str]) -> None:
    """The declared labels must be the estimator's classes, in `classes_` order."""
    if len(classes) != len(labels):
        raise ModelLoadError(
            artifact,
            f"the estimator has {len(classes)} classes but {len(labels)} labels are declared",
        )
    if classes.dtype.kind in "UO" and [str(c) for c in classes] != list(labels):
        raise ModelLoadError(
            artifact,
            f"declared labels {list(labels)} are not the estimator's classes_ "
            f"{[str(c) for c in classes]} in that order",
        )


def _class_indices(classes: Array, predicted: Any) -> Array:
    """Each predicted class label's index in `classes_` (which scikit-learn keeps sorted)."""
    predicted = np.asarray(predicted)
    indices: Array = np.searchsorted(classes, predicted).clip(max=len(classes) - 1)
    if not np.array_equal(classes[indices], predicted):
        raise PredictionError("the estimator predicted a label that is not among its classes_")
    return indices.astype(np.int64)
