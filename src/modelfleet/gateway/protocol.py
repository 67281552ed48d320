"""Request and response bodies: the Open Inference Protocol v2 and modelfleet's plain JSON.

Everything a client sends is checked against the model's input schema here, before any work
is queued, so a bad request costs nothing and gets a 400 that names the input and what was
expected. See https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/
for the v2 REST message shapes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelfleet.config.schema import Feature
from modelfleet.errors import InvalidInput
from modelfleet.runtime.model import Outputs

# Open Inference Protocol tensor datatypes of the dtypes a fleet file may declare.
DATATYPES: Mapping[str, str] = {
    "bool": "BOOL",
    "int32": "INT32",
    "int64": "INT64",
    "float32": "FP32",
    "float64": "FP64",
    "string": "BYTES",
}
_NUMPY: Mapping[str, Any] = {
    "bool": np.bool_,
    "int32": np.int32,
    "int64": np.int64,
    "float32": np.float32,
    "float64": np.float64,
    "string": np.object_,
}


class BadRequest(InvalidInput):
    """A request body that does not fit the protocol or the model's schema (HTTP 400)."""


# The longest request id kept: the prediction log's and feedback's request_id column.
MAX_REQUEST_ID = 128
# The most rows one feedback request may label.
MAX_FEEDBACK_ROWS = 10_000


@dataclass(frozen=True)
class InferRequest:
    """A validated request: one array per feature, all with the same number of rows."""

    id: str | None
    inputs: dict[str, np.ndarray]
    rows: int


def parse_v2(body: Any, features: Sequence[Feature]) -> InferRequest:
    """Check an Open Inference Protocol v2 infer request against the model's features."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object with 'inputs'")
    request_id = body.get("id")
    if request_id is not None:
        check_request_id(request_id, "'id'")
    tensors = body.get("inputs")
    if not isinstance(tensors, list) or not tensors:
        raise BadRequest("'inputs' must be a non-empty list of tensors")
    declared = {f.name: f for f in features}
    arrays: dict[str, np.ndarray] = {}
    for i, tensor in enumerate(tensors):
        if not isinstance(tensor, dict):
            raise BadRequest(f"inputs[{i}] must be an object with name, shape, datatype, data")
        name = tensor.get("name")
        if name not in declared:
            raise BadRequest(
                f"inputs[{i}]: unknown input {name!r}; the model takes {_names(features)}"
            )
        if name in arrays:
            raise BadRequest(f"input {name!r} is given twice")
        arrays[name] = _tensor(tensor, declared[name])
    missing = [f.name for f in features if f.name not in arrays]
    if missing:
        raise BadRequest(
            f"missing input(s) {', '.join(missing)}; the model takes {_names(features)}"
        )
    return InferRequest(request_id, arrays, _rows(arrays))


def check_request_id(value: Any, what: str) -> str:
    """A request id as clients may send it: a string of 1 to 128 characters, none of them
    control characters (it is echoed in the `X-Request-Id` response header)."""
    if not isinstance(value, str):
        raise BadRequest(f"{what} must be a string")
    if not 1 <= len(value) <= MAX_REQUEST_ID:
        raise BadRequest(f"{what} must be 1 to {MAX_REQUEST_ID} characters, got {len(value)}")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise BadRequest(f"{what} must not contain control characters")
    return value


def request_id_header(value: bytes | None) -> str | None:
    """The id an `X-Request-Id` header carries, checked like a body's id."""
    if value is None:
        return None
    try:
        text = value.decode()
    except UnicodeDecodeError as exc:
        raise BadRequest("X-Request-Id must be UTF-8 text") from exc
    return check_request_id(text, "X-Request-Id")


def parse_v1(body: Any, features: Sequence[Feature]) -> InferRequest:
    """Check a plain JSON request: `{"instances": [row, ...]}` where a row is an object of
    feature values, or, for a model with one feature, the value itself."""
    if not isinstance(body, dict) or not isinstance(body.get("instances"), list):
        raise BadRequest("the request body must be a JSON object with a list 'instances'")
    instances: list[Any] = body["instances"]
    if not instances:
        raise BadRequest("'instances' must not be empty")
    columns: dict[str, list[Any]] = {f.name: [] for f in features}
    for i, row in enumerate(instances):
        if len(features) == 1 and not isinstance(row, dict):
            row = {features[0].name: row}
        if not isinstance(row, dict):
            raise BadRequest(f"instances[{i}] must be an object with keys {_names(features)}")
        unknown = sorted(set(row) - set(columns))
        if unknown:
            raise BadRequest(f"instances[{i}]: unknown input(s) {', '.join(unknown)}")
        for f in features:
            if f.name not in row:
                raise BadRequest(f"instances[{i}]: missing input {f.name!r}")
            columns[f.name].append(row[f.name])
    arrays = {
        f.name: _array(columns[f.name], f, [len(instances), *f.shape], f"input {f.name!r}")
        for f in features
    }
    return InferRequest(None, arrays, len(instances))


@dataclass(frozen=True)
class FeedbackRequest:
    """A validated `POST /v1/feedback` body: the true label of each (row, label) of a request."""

    model: str
    request_id: str
    labels: tuple[tuple[int, str], ...]


FEEDBACK_FIELDS = ("model", "id", "label", "labels", "row")


def parse_feedback(body: Any) -> FeedbackRequest:
    """Check a feedback body: `{"model", "id", "label"}` (row 0, or `"row": k`), or
    `{"model", "id", "labels": [...]}` where the i-th label is row i's."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object with 'model', 'id' and 'label'")
    unknown = sorted(set(body) - set(FEEDBACK_FIELDS))
    if unknown:
        raise BadRequest(
            f"unknown field(s) {', '.join(unknown)}; feedback takes {', '.join(FEEDBACK_FIELDS)}"
        )
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' must be the name of a model")
    if "id" not in body:
        raise BadRequest("'id' is missing: the id of the request the feedback is about")
    request_id = check_request_id(body["id"], "'id'")
    if ("label" in body) == ("labels" in body):
        raise BadRequest("give either 'label' (one row) or 'labels' (one per row)")
    if "labels" in body:
        labels = body["labels"]
        if "row" in body:
            raise BadRequest("'row' goes with a single 'label'; 'labels' gives every row from 0")
        if not isinstance(labels, list) or not labels or len(labels) > MAX_FEEDBACK_ROWS:
            raise BadRequest(f"'labels' must be a list of 1 to {MAX_FEEDBACK_ROWS} labels")
        for i, label in enumerate(labels):
            if not isinstance(label, str):
                raise BadRequest(f"labels[{i}] must be a string, got {label!r}")
        return FeedbackRequest(model, request_id, tuple(enumerate(labels)))
    label, row = body["label"], body.get("row", 0)
    if not isinstance(label, str):
        raise BadRequest(f"'label' must be a string, got {label!r}")
    if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row < MAX_FEEDBACK_ROWS:
        raise BadRequest(f"'row' must be an integer from 0 to {MAX_FEEDBACK_ROWS - 1}")
    return FeedbackRequest(model, request_id, ((row, label),))


def _names(features: Sequence[Feature]) -> str:
    return ", ".join(repr(f.name) for f in features)


def _rows(arrays: Mapping[str, np.ndarray]) -> int:
    rows: dict[str, int] = {name: int(a.shape[0]) for name, a in arrays.items()}
    if len(set(rows.values())) != 1:
        detail = ", ".join(f"{n}: {r}" for n, r in rows.items())
        raise BadRequest(f"inputs must have the same number of rows; got {detail}")
    return next(iter(rows.values()))


def _tensor(tensor: Mapping[str, Any], feature: Feature) -> np.ndarray:
    name = feature.name
    expected_type = DATATYPES[feature.dtype]
    datatype = tensor.get("datatype")
    if datatype != expected_type:
        raise BadRequest(f"input {name!r}: datatype must be {expected_type}, got {datatype!r}")
    shape = tensor.get("shape")
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise BadRequest(f"input {name!r}: shape must be a list of non-negative integers")
    expected = ["n", *feature.shape]
    if len(shape) != len(expected) or shape[1:] != feature.shape or shape[0] < 1:
        shown = "[" + ", ".join(str(d) for d in expected) + "]"
        raise BadRequest(f"input {name!r}: shape must be {shown} with n >= 1, got {shape}")
    if "data" not in tensor:
        raise BadRequest(f"input {name!r}: 'data' is missing")
    return _array(tensor["data"], feature, shape, f"input {name!r}")


def _array(data: Any, feature: Feature, shape: list[int], what: str) -> np.ndarray:
    flat = _flatten(data)
    size = math.prod(shape)
    if len(flat) != size:
        raise BadRequest(f"{what}: shape {shape} needs {size} values, got {len(flat)}")
    for value in flat:
        _check_value(value, feature.dtype, what)
    return np.asarray(flat, dtype=_NUMPY[feature.dtype]).reshape(shape)


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    out: list[Any] = []
    stack: list[Any] = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            out.append(item)
        else:
            stack.pop()
    return out


def _check_value(value: Any, dtype: str, what: str) -> None:
    if dtype == "string":
        if not isinstance(value, str):
            raise BadRequest(f"{what}: values must be strings, got {value!r}")
    elif dtype == "bool":
        if not isinstance(value, bool):
            raise BadRequest(f"{what}: values must be true or false, got {value!r}")
    elif dtype.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadRequest(f"{what}: values must be integers, got {value!r}")
        bits = 32 if dtype == "int32" else 64
        if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
            raise BadRequest(f"{what}: {value} does not fit in {dtype}")
    else:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadRequest(f"{what}: values must be numbers, got {value!r}")
        if not math.isfinite(value):
            raise BadRequest(f"{what}: values must be finite numbers, got {value!r}")


def _outputs_v2(outputs: Outputs, labels: Sequence[str] | None) -> list[dict[str, Any]]:
    n = len(outputs)
    if labels is None:
        values = outputs.predictions
        datatype = "INT64" if values.dtype.kind in "biu" else "FP64"
        return [{"name": "prediction", "shape": [n], "datatype": datatype, "data": values.tolist()}]
    out: list[dict[str, Any]] = [
        {
            "name": "label",
            "shape": [n],
            "datatype": "BYTES",
            "data": [labels[i] for i in outputs.predictions.tolist()],
        },
        {"name": "class", "shape": [n], "datatype": "INT64", "data": outputs.predictions.tolist()},
    ]
    if outputs.confidences is not None:
        out.append(
            {
                "name": "confidence",
                "shape": [n],
                "datatype": "FP32",
                "data": outputs.confidences.astype(float).tolist(),
            }
        )
    if outputs.probabilities is not None:
        p = outputs.probabilities
        out.append(
            {
                "name": "probabilities",
                "shape": list(p.shape),
                "datatype": "FP32",
                "data": p.astype(float).ravel().tolist(),
            }
        )
    return out


def output_names(labels: Sequence[str] | None) -> list[str]:
    """The outputs a model answers with, for its metadata."""
    return ["prediction"] if labels is None else ["label", "class", "confidence", "probabilities"]


def render_v2(
    body: Any,
    request: InferRequest,
    model: str,
    version: str,
    outputs: Outputs,
    labels: Sequence[str] | None,
) -> dict[str, Any]:
    """An Open Inference Protocol v2 infer response, limited to the outputs the request named."""
    tensors = _outputs_v2(outputs, labels)
    wanted = body.get("outputs") if isinstance(body, dict) else None
    if wanted is not None:
        if not isinstance(wanted, list) or not all(
            isinstance(w, dict) and isinstance(w.get("name"), str) for w in wanted
        ):
            raise BadRequest("'outputs' must be a list of objects with a 'name'")
        names = [w["name"] for w in wanted]
        known = {t["name"]: t for t in tensors}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise BadRequest(
                f"unknown output(s) {', '.join(unknown)}; the model gives {', '.join(known)}"
            )
        tensors = [known[n] for n in names]
    response: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": tensors}
    if request.id is not None:
        response["id"] = request.id
    return response


def render_v1(
    model: str, version: str, outputs: Outputs, labels: Sequence[str] | None
) -> dict[str, Any]:
    """The plain JSON response: predictions (labels for a classifier), confidences, version."""
    predictions = outputs.predictions.tolist()
    response: dict[str, Any] = {
        "model": model,
        "version": version,
        "predictions": predictions if labels is None else [labels[i] for i in predictions],
    }
    if outputs.confidences is not None:
        response["confidences"] = outputs.confidences.astype(float).tolist()
    return response


def metadata_v2(
    model: str,
    versions: Sequence[str],
    platform: str,
    features: Sequence[Feature],
    labels: Sequence[str] | None,
) -> dict[str, Any]:
    """Model metadata as the v2 protocol's `GET /v2/models/{model}` gives it."""
    n_classes = [len(labels)] if labels is not None else []
    shapes = {"label": [-1], "class": [-1], "confidence": [-1], "probabilities": [-1, *n_classes]}
    types = {"label": "BYTES", "class": "INT64", "confidence": "FP32", "probabilities": "FP32"}
    outputs = [
        {"name": name, "datatype": types.get(name, "FP64"), "shape": shapes.get(name, [-1])}
        for name in output_names(labels)
    ]
    return {
        "name": model,
        "versions": list(versions),
        "platform": platform,
        "inputs": [
            {"name": f.name, "datatype": DATATYPES[f.dtype], "shape": [-1, *f.shape]}
            for f in features
        ],
        "outputs": outputs,
    }
