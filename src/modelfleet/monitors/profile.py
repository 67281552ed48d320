"""Reference profiles: what a version's inputs and outputs look like on its reference data.

A profile holds, per input column, the bin edges the gateway histograms that column on (the
reference's deciles framed by its range, `telemetry.edges.range_edges`) with the reference's
counts in those bins, its range, mean, spread and missing count; the class distribution and the
confidence histogram of the version's own predictions on the reference; and, per column, the
drift each statistic shows between chunks of the reference itself (mean + 3 sd), which the
`learned` thresholds use. Monitors compare telemetry windows against it without ever touching
raw requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, delete, insert, select

from modelfleet.runtime import VersionSpec, load_model
from modelfleet.stats import Histogram
from modelfleet.stats.drift import learned_threshold
from modelfleet.store.tables import profiles
from modelfleet.telemetry.edges import range_edges, reference_categories, reference_columns
from modelfleet.telemetry.rollup import CONFIDENCE_EDGES

LEARNED_STATISTICS = ("psi", "ks", "js")
_CHUNK_ROWS = 1024  # rows per predict call on the reference


@dataclass(frozen=True)
class ColumnProfile:
    edges: tuple[float, ...]
    counts: tuple[int, ...]
    missing: int
    minimum: float
    maximum: float
    mean: float
    std: float
    learned: Mapping[str, float] = field(default_factory=dict)  # statistic -> threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "edges": list(self.edges),
            "counts": list(self.counts),
            "missing": self.missing,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "mean": self.mean,
            "std": self.std,
            "learned": dict(self.learned),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnProfile:
        return cls(
            tuple(data["edges"]),
            tuple(data["counts"]),
            int(data["missing"]),
            float(data["minimum"]),
            float(data["maximum"]),
            float(data["mean"]),
            float(data["std"]),
            dict(data.get("learned", {})),
        )


@dataclass(frozen=True)
class Profile:
    model: str
    version: str
    rows: int
    columns: Mapping[str, ColumnProfile]
    classes: Mapping[int, int] | None = None  # predicted class index -> reference rows
    confidence: tuple[int, ...] | None = None  # counts on the rollups' confidence edges
    categories: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # string columns

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "rows": self.rows,
            "columns": {name: c.to_dict() for name, c in self.columns.items()},
            "classes": None
            if self.classes is None
            else {str(k): v for k, v in self.classes.items()},
            "confidence": None if self.confidence is None else list(self.confidence),
            "categories": {name: dict(values) for name, values in self.categories.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Profile:
        classes = data.get("classes")
        confidence = data.get("confidence")
        return cls(
            str(data["model"]),
            str(data["version"]),
            int(data["rows"]),
            {name: ColumnProfile.from_dict(c) for name, c in data["columns"].items()},
            None if classes is None else {int(k): int(v) for k, v in classes.items()},
            None if confidence is None else tuple(int(c) for c in confidence),
            {
                str(name): {str(v): int(n) for v, n in values.items()}
                for name, values in data.get("categories", {}).items()
            },
        )


def column_profile(values: npt.NDArray[np.float64], bins: int = 10) -> ColumnProfile:
    """One column's profile; `values` must hold at least one finite value."""
    finite = values[np.isfinite(values)]
    edges = range_edges(values, bins)
    histogram = Histogram(edges)
    histogram.add_many(values)
    learned = {
        statistic: learned_threshold(finite, statistic, bins=bins)
        for statistic in LEARNED_STATISTICS
    }
    return ColumnProfile(
        edges,
        histogram.counts,
        histogram.missing,
        float(finite.min()),
        float(finite.max()),
        float(finite.mean()),
        float(finite.std()),
        learned,
    )


def build_profile(spec: VersionSpec) -> Profile:
    """The profile of a version from its reference data; ValueError without reference data.

    Loads the version to profile its predictions on the reference too (classifiers).
    """
    if spec.reference_data is None:
        raise ValueError(f"{spec.ref} has no reference data to profile")
    columns = reference_columns(spec.reference_data, spec.features)
    profiled = {
        name: column_profile(values)
        for name, values in columns.items()
        if np.isfinite(values).any()
    }
    with np.load(spec.reference_data) as data:
        rows = min((len(data[f.name]) for f in spec.features if f.name in data.files), default=0)
    classes: dict[int, int] | None = None
    confidence: tuple[int, ...] | None = None
    if spec.labels is not None and rows:
        model = load_model(spec.format, spec.artifact, spec.sha256, spec.features, spec.labels)
        with np.load(spec.reference_data) as data:
            batch = {f.name: np.asarray(data[f.name]) for f in spec.features}
        counts = np.zeros(len(spec.labels), dtype=np.int64)
        histogram = Histogram(CONFIDENCE_EDGES)
        for start in range(0, rows, _CHUNK_ROWS):
            chunk = {
                f.name: _typed(batch[f.name][start : start + _CHUNK_ROWS], f.dtype)
                for f in spec.features
            }
            outputs = model.predict(chunk)
            counts += np.bincount(outputs.predictions, minlength=len(spec.labels))
            if outputs.confidences is not None:
                histogram.add_many(outputs.confidences)
        classes = {i: int(n) for i, n in enumerate(counts.tolist()) if n}
        confidence = histogram.counts if histogram.total else None
    categories = reference_categories(spec.reference_data, spec.features)
    return Profile(spec.model, spec.version, rows, profiled, classes, confidence, categories)


def _typed(values: npt.NDArray[Any], dtype: str) -> npt.NDArray[Any]:
    """Reference values in the feature's declared dtype; strings stay as they were saved."""
    return values if dtype == "string" else values.astype(dtype)


def write_profile(conn: Connection, profile: Profile, *, now: datetime) -> None:
    conn.execute(
        delete(profiles).where(
            profiles.c.model == profile.model, profiles.c.version == profile.version
        )
    )
    conn.execute(
        insert(profiles).values(
            model=profile.model,
            version=profile.version,
            rows=profile.rows,
            payload=profile.to_dict(),
            created_at=now,
        )
    )


def read_profile(conn: Connection, model: str, version: str) -> Profile | None:
    payload = conn.execute(
        select(profiles.c.payload).where(profiles.c.model == model, profiles.c.version == version)
    ).scalar_one_or_none()
    return None if payload is None else Profile.from_dict(payload)
