"""ONNX graphs run by onnxruntime on the CPU.

Inputs: when the graph's inputs are named like the model's features, each feature is fed to
its input; otherwise a graph with one input gets the design matrix (features flattened and
concatenated in declared order). Either way arrays are cast to the graph's element types, and
static dimensions are checked against the features when the version is loaded, not at the
first request.

Outputs: among the graph's tensor outputs (a `ZipMap`'s sequence of maps is skipped), the
first 2-D float output with two or more columns is taken as class probabilities; otherwise the
first tensor output gives the predictions (a `(n, 1)` column is a regressor's values).

A session uses one intra-op thread by default: the gateway already runs many requests in
parallel, and each session spreading over every core would oversubscribe them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnxruntime as ort  # type: ignore[import-untyped, unused-ignore]

from modelfleet.config.schema import Feature
from modelfleet.errors import ModelLoadError, PredictionError
from modelfleet.runtime.inputs import batch_shape_text, check_batch, design_matrix
from modelfleet.runtime.model import Array, Batch, Outputs

# onnxruntime's tensor element types (NodeArg.type) and the numpy dtypes it takes for them.
_ELEMENT_TYPES: dict[str, np.dtype[Any]] = {
    f"tensor({name})": np.dtype(dtype)
    for name, dtype in [
        ("float", np.float32),
        ("double", np.float64),
        ("float16", np.float16),
        ("int8", np.int8),
        ("int16", np.int16),
        ("int32", np.int32),
        ("int64", np.int64),
        ("uint8", np.uint8),
        ("uint16", np.uint16),
        ("uint32", np.uint32),
        ("uint64", np.uint64),
        ("bool", np.bool_),
        ("string", np.object_),
    ]
}


class OnnxModel:
    """An onnxruntime session behind the `Model` contract."""

    def __init__(
        self,
        session: Any,
        features: Sequence[Feature],
        labels: Sequence[str] | None,
        feeds: dict[str, np.dtype[Any]],
        outputs: list[str],
    ) -> None:
        self.session = session
        self.features = tuple(features)
        self.labels = None if labels is None else tuple(labels)
        self._feeds = feeds  # graph input name -> element dtype
        self._outputs = outputs
        self._per_feature = set(feeds) == {f.name for f in self.features}

    def predict(self, batch: Batch) -> Outputs:
        """Predict for every row of `batch`."""
        rows = check_batch(batch, self.features)
        if self._per_feature:
            feed = {name: batch[name].astype(t, copy=False) for name, t in self._feeds.items()}
        else:
            ((name, t),) = self._feeds.items()
            feed = {name: design_matrix(batch, self.features, rows).astype(t, copy=False)}
        try:
            results: list[Array] = self.session.run(self._outputs, feed)
        except Exception as exc:
            raise PredictionError(f"onnxruntime failed: {exc}") from exc
        for result in results:
            if result.dtype.kind == "f" and result.ndim == 2 and result.shape[1] >= 2:
                return Outputs.from_probabilities(result, rows, self.labels)
        return Outputs.from_predictions(results[0], rows, self.labels)


def load(
    data: bytes,
    artifact: str,
    features: Sequence[Feature],
    labels: Sequence[str] | None,
    *,
    intra_op_num_threads: int = 1,
) -> OnnxModel:
    """A CPU session over an ONNX graph's bytes; raises ModelLoadError when it cannot serve."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_num_threads
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(
            data, sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        raise ModelLoadError(artifact, f"onnxruntime could not load it: {exc}") from exc

    inputs = {node.name: node for node in session.get_inputs()}
    names = [f.name for f in features]
    if set(inputs) == set(names):
        expected = {f.name: tuple(f.shape) for f in features}
    elif len(inputs) == 1:
        expected = {next(iter(inputs)): (sum(math.prod(f.shape) for f in features),)}
    else:
        raise ModelLoadError(
            artifact,
            f"the graph's inputs {sorted(inputs)} are neither one input nor named like the "
            f"features {names}",
        )
    feeds = {name: _element_dtype(artifact, inputs[name]) for name in expected}
    for name, shape in expected.items():
        _check_shape(artifact, inputs[name], shape)

    outputs = [node.name for node in session.get_outputs() if node.type.startswith("tensor(")]
    if not outputs:
        raise ModelLoadError(artifact, "the graph has no tensor outputs")
    return OnnxModel(session, features, labels, feeds, outputs)


def _element_dtype(artifact: str, node: Any) -> np.dtype[Any]:
    try:
        return _ELEMENT_TYPES[node.type]
    except KeyError:
        raise ModelLoadError(
            artifact, f"graph input {node.name} has type {node.type}, which cannot be fed"
        ) from None


def _check_shape(artifact: str, node: Any, expected: tuple[int, ...]) -> None:
    """A graph input's static dimensions must agree with `(n, *expected)`, `n` left dynamic."""
    shape = node.shape
    if not isinstance(shape, list) or not shape:
        return  # rank unknown: onnxruntime checks at run time
    if isinstance(shape[0], int):
        raise ModelLoadError(
            artifact,
            f"graph input {node.name} has a fixed batch dimension {shape[0]}; "
            "export the graph with a dynamic one so requests can be batched",
        )
    agrees = len(shape) == 1 + len(expected) and all(
        not isinstance(have, int) or have == want
        for have, want in zip(shape[1:], expected, strict=True)
    )
    if not agrees:
        raise ModelLoadError(
            artifact,
            f"graph input {node.name} has shape {shape} but the features give "
            f"{batch_shape_text(expected)}",
        )
