"""The quality gate: what a candidate version must show, offline, before it gets any traffic.

A rollout moves traffic only after its candidate passes the gate. The candidate must load within
`max_load_s`, take the same inputs and give the same labels as the stable version, and be at
least `min_accuracy` accurate on the version's labelled evaluation set. On those same rows it
may lose at most `max_accuracy_drop` of the stable version's accuracy and at most
`max_recall_drop` of its recall on any class, or of its accuracy in any segment: an average can
hide a product the new version no longer recognises. Its single-row p95 latency is measured
last.

Every check is reported, passing or failing, so one run tells a person everything to fix. A
check that could not run (the model did not load, the data is missing) fails and says why.
Nothing a model or a data file does makes the gate raise: those errors become failed checks.
The statistics are pure functions of predictions and labels; loading, reading and timing stay
in `evaluate_gate` and the private helpers at the end of this module.
"""

from __future__ import annotations

import math
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, Literal

import numpy as np

from modelfleet.config.schema import Feature, GateSpec
from modelfleet.errors import InvalidBatch, ModelLoadError
from modelfleet.runtime import Array, Model, VersionSpec, load_model
from modelfleet.runtime.inputs import check_batch

CheckStatus = Literal["pass", "fail"]

LABEL_ARRAY = "label"
NO_EVALUATION_DATA = "no evaluation data: declare evaluation_data on the ModelVersion"
NOT_LOADED = "the candidate did not load"
# Accuracies and recalls are ratios of counts: a candidate exactly at its threshold passes,
# whatever the rounding of `stable - drop`.
TOLERANCE = 1e-9
CHUNK_ROWS = 1024  # rows per predict call on the evaluation set, so memory stays bounded


@dataclass(frozen=True)
class Check:
    """One thing the gate verified: the value measured, the threshold it was held to, and why."""

    name: str
    status: CheckStatus
    value: float | str | None
    threshold: float | str | None
    detail: str

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_dict(self) -> dict[str, Any]:
        """The check as JSON-ready data."""
        return asdict(self)


@dataclass(frozen=True)
class GateReport:
    """Every check of one gate run; the candidate passes only if each of them does."""

    candidate: str
    stable: str | None
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data, the evidence a rollout's timeline keeps."""
        return {
            "candidate": self.candidate,
            "stable": self.stable,
            "passed": self.passed,
            "checks": [c.to_dict() for c in self.checks],
        }

    def summary(self) -> str:
        """One line: that every check passed, or which failed and by how much."""
        failures = self.failures
        if not failures:
            return f"{self.candidate} passed all {len(self.checks)} checks"
        named = ", ".join(_briefly(c) for c in failures)
        return f"{self.candidate} failed {len(failures)} of {len(self.checks)} checks: {named}"


@dataclass(frozen=True)
class Unavailable:
    """Why something checks need is missing; each check that needed it fails, saying so."""

    reason: str
    error: str | None = None  # what went wrong, told in full on the check that ran into it

    @property
    def detail(self) -> str:
        return f"not run: {self.reason}"


@dataclass(frozen=True, eq=False)
class EvaluationSet:
    """Labelled rows, checked against the candidate's inputs.

    `inputs` is a batch of every row, `truth` each row's class index, `segments` each row's
    segment as text (None when the gate declares no segment field).
    """

    inputs: Mapping[str, Array]
    truth: Array
    segments: Array | Unavailable | None

    @property
    def rows(self) -> int:
        return int(self.truth.shape[0])


Predictions = Array | Unavailable  # class indices for every evaluation row, or why there are none


# -- the statistics ------------------------------------------------------------------------------


def accuracy(predicted: Array, truth: Array) -> float:
    """The share of rows predicted right."""
    return float(np.mean(predicted == truth))


def recall(predicted: Array, truth: Array, cls: int) -> float:
    """The share of the rows of class `cls` predicted as `cls`."""
    return accuracy(predicted[truth == cls], truth[truth == cls])


def segment_accuracy(predicted: Array, truth: Array, segments: Array, segment: str) -> float:
    """The accuracy on the rows of one segment."""
    rows = segments == segment
    return accuracy(predicted[rows], truth[rows])


def p95_ms(durations_s: Sequence[float]) -> float:
    """The nearest-rank 95th percentile of durations in seconds, in milliseconds.

    Nearest rank (not interpolation) so the value is a latency some call really had.
    """
    if not durations_s:
        raise ValueError("p95 of no durations")
    ordered = sorted(durations_s)
    return ordered[math.ceil(0.95 * len(ordered)) - 1] * 1000.0


def label_name(cls: int, labels: Sequence[str] | None) -> str:
    """A class's declared label, or its index when it has none."""
    return labels[cls] if labels is not None and 0 <= cls < len(labels) else str(cls)


def schema_differences(candidate: VersionSpec, stable: VersionSpec) -> list[str]:
    """How the candidate's inputs and labels differ from the stable version's; [] if alike."""
    ours = {f.name: _described(f) for f in candidate.features}
    theirs = {f.name: _described(f) for f in stable.features}
    found = [f"input {name} is missing" for name in theirs if name not in ours]
    found += [f"input {name} is new" for name in ours if name not in theirs]
    found += [
        f"input {name} is {ours[name]}, stable has {theirs[name]}"
        for name in ours
        if name in theirs and ours[name] != theirs[name]
    ]
    if not found and list(ours) != list(theirs):
        found.append(f"inputs are in the order {list(ours)}, stable has {list(theirs)}")
    our_labels = None if candidate.labels is None else list(candidate.labels)
    their_labels = None if stable.labels is None else list(stable.labels)
    if our_labels != their_labels:
        found.append(f"labels are {our_labels}, stable has {their_labels}")
    return found


# -- the checks, from what was measured ----------------------------------------------------------


def at_least(name: str, value: float, threshold: float, detail: str) -> Check:
    """Passes when `value >= threshold`."""
    passed = value >= threshold - TOLERANCE
    return Check(name, "pass" if passed else "fail", value, threshold, detail)


def at_most(name: str, value: float, threshold: float, detail: str) -> Check:
    """Passes when `value <= threshold`."""
    passed = value <= threshold + TOLERANCE
    return Check(name, "pass" if passed else "fail", value, threshold, detail)


def not_run(name: str, why: Unavailable) -> Check:
    return Check(name, "fail", None, None, why.detail)


def schema_check(candidate: VersionSpec, stable: VersionSpec | None) -> Check:
    """The candidate takes the stable version's inputs and gives its labels."""
    if stable is None:
        return Check("schema", "pass", None, None, "no stable version to compare with")
    differences = schema_differences(candidate, stable)
    if differences:
        return Check("schema", "fail", None, None, "; ".join(differences))
    return Check("schema", "pass", None, None, f"same inputs and labels as {stable.ref}")


def evaluation_data_check(data: EvaluationSet | Unavailable) -> Check:
    if isinstance(data, Unavailable):
        return Check("evaluation_data", "fail", None, None, data.error or data.detail)
    classes = len(np.unique(data.truth))
    return Check(
        "evaluation_data",
        "pass",
        data.rows,
        None,
        f"{data.rows} labelled rows of {classes} classes",
    )


def compared(
    name: str,
    metric: Callable[[Array], float],
    candidate: Predictions,
    stable: Predictions | None,
    max_drop: float,
) -> Check:
    """The candidate's `metric` against the stable version's less `max_drop`.

    Without a stable version the candidate's value is reported and passes.
    """
    if isinstance(candidate, Unavailable):
        return not_run(name, candidate)
    value = metric(candidate)
    if stable is None:
        return Check(name, "pass", value, None, f"{value:.3f}; no stable version to compare with")
    if isinstance(stable, Unavailable):
        return not_run(name, stable)
    reference = metric(stable)
    return at_least(
        name,
        value,
        max(0.0, reference - max_drop),
        f"{value:.3f}, stable {reference:.3f} on the same rows; allowed drop {max_drop}",
    )


def quality_checks(
    data: EvaluationSet,
    candidate: Predictions,
    stable: Predictions | None,
    labels: Sequence[str] | None,
    spec: GateSpec,
) -> list[Check]:
    """Accuracy, per-class recall and per-segment accuracy, from each version's predictions of
    the same rows; `stable` is None when there is no stable version to compare with."""
    truth = data.truth
    if isinstance(candidate, Unavailable):
        checks = [Check("accuracy", "fail", None, None, candidate.error or candidate.detail)]
    else:
        value = accuracy(candidate, truth)
        checks = [
            at_least(
                "accuracy",
                value,
                spec.min_accuracy,
                f"{int(np.sum(candidate == truth))} of {data.rows} rows predicted right",
            )
        ]
    if stable is not None:
        measure = partial(accuracy, truth=truth)
        checks.append(
            compared("accuracy_vs_stable", measure, candidate, stable, spec.max_accuracy_drop)
        )
    for cls in np.unique(truth).tolist():
        name = f"recall[{label_name(cls, labels)}]"
        measure = partial(recall, truth=truth, cls=cls)
        checks.append(compared(name, measure, candidate, stable, spec.max_recall_drop))
    if isinstance(data.segments, Unavailable):
        checks.append(not_run("segments", data.segments))
    elif data.segments is not None:
        for segment in np.unique(data.segments).tolist():
            measure = partial(
                segment_accuracy, truth=truth, segments=data.segments, segment=segment
            )
            name = f"segment[{segment}]"
            checks.append(compared(name, measure, candidate, stable, spec.max_recall_drop))
    return checks


def without_data(why: Unavailable, has_stable: bool, spec: GateSpec) -> list[Check]:
    """The quality checks, each failed as not run: there are no rows to judge."""
    names = ["accuracy", "accuracy_vs_stable", "recall", "segments"]
    if not has_stable:
        names.remove("accuracy_vs_stable")
    if spec.segment_field is None:
        names.remove("segments")
    return [not_run(name, why) for name in names]


def latency_check(durations_s: Sequence[float] | Unavailable, max_latency_ms: float) -> Check:
    if isinstance(durations_s, Unavailable):
        return Check(
            "latency", "fail", None, max_latency_ms, durations_s.error or durations_s.detail
        )
    p95 = p95_ms(durations_s)
    return at_most(
        "latency", p95, max_latency_ms, f"p95 of {len(durations_s)} single-row predictions, in ms"
    )


def _briefly(check: Check) -> str:
    if isinstance(check.value, float) and isinstance(check.threshold, float):
        return f"{check.name} ({check.value:.3f}, threshold {check.threshold:.3f})"
    return check.name


def _described(feature: Feature) -> str:
    return f"{feature.dtype}{list(feature.shape)}"


# -- the edges: loading, reading, predicting, timing ---------------------------------------------


def evaluate_gate(
    candidate: VersionSpec,
    stable: VersionSpec | None,
    evaluation_data: str | None,
    spec: GateSpec,
    *,
    timer: Callable[[], float] = time.perf_counter,
    latency_samples: int = 50,
) -> GateReport:
    """Run every check of `spec` on `candidate`, against `stable` when there is one.

    `evaluation_data` is the absolute path of the candidate's labelled .npz. Loading and
    latency are timed with `timer`, in seconds. Never raises for what a model or the data does.
    """
    if latency_samples < 1:
        raise ValueError(f"latency_samples must be at least 1, not {latency_samples}")
    model, load_checks = _load_candidate(candidate, spec.max_load_s, timer)
    checks = [*load_checks, schema_check(candidate, stable)]
    data = read_evaluation_set(evaluation_data, candidate.features, spec.segment_field)
    checks.append(evaluation_data_check(data))
    if isinstance(data, Unavailable):
        checks += without_data(data, stable is not None, spec)
    else:
        predicted = model if isinstance(model, Unavailable) else predict_classes(model, data)
        reference = None if stable is None else _stable_predictions(stable, candidate, data)
        checks += quality_checks(data, predicted, reference, candidate.labels, spec)
    durations = _time_single_rows(model, data, candidate.features, timer, latency_samples)
    checks.append(latency_check(durations, spec.max_latency_ms))
    return GateReport(
        str(candidate.ref), None if stable is None else str(stable.ref), tuple(checks)
    )


def read_evaluation_set(
    path: str | None, features: Sequence[Feature], segment_field: str | None
) -> EvaluationSet | Unavailable:
    """The labelled rows of an .npz: one array per feature, `label`, and the segment field's."""
    if path is None:
        return Unavailable("no usable evaluation data", NO_EVALUATION_DATA)
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # one array: a .npy file
            return Unavailable("no usable evaluation data", f"{path} is not an .npz archive")
        with loaded as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        return Unavailable("no usable evaluation data", f"cannot read {path}: {exc}")
    problem = _evaluation_problem(arrays, features)
    if problem is not None:
        return Unavailable("no usable evaluation data", f"evaluation data {path}: {problem}")
    truth = arrays[LABEL_ARRAY].astype(np.int64)
    segments: Array | Unavailable | None = None
    if segment_field is not None:
        segments = _segments(arrays.get(segment_field), segment_field, len(truth))
    inputs = {f.name: arrays[f.name] for f in features}
    return EvaluationSet(inputs, truth, segments)


def _evaluation_problem(arrays: Mapping[str, Array], features: Sequence[Feature]) -> str | None:
    """What makes the arrays unusable as labelled rows for these features, if anything."""
    missing = [n for n in [*(f.name for f in features), LABEL_ARRAY] if n not in arrays]
    if missing:
        return f"no array named {', '.join(missing)} (it has {', '.join(sorted(arrays))})"
    try:
        rows = check_batch({f.name: arrays[f.name] for f in features}, features)
    except InvalidBatch as exc:
        return str(exc)
    label = arrays[LABEL_ARRAY]
    if label.shape != (rows,) or label.dtype.kind not in "iu":
        return (
            f"{LABEL_ARRAY} must be {rows} class indices, not {label.dtype} of shape {label.shape}"
        )
    if label.min() < 0:
        return f"{LABEL_ARRAY} holds negative class indices"
    return None


def _segments(array: Array | None, field: str, rows: int) -> Array | Unavailable:
    if array is None:
        return Unavailable(f"the evaluation data has no array {field!r} naming each row's segment")
    if array.shape != (rows,):
        return Unavailable(f"segment array {field!r} has shape {array.shape}, not ({rows},)")
    return array.astype(str)


def _load_candidate(
    candidate: VersionSpec, max_load_s: float, timer: Callable[[], float]
) -> tuple[Model | Unavailable, list[Check]]:
    start = timer()
    try:
        model = _load(candidate)
    except ModelLoadError as exc:
        checks = [
            Check("load", "fail", None, None, str(exc)),
            not_run("load_time", Unavailable(NOT_LOADED)),
        ]
        return Unavailable(NOT_LOADED), checks
    elapsed = timer() - start
    checks = [
        Check(
            "load", "pass", None, None, f"loaded {candidate.format} artifact {candidate.artifact}"
        ),
        at_most("load_time", elapsed, max_load_s, "seconds to load"),
    ]
    return model, checks


def _load(version: VersionSpec) -> Model:
    return load_model(
        version.format, version.artifact, version.sha256, version.features, version.labels
    )


def predict_classes(model: Model, data: EvaluationSet, who: str = "the candidate") -> Predictions:
    """Class indices for every evaluation row, or the error predicting them raised."""
    parts: list[Array] = []
    for start in range(0, data.rows, CHUNK_ROWS):
        chunk = {name: array[start : start + CHUNK_ROWS] for name, array in data.inputs.items()}
        try:
            parts.append(model.predict(chunk).predictions)
        # Model code may raise anything; the gate reports it and never lets it escape.
        except Exception as exc:
            error = f"predicting the evaluation data raised {type(exc).__name__}: {exc}"
            return Unavailable(f"{who} failed on the evaluation data", f"{who}: {error}")
    predicted = np.concatenate(parts)
    if predicted.dtype.kind not in "iu":
        error = f"{who} predicts {predicted.dtype} values, not class indices"
        return Unavailable(f"{who} is not a classifier", error)
    return predicted


def _stable_predictions(
    stable: VersionSpec, candidate: VersionSpec, data: EvaluationSet
) -> Predictions:
    who = f"stable version {stable.ref}"
    if schema_differences(candidate, stable):
        return Unavailable(f"the candidate's schema differs from {who}'s")
    try:
        model = _load(stable)
    except ModelLoadError as exc:
        return Unavailable(f"{who} did not load: {exc}")
    predicted = predict_classes(model, data, who)
    if isinstance(predicted, Unavailable):
        return Unavailable(predicted.error or predicted.reason)
    return predicted


def _time_single_rows(
    model: Model | Unavailable,
    data: EvaluationSet | Unavailable,
    features: Sequence[Feature],
    timer: Callable[[], float],
    samples: int,
) -> list[float] | Unavailable:
    """Seconds taken by each of `samples` one-row predictions, on evaluation rows in turn or,
    with no usable evaluation data, on zeros."""
    if isinstance(model, Unavailable):
        return model
    if isinstance(data, Unavailable):
        rows = [{f.name: _zeros(f) for f in features}]
    else:
        rows = [
            {n: a[i : i + 1] for n, a in data.inputs.items()}
            for i in range(min(samples, data.rows))
        ]
    durations: list[float] = []
    for i in range(samples):
        row = rows[i % len(rows)]
        start = timer()
        try:
            model.predict(row)
        except Exception as exc:  # model code: reported, never raised
            error = f"a single-row prediction raised {type(exc).__name__}: {exc}"
            return Unavailable("the candidate failed a single-row prediction", error)
        durations.append(timer() - start)
    return durations


def _zeros(feature: Feature) -> Array:
    dtype = np.dtype(np.str_) if feature.dtype == "string" else np.dtype(feature.dtype)
    return np.zeros((1, *feature.shape), dtype=dtype)
