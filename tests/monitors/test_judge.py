"""The monitors' verdicts on windows built by hand, against profiles built from data."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from modelfleet.config.schema import DriftSpec, MonitoringSpec, QualitySpec
from modelfleet.monitors.judge import judge, judge_data_quality, judge_drift, judge_output_quality
from modelfleet.monitors.profile import Profile, column_profile
from modelfleet.monitors.window import Window
from modelfleet.stats import Histogram
from modelfleet.telemetry.rollup import CONFIDENCE_EDGES

START, END = datetime(2026, 1, 1, 9, tzinfo=UTC), datetime(2026, 1, 1, 10, tzinfo=UTC)


def profile_of(columns: dict[str, np.ndarray], classes: dict[int, int] | None = None) -> Profile:
    return Profile("m", "v1", 2000, {n: column_profile(v) for n, v in columns.items()}, classes)


def window_of(profile: Profile, columns: dict[str, np.ndarray], **extra: object) -> Window:
    window = Window("acme", "m", "v1", START, END)
    for name, values in columns.items():
        histogram = Histogram(profile.columns[name].edges)
        histogram.add_many(values)
        window.features[name] = histogram
    window.rows = len(next(iter(columns.values())))
    window.status["2xx"] = window.rows
    for key, value in extra.items():
        setattr(window, key, value)
    return window


rng = np.random.default_rng(3)
REFERENCE = {f"x{i}": rng.normal(size=2000) for i in range(10)}


def test_the_same_distribution_has_not_drifted() -> None:
    profile = profile_of(REFERENCE)
    fresh = {n: np.random.default_rng(9).normal(size=1000) for n in REFERENCE}
    verdict = judge_drift(window_of(profile, fresh), profile, DriftSpec())
    assert verdict.status in ("ok", "warning")
    assert verdict.details["drifted_share"] == 0


def test_shifted_features_drift_ranked_worst_first_with_values_and_thresholds() -> None:
    profile = profile_of(REFERENCE)
    current = {n: np.random.default_rng(9).normal(size=1000) for n in REFERENCE}
    current["x3"] = current["x3"] + 2.0
    current["x7"] = current["x7"] * 3.0
    current["x1"] = current["x1"] + 0.8
    verdict = judge_drift(window_of(profile, current), profile, DriftSpec(drifted_share=0.3))
    names = [f["name"] for f in verdict.details["features"] if f["drifted"]]
    assert set(names) == {"x1", "x3", "x7"}
    assert names[0] == "x3"  # the largest shift first
    assert verdict.status == "alert" and "3 of 10 features drifted" in verdict.reason
    top = verdict.details["features"][0]
    assert top["thresholds"] == {"psi": 0.25, "ks": 0.2, "js": 0.2} and top["psi"] > 1


def test_learned_thresholds_come_from_the_reference_variation() -> None:
    profile = profile_of(REFERENCE)
    learned = profile.columns["x0"].learned
    assert set(learned) == {"psi", "ks", "js"} and all(v > 0 for v in learned.values())
    current = {n: np.random.default_rng(9).normal(size=1000) for n in REFERENCE}
    verdict = judge_drift(window_of(profile, current), profile, DriftSpec(thresholds="learned"))
    thresholds = verdict.details["features"][0]["thresholds"]
    name = verdict.details["features"][0]["name"]
    assert thresholds["psi"] == profile.columns[name].learned["psi"]


def test_values_outside_the_reference_range_are_a_data_quality_alert() -> None:
    profile = profile_of({"x0": REFERENCE["x0"]})
    current = {
        "x0": np.concatenate([np.random.default_rng(1).normal(size=900), np.full(100, 50.0)])
    }
    verdict = judge_data_quality(window_of(profile, current), profile, QualitySpec())
    assert verdict.status == "alert"
    assert abs(verdict.details["out_of_range"]["x0"] - 0.1) < 0.01


def test_low_confidence_and_prediction_drift_and_estimated_accuracy() -> None:
    profile = profile_of({"x0": REFERENCE["x0"]}, classes={0: 500, 1: 500})
    confidence = Histogram(CONFIDENCE_EDGES)
    confidence.add_many([0.35] * 300 + [0.95] * 700)
    window = window_of(
        profile, {"x0": REFERENCE["x0"][:1000]}, classes={0: 950, 1: 50}, confidence=confidence
    )
    output = judge_output_quality(window, profile, QualitySpec(), labelled=(60, 100))
    assert output.status == "alert" and "30.0% low-confidence" in output.reason
    assert abs(output.details["estimated_accuracy"] - (0.3 * 0.35 + 0.7 * 0.95)) < 1e-9
    assert output.details["labelled_accuracy"] == 0.6
    assert abs(output.details["estimate_error"] - (0.77 - 0.6)) < 1e-9
    drift = judge_drift(window, profile, DriftSpec())
    assert drift.status == "alert" and "predicted classes drifted" in drift.reason


def test_a_small_window_is_not_judged() -> None:
    profile = profile_of({"x0": REFERENCE["x0"]})
    window = window_of(profile, {"x0": REFERENCE["x0"][:50]})
    verdicts = judge(window, profile, MonitoringSpec(min_rows=200))
    assert {v.status for v in verdicts} == {"insufficient"}
