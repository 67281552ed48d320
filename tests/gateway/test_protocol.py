"""Request bodies: valid ones become arrays; every kind of bad one is a BadRequest naming
the input and what was expected."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from modelfleet.config.schema import Feature
from modelfleet.gateway.protocol import BadRequest, parse_v1, parse_v2

PIXELS = Feature(name="pixels", dtype="float32", shape=[4])
PLAN = Feature(name="plan", dtype="string")
FEATURES = [PIXELS, PLAN]


def tensor(
    name: str = "pixels", shape: Any = None, datatype: str = "FP32", data: Any = None
) -> dict[str, Any]:
    return {
        "name": name,
        "shape": [1, 4] if shape is None else shape,
        "datatype": datatype,
        "data": [0.5, 1, 2, 3] if data is None else data,
    }


PLAN_TENSOR = {"name": "plan", "shape": [1], "datatype": "BYTES", "data": ["gold"]}


def test_a_v2_request_becomes_one_array_per_feature() -> None:
    request = parse_v2(
        {"id": "r-1", "inputs": [tensor(data=[[0.5, 1, 2, 3]]), PLAN_TENSOR]}, FEATURES
    )
    assert request.id == "r-1" and request.rows == 1
    assert request.inputs["pixels"].dtype == np.float32
    assert request.inputs["pixels"].tolist() == [[0.5, 1.0, 2.0, 3.0]]
    assert request.inputs["plan"].tolist() == ["gold"]


def test_a_v1_request_takes_rows_as_objects_or_bare_values() -> None:
    request = parse_v1({"instances": [{"pixels": [1, 2, 3, 4], "plan": "free"}]}, FEATURES)
    assert request.rows == 1 and request.inputs["pixels"].shape == (1, 4)
    bare = parse_v1({"instances": [[1, 2, 3, 4], [5, 6, 7, 8]]}, [PIXELS])
    assert bare.rows == 2 and bare.inputs["pixels"][1].tolist() == [5, 6, 7, 8]


BAD_V2 = [
    ([1, 2], "must be a JSON object with 'inputs'"),
    ({"inputs": []}, "'inputs' must be a non-empty list"),
    ({"id": 7, "inputs": [tensor()]}, "'id' must be a string"),
    (
        {"inputs": [tensor(name="pixel"), PLAN_TENSOR]},
        "unknown input 'pixel'; the model takes 'pixels', 'plan'",
    ),
    ({"inputs": [tensor()]}, "missing input(s) plan"),
    ({"inputs": [tensor(), tensor(), PLAN_TENSOR]}, "input 'pixels' is given twice"),
    (
        {"inputs": [tensor(datatype="FP64"), PLAN_TENSOR]},
        "input 'pixels': datatype must be FP32, got 'FP64'",
    ),
    (
        {"inputs": [tensor(shape=[1, 5]), PLAN_TENSOR]},
        "input 'pixels': shape must be [n, 4] with n >= 1, got [1, 5]",
    ),
    ({"inputs": [tensor(shape=[0, 4], data=[]), PLAN_TENSOR]}, "shape must be [n, 4] with n >= 1"),
    (
        {"inputs": [tensor(shape="1x4"), PLAN_TENSOR]},
        "shape must be a list of non-negative integers",
    ),
    (
        {"inputs": [tensor(data=[1, 2, 3]), PLAN_TENSOR]},
        "input 'pixels': shape [1, 4] needs 4 values, got 3",
    ),
    (
        {"inputs": [tensor(data=[1, 2, "x", 4]), PLAN_TENSOR]},
        "input 'pixels': values must be numbers, got 'x'",
    ),
    (
        {"inputs": [tensor(data=[1, 2, float("nan"), 4]), PLAN_TENSOR]},
        "values must be finite numbers, got nan",
    ),
    (
        {"inputs": [tensor(data=[1, 2, float("inf"), 4]), PLAN_TENSOR]},
        "values must be finite numbers, got inf",
    ),
    ({"inputs": [tensor(data=[1, 2, True, 4]), PLAN_TENSOR]}, "values must be numbers, got True"),
    (
        {"inputs": [tensor(), {**PLAN_TENSOR, "data": [3]}]},
        "input 'plan': values must be strings, got 3",
    ),
    (
        {"inputs": [tensor(), {**PLAN_TENSOR, "shape": [2], "data": ["a", "b"]}]},
        "inputs must have the same number of rows; got pixels: 1, plan: 2",
    ),
    (
        {"inputs": [tensor(), {"name": "plan", "shape": [1], "datatype": "BYTES"}]},
        "input 'plan': 'data' is missing",
    ),
    ({"inputs": ["pixels"]}, "inputs[0] must be an object"),
]


@pytest.mark.parametrize(("body", "message"), BAD_V2)
def test_a_bad_v2_request_says_what_is_wrong(body: Any, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_v2(body, FEATURES)
    assert message in str(info.value)


BAD_V1 = [
    ({"rows": []}, "a list 'instances'"),
    ({"instances": []}, "'instances' must not be empty"),
    ({"instances": [{"pixels": [1, 2, 3, 4]}]}, "instances[0]: missing input 'plan'"),
    (
        {"instances": [{"pixels": [1, 2, 3, 4], "plan": "a", "x": 1}]},
        "instances[0]: unknown input(s) x",
    ),
    ({"instances": [[1, 2, 3, 4]]}, "instances[0] must be an object with keys 'pixels', 'plan'"),
    (
        {"instances": [{"pixels": [1, 2, 3], "plan": "a"}]},
        "input 'pixels': shape [1, 4] needs 4 values, got 3",
    ),
]


@pytest.mark.parametrize(("body", "message"), BAD_V1)
def test_a_bad_v1_request_says_what_is_wrong(body: Any, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_v1(body, FEATURES)
    assert message in str(info.value)


def test_integers_must_fit_their_type() -> None:
    feature = Feature(name="count", dtype="int32")
    body = {"inputs": [{"name": "count", "shape": [1], "datatype": "INT32", "data": [2**31]}]}
    with pytest.raises(BadRequest, match="does not fit in int32"):
        parse_v2(body, [feature])
