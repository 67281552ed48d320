"""The columns the gateway histograms per feature, and their bin edges from reference data.

Every numeric input element is one column: a scalar feature is its own column, and a feature
of shape (64,) gives the columns `pixels[0]` ... `pixels[63]` (row-major for more dimensions).
The edges are the reference data's deciles, so each bin holds about a tenth of the reference
and drift shows as counts moving between bins, framed by the reference's minimum and (just
above) its maximum: the first and last bins then hold exactly the values outside the range
the reference ever showed, which data-quality monitors count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from modelfleet.config.schema import Feature
from modelfleet.stats.histogram import quantile_edges

NUMERIC = frozenset({"bool", "int32", "int64", "float32", "float64"})


def column_names(features: Sequence[Feature]) -> list[str]:
    """The histogrammed columns of a model's numeric features, in order."""
    names: list[str] = []
    for f in features:
        if f.dtype not in NUMERIC:
            continue
        size = math.prod(f.shape)
        names.extend([f.name] if not f.shape else [f"{f.name}[{i}]" for i in range(size)])
    return names


def feature_columns(
    batch: Mapping[str, npt.NDArray[np.generic]], features: Sequence[Feature]
) -> dict[str, npt.NDArray[np.float64]]:
    """One value per row for every column of `column_names(features)`."""
    columns: dict[str, npt.NDArray[np.float64]] = {}
    for f in features:
        if f.dtype not in NUMERIC or f.name not in batch:
            continue
        values = np.asarray(batch[f.name], dtype=np.float64)
        rows = values.reshape(values.shape[0], -1)
        if not f.shape:
            columns[f.name] = rows[:, 0]
        else:
            for i in range(rows.shape[1]):
                columns[f"{f.name}[{i}]"] = rows[:, i]
    return columns


def reference_columns(
    path: str | Path, features: Sequence[Feature]
) -> dict[str, npt.NDArray[np.float64]]:
    """Every column of a reference `.npz` (one array per feature)."""
    with np.load(path) as data:
        batch = {f.name: np.asarray(data[f.name]) for f in features if f.name in data.files}
    return feature_columns(batch, features)


def range_edges(values: npt.NDArray[np.float64], bins: int = 10) -> tuple[float, ...]:
    """The decile edges of `values`, framed by their minimum and the next float above their
    maximum, so values outside the reference's range fall in the two outer bins only."""
    finite = values[np.isfinite(values)]
    low, high = float(finite.min()), float(np.nextafter(finite.max(), np.inf))
    inner = [e for e in quantile_edges(finite, bins) if low < e < high]
    return (low, *inner, high)


def reference_edges(
    path: str | Path, features: Sequence[Feature], bins: int = 10
) -> dict[str, tuple[float, ...]]:
    """Range and decile edges (`range_edges`) of every column of a reference `.npz`.

    Columns without a finite reference value get no histogram.
    """
    return {
        name: range_edges(values, bins)
        for name, values in reference_columns(path, features).items()
        if np.isfinite(values).any()
    }


def categorical_columns(
    batch: Mapping[str, npt.NDArray[np.generic]], features: Sequence[Feature]
) -> dict[str, list[str]]:
    """One value per row for every element of the string (categorical) features, named as
    `column_names` names numeric ones."""
    columns: dict[str, list[str]] = {}
    for f in features:
        if f.dtype != "string" or f.name not in batch:
            continue
        rows = np.asarray(batch[f.name], dtype=object).reshape(len(batch[f.name]), -1)
        names = [f.name] if not f.shape else [f"{f.name}[{i}]" for i in range(rows.shape[1])]
        for i, name in enumerate(names):
            columns[name] = [_text(v) for v in rows[:, i].tolist()]
    return columns


def reference_categories(
    path: str | Path, features: Sequence[Feature]
) -> dict[str, dict[str, int]]:
    """Each string column's values and how often the reference shows them."""
    if not any(f.dtype == "string" for f in features):
        return {}
    with np.load(path, allow_pickle=False) as data:
        batch = {f.name: np.asarray(data[f.name]) for f in features if f.name in data.files}
    out: dict[str, dict[str, int]] = {}
    for name, values in categorical_columns(batch, features).items():
        counts: dict[str, int] = {}
        for value in values:
            counts[value] = counts.get(value, 0) + 1
        out[name] = counts
    return out


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
