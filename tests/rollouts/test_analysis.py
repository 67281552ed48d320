"""Canary judgement on pooled rollups: tolerances and significance, metric by metric."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest

from modelfleet.config.schema import AnalysisSpec
from modelfleet.rollouts.analysis import Judgement, MetricResult, judge
from modelfleet.telemetry.rollup import Rollup, RollupKey

MINUTE = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MEDIAN_S = 0.030


def traffic(
    version: str,
    requests: int,
    *,
    seed: int,
    slower: float = 1.0,
    error_rate: float = 0.002,
    confidence: tuple[float, float] | None = (8.0, 2.0),
    shadow: bool = False,
) -> Rollup:
    """A version's rollup: lognormal latencies, random 5xx, beta-distributed confidences."""
    rng = np.random.default_rng(seed)
    rollup = Rollup(RollupKey("t", "m", version, "local", MINUTE, shadow))
    latencies = slower * rng.lognormal(np.log(MEDIAN_S), 0.3, size=requests)
    errors = rng.random(requests) < error_rate
    confidences = rng.beta(*confidence, size=requests) if confidence is not None else None
    for i in range(requests):
        status = 500 if errors[i] else 200
        row = None if confidences is None else confidences[i : i + 1]
        rollup.record(status, float(latencies[i]), confidences=row, rows=1)
    return rollup


def metric(judgement: Judgement, name: str) -> MetricResult:
    (found,) = [m for m in judgement.metrics if m.name == name]
    return found


SPEC = AnalysisSpec()


def test_equal_distributions_pass() -> None:
    judgement = judge(traffic("v1", 2000, seed=1), traffic("v2", 2000, seed=2), SPEC)
    assert judgement.outcome == "pass"
    assert [m.name for m in judgement.metrics] == ["error_rate", "latency", "confidence"]
    assert all(m.verdict == "pass" for m in judgement.metrics)
    assert (judgement.stable_requests, judgement.canary_requests) == (2000, 2000)
    assert judgement.reason.startswith("canary within tolerance on error_rate, latency")


def test_canary_three_times_slower_fails_latency_with_evidence() -> None:
    judgement = judge(traffic("v1", 1000, seed=1), traffic("v2", 300, seed=2, slower=3.0), SPEC)
    latency = metric(judgement, "latency")
    assert judgement.outcome == "fail"
    assert (latency.verdict, latency.critical) == ("fail", True)
    assert latency.p_value is not None and latency.p_value < 1e-12
    assert latency.stable is not None and latency.canary is not None
    assert latency.canary / latency.stable == pytest.approx(3.0, rel=0.1)
    assert judgement.reason.startswith(
        "latency: canary median 88.0 ms vs stable 29.9 ms (x2.94, p="
    )


def test_canary_raising_errors_on_a_tenth_of_requests_fails_error_rate() -> None:
    stable = traffic("v1", 2000, seed=1)
    canary = traffic("v2", 1000, seed=3, error_rate=0.10)
    judgement = judge(stable, canary, SPEC)
    errors = metric(judgement, "error_rate")
    assert judgement.outcome == "fail"
    assert errors.verdict == "fail"
    assert errors.canary == pytest.approx(0.10, abs=0.03)
    assert errors.stable is not None and errors.stable < 0.01
    assert errors.p_value is not None and errors.p_value < 1e-9
    assert judgement.reason.startswith("error_rate: canary 1")


def test_too_little_traffic_holds_and_says_so() -> None:
    judgement = judge(traffic("v1", 400, seed=1), traffic("v2", 12, seed=2), SPEC)
    assert judgement.outcome == "hold"
    assert judgement.reason.startswith(
        "too little traffic to judge: canary 12 of 50 requests, stable 400 of 50"
    )


def test_no_canary_traffic_at_all_holds() -> None:
    judgement = judge(traffic("v1", 400, seed=1), None, SPEC)
    assert judgement.outcome == "hold"
    assert judgement.canary_requests == 0
    assert "canary 0 of 50 requests" in judgement.reason
    assert metric(judgement, "latency").canary is None
    assert judge(None, None, SPEC).outcome == "hold"


def test_a_blatantly_broken_small_canary_fails_without_waiting_for_traffic() -> None:
    stable = traffic("v1", 400, seed=1, error_rate=0.0)
    canary = traffic("v2", 20, seed=2, error_rate=1.0)
    judgement = judge(stable, canary, SPEC)
    assert judgement.outcome == "fail"
    assert metric(judgement, "error_rate").verdict == "fail"
    assert "20 of 20" in judgement.reason and "0 of 400" in judgement.reason


def test_rejected_requests_are_not_served_requests() -> None:
    canary = traffic("v2", 40, seed=2)
    for _ in range(30):
        canary.record_rejection()
    judgement = judge(traffic("v1", 400, seed=1), canary, SPEC)
    assert judgement.outcome == "hold"
    assert judgement.canary_requests == 40


def test_a_small_significant_slowdown_within_tolerance_is_marginal_and_passes() -> None:
    judgement = judge(traffic("v1", 4000, seed=1), traffic("v2", 4000, seed=2, slower=1.1), SPEC)
    latency = metric(judgement, "latency")
    assert latency.verdict == "marginal"
    assert latency.p_value is not None and latency.p_value < SPEC.significance
    assert judgement.outcome == "pass"
    assert "marginal: latency: canary median" in judgement.reason


def test_lower_confidence_is_reported_but_not_critical_by_default() -> None:
    stable = traffic("v1", 1000, seed=1, confidence=(8.0, 2.0))  # mean 0.8
    canary = traffic("v2", 1000, seed=2, confidence=(4.0, 2.0))  # mean 0.67
    judgement = judge(stable, canary, SPEC)
    confidence = metric(judgement, "confidence")
    assert (confidence.verdict, confidence.critical) == ("fail", False)
    assert confidence.stable == pytest.approx(0.8, abs=0.02)
    assert confidence.canary == pytest.approx(0.667, abs=0.02)
    assert judgement.outcome == "pass"
    assert "failed, not critical: confidence: canary mean 0.6" in judgement.reason
    critical = SPEC.model_copy(update={"critical": ["error_rate", "latency", "confidence"]})
    assert judge(stable, canary, critical).outcome == "fail"


def test_confidence_is_skipped_without_confidences() -> None:
    judgement = judge(traffic("v1", 500, seed=1), traffic("v2", 500, seed=2, confidence=None), SPEC)
    assert [m.name for m in judgement.metrics] == ["error_rate", "latency"]


def test_low_agreement_of_a_shadow_fails_agreement() -> None:
    spec = SPEC.model_copy(update={"critical": ["error_rate", "latency", "agreement"]})
    stable = traffic("v1", 1000, seed=1)
    shadow = traffic("v2", 1000, seed=2, shadow=True)
    shadow.record_agreement(1000, 800)
    judgement = judge(stable, shadow, spec, shadow=shadow)
    agreement = metric(judgement, "agreement")
    assert (agreement.verdict, agreement.stable, agreement.canary) == ("fail", None, 0.8)
    assert judgement.outcome == "fail"
    assert judgement.reason == (
        "agreement: 80.0% of 1000 shadowed rows predicted as served (minimum 90.0%)"
    )


def test_low_agreement_on_few_rows_is_only_marginal() -> None:
    shadow = traffic("v2", 60, seed=2, shadow=True)
    shadow.record_agreement(20, 10)
    judgement = judge(traffic("v1", 400, seed=1), shadow, SPEC, shadow=shadow)
    assert metric(judgement, "agreement").verdict == "marginal"
    assert judgement.outcome == "pass"


def test_a_shadow_that_compared_nothing_has_no_agreement_metric() -> None:
    shadow = traffic("v2", 100, seed=2, shadow=True)
    judgement = judge(traffic("v1", 400, seed=1), shadow, SPEC, shadow=shadow)
    assert "agreement" not in [m.name for m in judgement.metrics]


def test_a_judgement_survives_a_json_round_trip() -> None:
    shadow = traffic("v2", 300, seed=3, shadow=True)
    shadow.record_agreement(300, 290)
    judgement = judge(traffic("v1", 500, seed=1), traffic("v2", 300, seed=2), SPEC, shadow)
    data = json.loads(json.dumps(judgement.to_dict(), allow_nan=False))
    assert data == judgement.to_dict()
    assert data["outcome"] == judgement.outcome
    assert [m["name"] for m in data["metrics"]] == [
        "error_rate",
        "latency",
        "confidence",
        "agreement",
    ]
    assert set(data["metrics"][0]) == {
        "name",
        "critical",
        "verdict",
        "stable",
        "canary",
        "p_value",
        "reason",
    }
