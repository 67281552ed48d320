"""The monitors' verdicts on one window against its version's reference profile. Pure.

Drift (per input column, on the profile's bins): the population stability index, the
Kolmogorov-Smirnov and Jensen-Shannon distances, and the Wasserstein distance where asked. These
are effect sizes, not significance tests: on a busy tenant a test turns significant on any tiny
shift, while an effect size stays put until the distribution really moves. A column drifts when a
statistic passes its threshold: the fixed ones of `DriftSpec`, or with `thresholds: learned` the
reference's own chunk-to-chunk variation for that column and statistic (mean + 3 sd). The input has
drifted when the share of drifted columns reaches `drifted_share`; the predictions have drifted
when their class distribution's PSI reaches `prediction_psi`.

Data quality: per column, the share of values outside the reference's range (the outer bins of
the profile's edges) and of missing ones; the share of requests refused as malformed.

Output quality: mean confidence, the share of low-confidence predictions, the class distribution,
and accuracy: labelled (from feedback) and estimated from the confidences (confidence-based
performance estimation: a calibrated classifier is right as often as it is confident, so the
mean confidence estimates accuracy without labels), with their gap when labels exist.

Each verdict is `ok`, `warning` or `alert` (or `insufficient` below `min_rows`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from modelfleet.config.schema import DriftSpec, MonitoringSpec, QualitySpec
from modelfleet.monitors.profile import Profile
from modelfleet.monitors.window import Window
from modelfleet.stats.drift import chi_square, js_distance, ks_binned, psi, wasserstein_binned
from modelfleet.stats.histogram import midpoint_mean

Status = Literal["ok", "warning", "alert", "insufficient"]
_SEVERITY: dict[str, int] = {"insufficient": -1, "ok": 0, "warning": 1, "alert": 2}


@dataclass(frozen=True)
class Verdict:
    monitor: str  # drift, data_quality, output_quality
    status: Status
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ColumnDrift:
    name: str
    psi: float
    ks: float | None  # None for a categorical column: its values have no order
    js: float
    wasserstein: float | None
    thresholds: Mapping[str, float]
    drifted: bool
    warning: bool
    chi_square_p: float | None = None  # categorical columns: the test beside the effect sizes

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "thresholds": dict(self.thresholds)}


def worst(statuses: list[Status]) -> Status:
    return max(statuses, key=lambda s: _SEVERITY[s]) if statuses else "ok"


def judge(
    window: Window, profile: Profile, spec: MonitoringSpec, labelled: tuple[int, int] | None = None
) -> list[Verdict]:
    """Every monitor's verdict on `window`; `labelled` is (correct, labelled) rows from feedback."""
    if window.rows < spec.min_rows:
        reason = f"{window.rows} rows in the window, fewer than the {spec.min_rows} needed"
        return [
            Verdict(m, "insufficient", reason) for m in ("drift", "data_quality", "output_quality")
        ]
    return [
        judge_drift(window, profile, spec.drift),
        judge_data_quality(window, profile, spec.quality),
        judge_output_quality(window, profile, spec.quality, labelled),
    ]


def column_drift(
    name: str,
    edges: tuple[float, ...],
    expected: tuple[int, ...],
    actual: tuple[int, ...],
    learned: Mapping[str, float],
    spec: DriftSpec,
) -> ColumnDrift:
    """One column's drift between the reference's and the window's counts on the same bins."""
    values = {
        "psi": psi(expected, actual),
        "ks": ks_binned(expected, actual),
        "js": js_distance(expected, actual),
    }
    thresholds = {"psi": spec.psi_alert, "ks": spec.ks, "js": spec.js}
    if spec.thresholds == "learned":
        thresholds = {s: learned.get(s, t) for s, t in thresholds.items()}
    wasserstein = None
    if spec.wasserstein is not None:
        wasserstein = values["wasserstein"] = wasserstein_binned(edges, expected, actual)
        thresholds["wasserstein"] = spec.wasserstein
    drifted = any(values[s] >= thresholds[s] for s in values)
    warning_at = min(spec.psi_warning, thresholds["psi"])
    return ColumnDrift(
        name,
        values["psi"],
        values["ks"],
        values["js"],
        wasserstein,
        thresholds,
        drifted,
        values["psi"] >= warning_at,
    )


def categorical_drift(
    name: str, reference: Mapping[str, int], current: Mapping[str, int], spec: DriftSpec
) -> ColumnDrift:
    """A string column's drift: PSI and JS on the frequencies of its values (those of both
    sides), and a chi-square test reported beside them; values new to the reference count."""
    values = sorted(set(reference) | set(current))
    expected = [reference.get(v, 0) for v in values]
    actual = [current.get(v, 0) for v in values]
    measured = {"psi": psi(expected, actual), "js": js_distance(expected, actual)}
    thresholds = {"psi": spec.psi_alert, "js": spec.js}
    return ColumnDrift(
        name,
        measured["psi"],
        None,
        measured["js"],
        None,
        thresholds,
        any(measured[s] >= thresholds[s] for s in measured),
        measured["psi"] >= spec.psi_warning,
        chi_square(expected, actual).p_value,
    )


def judge_drift(window: Window, profile: Profile, spec: DriftSpec) -> Verdict:
    columns: list[ColumnDrift] = []
    for name, column in profile.columns.items():
        current = window.features.get(name)
        if current is None or current.total == 0 or current.edges != column.edges:
            continue
        columns.append(
            column_drift(name, column.edges, column.counts, current.counts, column.learned, spec)
        )
    for name, reference in profile.categories.items():
        seen = window.categories.get(name)
        if seen:
            columns.append(categorical_drift(name, reference, seen, spec))
    columns.sort(key=lambda c: (c.drifted, c.psi), reverse=True)
    drifted = [c for c in columns if c.drifted]
    share = len(drifted) / len(columns) if columns else 0.0
    prediction = _prediction_drift(window, profile)
    status: Status = "ok"
    reasons = []
    if columns and share >= spec.drifted_share:
        status = "alert"
        top = ", ".join(f"{c.name} (PSI {c.psi:.2f})" for c in drifted[:5])
        reasons.append(f"{len(drifted)} of {len(columns)} features drifted ({share:.0%}): {top}")
    elif drifted or any(c.warning for c in columns):
        status = "warning"
        moving = drifted or [c for c in columns if c.warning]
        top = ", ".join(f"{c.name} (PSI {c.psi:.2f})" for c in moving[:5])
        reasons.append(f"{len(moving)} of {len(columns)} features moving: {top}")
    if prediction is not None and prediction["psi"] >= spec.prediction_psi:
        status = "alert"
        reasons.append(f"predicted classes drifted (PSI {prediction['psi']:.2f})")
    return Verdict(
        "drift",
        status,
        "; ".join(reasons) or f"no drift in {len(columns)} features",
        {
            "drifted_share": share,
            "drifted_share_threshold": spec.drifted_share,
            "features": [c.to_dict() for c in columns],
            "prediction": prediction,
        },
    )


def _prediction_drift(window: Window, profile: Profile) -> dict[str, float] | None:
    if profile.classes is None or not window.classes:
        return None
    k = max([*profile.classes, *window.classes]) + 1
    expected = [profile.classes.get(i, 0) for i in range(k)]
    actual = [window.classes.get(i, 0) for i in range(k)]
    return {
        "psi": psi(expected, actual),
        "js": js_distance(expected, actual),
        "chi_square_p": chi_square(expected, actual).p_value,
    }


def judge_data_quality(window: Window, profile: Profile, spec: QualitySpec) -> Verdict:
    out_of_range: dict[str, float] = {}
    missing: dict[str, float] = {}
    for name, histogram in window.features.items():
        total = histogram.total
        if not total:
            continue
        counts = histogram.counts
        column = profile.columns.get(name)
        if column is not None and histogram.edges == column.edges:
            out_of_range[name] = (counts[0] + counts[-1]) / total
        missing[name] = histogram.missing / total
    rejected = window.status["4xx"] / window.requests if window.requests else 0.0
    bad = sorted(
        ((name, rate) for name, rate in out_of_range.items() if rate > spec.max_out_of_range),
        key=lambda item: item[1],
        reverse=True,
    )
    reasons = []
    if bad:
        top = ", ".join(f"{n} {r:.1%}" for n, r in bad[:5])
        reasons.append(f"{len(bad)} features outside the reference range: {top}")
    if rejected > spec.max_rejected:
        reasons.append(f"{rejected:.1%} of requests refused as malformed")
    return Verdict(
        "data_quality",
        "alert" if reasons else "ok",
        "; ".join(reasons) or "inputs within the reference ranges",
        {
            "rejected_rate": rejected,
            "out_of_range": dict(sorted(out_of_range.items(), key=lambda i: -i[1])[:20]),
            "max_out_of_range": max(out_of_range.values(), default=0.0),
            "missing_rate": max(missing.values(), default=0.0),
        },
    )


def judge_output_quality(
    window: Window, profile: Profile, spec: QualitySpec, labelled: tuple[int, int] | None = None
) -> Verdict:
    confidence = window.confidence
    total = confidence.total - confidence.missing
    details: dict[str, Any] = {"classes": {str(k): v for k, v in sorted(window.classes.items())}}
    reasons = []
    if total:
        edges = confidence.edges
        mean = midpoint_mean(confidence) or 0.0
        low = sum(
            c
            for c, upper in zip(confidence.counts, [*edges, 2.0], strict=True)
            if upper <= spec.low_confidence
        )
        low_rate = low / total
        details |= {
            "mean_confidence": mean,
            "low_confidence_rate": low_rate,
            "estimated_accuracy": mean,
        }
        if low_rate > spec.max_low_confidence:
            reasons.append(
                f"{low_rate:.1%} low-confidence predictions (under {spec.low_confidence})"
            )
        if mean < spec.min_confidence:
            reasons.append(f"mean confidence {mean:.3f} under {spec.min_confidence}")
    if labelled is not None:
        correct, count = labelled
        details["labelled_rows"] = count
        if count:
            accuracy = correct / count
            details["labelled_accuracy"] = accuracy
            if "estimated_accuracy" in details:
                details["estimate_error"] = details["estimated_accuracy"] - accuracy
            if count >= spec.min_labels and accuracy < spec.min_accuracy:
                reasons.append(
                    f"accuracy {accuracy:.1%} on {count} labelled rows, under {spec.min_accuracy:.0%}"
                )
    return Verdict(
        "output_quality",
        "alert" if reasons else "ok",
        "; ".join(reasons) or "outputs as confident as expected",
        details,
    )
