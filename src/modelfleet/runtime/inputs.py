"""The input side of the `Model` contract: a batch checked against the declared features.

Every format checks its batch here first, so a wrong name, dtype or shape is an InvalidBatch
that names the feature, never a library's error from deep inside a predict call. Formats that
take one matrix (sklearn, a one-input ONNX graph) build it with `design_matrix`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from modelfleet.config.schema import DType, Feature
from modelfleet.errors import InvalidBatch
from modelfleet.runtime.model import Array, Batch

# The numpy kinds that hold each declared dtype; numbers must match exactly (a float64 array
# for a float32 feature would be silently rounded), strings may be unicode, bytes or objects.
_KINDS: dict[DType, tuple[np.dtype[np.generic] | None, str]] = {
    "bool": (np.dtype(np.bool_), "b"),
    "int32": (np.dtype(np.int32), "i"),
    "int64": (np.dtype(np.int64), "i"),
    "float32": (np.dtype(np.float32), "f"),
    "float64": (np.dtype(np.float64), "f"),
    "string": (None, "USO"),
}


def check_batch(batch: Batch, features: Sequence[Feature]) -> int:
    """The number of rows in `batch`, after checking it holds exactly the declared features.

    Each feature's array must have shape `(n, *feature.shape)` and the feature's dtype, with the
    same `n >= 1` for all. Raises InvalidBatch naming the first problem found.
    """
    declared = [f.name for f in features]
    unknown = sorted(set(batch) - set(declared))
    missing = [name for name in declared if name not in batch]
    if unknown or missing:
        problems = [f"missing {name}" for name in missing] + [f"unknown {n}" for n in unknown]
        raise InvalidBatch(
            f"batch features do not match the model's ({', '.join(declared)}): "
            + ", ".join(problems)
        )
    rows: int | None = None
    for feature in features:
        arr = batch[feature.name]
        if not isinstance(arr, np.ndarray):
            raise InvalidBatch(f"feature {feature.name}: expected an array, got {type(arr)}")
        expected_shape = tuple(feature.shape)
        if arr.ndim != 1 + len(expected_shape) or arr.shape[1:] != expected_shape:
            raise InvalidBatch(
                f"feature {feature.name}: expected shape {batch_shape_text(expected_shape)}, "
                f"got {arr.shape}"
            )
        exact, kinds = _KINDS[feature.dtype]
        if (exact is not None and arr.dtype != exact) or arr.dtype.kind not in kinds:
            raise InvalidBatch(f"feature {feature.name}: expected {feature.dtype}, got {arr.dtype}")
        if rows is None:
            rows = arr.shape[0]
        elif arr.shape[0] != rows:
            raise InvalidBatch(
                f"feature {feature.name} has {arr.shape[0]} rows but the batch has {rows}"
            )
    if not rows:
        raise InvalidBatch("a batch needs at least one row")
    return rows


def design_matrix(batch: Batch, features: Sequence[Feature], rows: int) -> Array:
    """One `(rows, total)` matrix: each feature flattened to `(rows, prod(shape))`, in order.

    Numbers are promoted to their common dtype, as numpy concatenation does; when any feature
    is a string the matrix holds Python objects, as scikit-learn's encoders expect.
    """
    columns = [batch[f.name].reshape(rows, math.prod(f.shape)) for f in features]
    if len(columns) == 1:
        return columns[0]
    if any(f.dtype == "string" for f in features):
        columns = [c.astype(object) for c in columns]
    return np.concatenate(columns, axis=1)


def batch_shape_text(shape: Sequence[int]) -> str:
    """A batch of `shape`d rows as people write it: `(n, 8, 8)`, or `(n,)` for a scalar feature."""
    return "(n," + "".join(f" {d}," for d in shape).rstrip(",") + ")"
