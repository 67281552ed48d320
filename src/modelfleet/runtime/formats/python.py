"""Plain Python functions: an artifact `path/to/file.py:function`.

The file is imported as a module of its own, named after the artifact's hash and a fresh
suffix, so two versions (or two deployments of one version) never share module state even
when their files have the same name. The verified bytes are the ones executed: the file is
not read a second time. `function(batch: dict[str, np.ndarray]) -> np.ndarray` returns
`(n, k)` class probabilities or `(n,)` predictions.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modelfleet.config.schema import Feature
from modelfleet.errors import ModelLoadError, PredictionError
from modelfleet.registry.artifacts import split_callable
from modelfleet.runtime.inputs import check_batch
from modelfleet.runtime.model import Batch, Outputs


def split_artifact(artifact: str) -> tuple[Path, str]:
    """`path/to/file.py:function` as the file's path and the function's name."""
    path, function = split_callable(artifact, "python")
    if function is None or not path:
        raise ModelLoadError(artifact, "a python artifact is written path/to/file.py:function")
    return Path(path), function


class PythonModel:
    """A Python function behind the `Model` contract."""

    def __init__(
        self,
        function: Callable[[dict[str, Any]], Any],
        features: Sequence[Feature],
        labels: Sequence[str] | None,
    ) -> None:
        self.function = function
        self.features = tuple(features)
        self.labels = None if labels is None else tuple(labels)

    def predict(self, batch: Batch) -> Outputs:
        """Predict for every row of `batch`."""
        rows = check_batch(batch, self.features)
        try:
            result = np.asarray(self.function(dict(batch)))
        except Exception as exc:
            raise PredictionError(f"{self.function.__name__} raised {exc!r}") from exc
        if result.ndim == 2 and result.shape[1] >= 2:
            return Outputs.from_probabilities(result, rows, self.labels)
        return Outputs.from_predictions(result, rows, self.labels)


def load(
    data: bytes, artifact: str, features: Sequence[Feature], labels: Sequence[str] | None
) -> PythonModel:
    """Import the artifact's file from `data` and take its function."""
    path, function_name = split_artifact(artifact)
    digest = hashlib.sha256(data).hexdigest()[:16]
    module_name = f"modelfleet_artifact_{digest}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None:
        raise ModelLoadError(artifact, f"{path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    # Registered before running, as `import` does: dataclasses and pickle look modules up there.
    sys.modules[module_name] = module
    try:
        function = _run(data, path, module.__dict__, function_name, artifact)
    except BaseException:
        del sys.modules[module_name]
        raise
    return PythonModel(function, features, labels)


def _run(
    data: bytes, path: Path, namespace: dict[str, Any], function_name: str, artifact: str
) -> Callable[[dict[str, Any]], Any]:
    """Execute a module's source in `namespace` and return its function."""
    try:
        exec(compile(data, str(path), "exec"), namespace)
    except Exception as exc:
        raise ModelLoadError(artifact, f"importing it raised {exc!r}") from exc
    function: object = namespace.get(function_name)
    if not callable(function):
        raise ModelLoadError(artifact, f"{path} has no function {function_name}")
    return function
