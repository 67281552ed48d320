"""The `Model` contract: a loaded version turns a batch of inputs into `Outputs`.

A batch maps each input feature's name to an array of shape `(n, *feature.shape)` in the
feature's declared dtype; `n` is the same for every feature. Every format (sklearn, ONNX,
python) returns the same `Outputs`, so the gateway, telemetry and review never ask which
format produced them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from modelfleet.config.schema import Feature
from modelfleet.errors import PredictionError

Array = npt.NDArray[Any]
Batch = Mapping[str, Array]


@dataclass(frozen=True, eq=False)
class Outputs:
    """What a model returns for `n` rows.

    `predictions` holds class indices (int64, index i is label i) for a classifier and values
    for a regressor; `confidences` is each row's largest class probability and `probabilities`
    the whole `(n, k)` distribution, both None when the model gives no probabilities.
    """

    predictions: Array
    confidences: Array | None = None
    probabilities: Array | None = None

    def __post_init__(self) -> None:
        if self.predictions.ndim != 1:
            raise ValueError(f"predictions must be 1-D, not of shape {self.predictions.shape}")
        n = self.predictions.shape[0]
        if self.confidences is not None and self.confidences.shape != (n,):
            raise ValueError(f"confidences must have shape ({n},), not {self.confidences.shape}")
        if self.probabilities is not None and (
            self.probabilities.ndim != 2 or self.probabilities.shape[0] != n
        ):
            raise ValueError(
                f"probabilities must have shape ({n}, k), not {self.probabilities.shape}"
            )

    def __len__(self) -> int:
        return int(self.predictions.shape[0])

    def rows(self, start: int, stop: int) -> Outputs:
        """Rows `[start, stop)`, as views: how a batch's outputs go back to its requests."""
        return Outputs(
            self.predictions[start:stop],
            None if self.confidences is None else self.confidences[start:stop],
            None if self.probabilities is None else self.probabilities[start:stop],
        )

    @classmethod
    def concat(cls, parts: Sequence[Outputs]) -> Outputs:
        """The outputs of several batches, one after the other."""
        if not parts:
            raise ValueError("concat needs at least one Outputs")
        with_probs = {p.probabilities is not None for p in parts}
        if len(with_probs) != 1:
            raise ValueError("cannot concatenate outputs with and without probabilities")
        confidences = [p.confidences for p in parts if p.confidences is not None]
        probabilities = [p.probabilities for p in parts if p.probabilities is not None]
        return cls(
            np.concatenate([p.predictions for p in parts]),
            np.concatenate(confidences) if len(confidences) == len(parts) else None,
            np.concatenate(probabilities) if probabilities else None,
        )

    @classmethod
    def from_probabilities(
        cls, probabilities: Array, rows: int, labels: Sequence[str] | None
    ) -> Outputs:
        """Outputs of a classifier from its `(rows, k)` class probabilities.

        Raises PredictionError when the array is not `(rows, k)` floats, or `k` is not the
        number of declared labels.
        """
        p = np.asarray(probabilities)
        if p.ndim != 2 or p.shape[0] != rows or p.shape[1] == 0 or p.dtype.kind != "f":
            raise PredictionError(
                f"expected ({rows}, k) float probabilities, got {p.dtype} array of shape {p.shape}"
            )
        if labels is not None and p.shape[1] != len(labels):
            raise PredictionError(
                f"the model gives {p.shape[1]} class probabilities but {len(labels)} labels "
                "are declared"
            )
        predictions = p.argmax(axis=1).astype(np.int64)
        return cls(predictions, p[np.arange(rows), predictions], p)

    @classmethod
    def from_predictions(
        cls, predictions: Array, rows: int, labels: Sequence[str] | None
    ) -> Outputs:
        """Outputs of a model that gives one value per row: class indices or regression values.

        Integers become int64 and floats float64. With labels declared the predictions must be
        class indices into them. Anything else, or a shape other than `(rows,)` (or
        `(rows, 1)`, a single-output regressor's column), is a PredictionError.
        """
        p = np.asarray(predictions)
        if p.ndim == 2 and p.shape[1] == 1:
            p = p[:, 0]
        if p.shape != (rows,):
            raise PredictionError(f"expected {rows} predictions, got an array of shape {p.shape}")
        if labels is not None:
            if p.dtype.kind not in "biu":
                raise PredictionError(f"a classifier must predict class indices, not {p.dtype}")
            if rows and (p.min() < 0 or p.max() >= len(labels)):
                raise PredictionError(
                    f"class indices must lie in [0, {len(labels)}), got {p.min()}..{p.max()}"
                )
        if p.dtype.kind in "biu":
            return cls(p.astype(np.int64, copy=False))
        if p.dtype.kind == "f":
            return cls(p.astype(np.float64, copy=False))
        raise PredictionError(f"predictions must be numbers, not {p.dtype}")


class Model(Protocol):
    """A model version loaded into memory, ready to predict.

    It declares its inputs (`features`, in order) and outputs (`labels`, index i is class i;
    None for a regressor). `predict` raises InvalidBatch when the batch does not match the
    features and PredictionError when the model itself fails; it may be called from several
    threads at once.
    """

    @property
    def features(self) -> Sequence[Feature]: ...

    @property
    def labels(self) -> Sequence[str] | None: ...

    def predict(self, batch: Batch) -> Outputs: ...
