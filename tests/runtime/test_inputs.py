"""Batches are checked against the declared features before any model sees them."""

from __future__ import annotations

import numpy as np
import pytest

from modelfleet.config.schema import Feature
from modelfleet.errors import InvalidBatch
from modelfleet.runtime.inputs import check_batch, design_matrix

FEATURES = [
    Feature(name="image", dtype="float32", shape=[2, 2]),
    Feature(name="age", dtype="int64"),
    Feature(name="city", dtype="string"),
]


def good(rows: int = 3) -> dict[str, np.ndarray]:
    return {
        "image": np.arange(rows * 4, dtype=np.float32).reshape(rows, 2, 2),
        "age": np.arange(rows, dtype=np.int64),
        "city": np.array(["Oslo", "Lima", "Pune"][:rows], dtype=str),
    }


def test_a_batch_matching_the_features_gives_its_rows() -> None:
    assert check_batch(good(3), FEATURES) == 3


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"age": None}, "missing age"),
        ({"zip": np.zeros(3)}, "unknown zip"),
        ({"image": np.zeros((3, 4), dtype=np.float32)}, r"image: expected shape \(n, 2, 2\)"),
        ({"age": np.zeros((3, 1), dtype=np.int64)}, r"age: expected shape \(n,\)"),
        ({"age": np.arange(3, dtype=np.int32)}, "age: expected int64, got int32"),
        ({"image": np.zeros((3, 2, 2))}, "image: expected float32, got float64"),
        ({"city": np.arange(3)}, "city: expected string"),
        ({"age": np.arange(2, dtype=np.int64)}, "age has 2 rows but the batch has 3"),
        ({"age": [1, 2, 3]}, "age: expected an array"),
    ],
)
def test_a_batch_that_does_not_match_is_an_invalid_batch_naming_the_feature(
    change: dict[str, object], reason: str
) -> None:
    batch: dict[str, object] = {**good(3), **change}
    batch = {k: v for k, v in batch.items() if v is not None}
    with pytest.raises(InvalidBatch, match=reason):
        check_batch(batch, FEATURES)  # type: ignore[arg-type]


def test_an_empty_batch_is_an_invalid_batch() -> None:
    with pytest.raises(InvalidBatch, match="at least one row"):
        check_batch(good(0), FEATURES)


def test_the_design_matrix_flattens_features_in_declared_order() -> None:
    features = [Feature(name="b", dtype="float64", shape=[2]), Feature(name="a", dtype="int64")]
    batch = {"a": np.array([7, 8]), "b": np.array([[1.0, 2.0], [3.0, 4.0]])}
    np.testing.assert_array_equal(design_matrix(batch, features, 2), [[1, 2, 7], [3, 4, 8]])


def test_string_features_make_an_object_design_matrix() -> None:
    x = design_matrix(good(2), FEATURES, 2)
    assert x.dtype == object and x.shape == (2, 6)
    assert list(x[1]) == [4.0, 5.0, 6.0, 7.0, 1, "Lima"]
