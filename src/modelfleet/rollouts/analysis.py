"""Canary judgement: is the candidate worse than stable on the same window of real traffic?

The rollout controller pools each version's rollups over the analysis window and asks `judge`
for a verdict, as Kayenta does for Netflix's canaries: each metric gets a tolerance (how much
worse is acceptable) and a significance test (is it worse by more than chance), and fails only
when both say so. A difference within tolerance is not worth a rollback however certain; a
difference beyond it is not yet proof on a few requests.

Metrics (tolerances and the significance level come from `AnalysisSpec`):

- error_rate: 5xx among served requests; Fisher's exact test, one-sided (exact on the few errors
  a canary has, where a z-test is far off).
- latency: the Mann-Whitney U test on the latency sketches' buckets, one-sided "canary slower";
  the effect is the ratio of medians, canary over stable.
- confidence: for classifiers, mean confidence from the histogram's bin midpoints, and the U test
  on its bins, one-sided "canary lower".
- agreement: for shadows, the share of compared rows where the candidate predicted what the
  client was served; it has no test, only a floor, enforced once enough rows were compared.

A metric fails (both conditions), is marginal (one of them) or passes. The outcome fails when a
critical metric fails; otherwise it holds while either side has served fewer than
`min_requests` requests, and passes after. A significant failure is not held back by the
traffic minimum: a canary answering 20 of 20 requests with errors fails at once.

Pure: rollups in, a judgement out; no store, no clock.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any, Literal

from modelfleet.config.schema import AnalysisSpec
from modelfleet.stats import (
    Histogram,
    fisher_exact_greater,
    mann_whitney_binned,
    two_proportion_test,
)
from modelfleet.telemetry.rollup import Rollup

Verdict = Literal["pass", "marginal", "fail"]
Outcome = Literal["pass", "fail", "hold"]


@dataclass(frozen=True)
class MetricResult:
    """One metric's verdict, with the values compared and the evidence for it."""

    name: str
    critical: bool
    verdict: Verdict
    stable: float | None  # stable's value of the metric; None when it has none
    canary: float | None
    p_value: float | None  # one-sided, "canary worse"; None for a metric without a test
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class Judgement:
    """The verdict on a canary: every metric's result, and why the outcome is what it is."""

    outcome: Outcome
    metrics: tuple[MetricResult, ...]
    reason: str
    stable_requests: int  # served (not rejected) requests in the window
    canary_requests: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "outcome": self.outcome,
            "reason": self.reason,
            "stable_requests": self.stable_requests,
            "canary_requests": self.canary_requests,
            "metrics": [m.to_dict() for m in self.metrics],
        }


def judge(
    stable: Rollup | None,
    canary: Rollup | None,
    spec: AnalysisSpec,
    shadow: Rollup | None = None,
) -> Judgement:
    """Judge `canary` against `stable`, each pooled over the window (None: no traffic).

    `shadow` is the candidate's shadow rollup, whose agreement with the served answers is
    judged when it compared any rows.
    """
    stable_served, canary_served = _served(stable), _served(canary)
    metrics = [_error_rate(stable, canary, spec), _latency(stable, canary, spec)]
    if stable is not None and canary is not None:
        confidence = _confidence(stable.confidence, canary.confidence, spec)
        if confidence is not None:
            metrics.append(confidence)
    if shadow is not None and shadow.compared > 0:
        metrics.append(_agreement(shadow, spec))

    failing = [m for m in metrics if m.critical and m.verdict == "fail"]
    notes = [
        f"{'marginal' if m.verdict == 'marginal' else 'failed, not critical'}: {m.reason}"
        for m in metrics
        if m.verdict == "marginal" or (m.verdict == "fail" and not m.critical)
    ]
    outcome: Outcome
    if failing:
        outcome, head = "fail", "; ".join(m.reason for m in failing)
    elif min(stable_served, canary_served) < spec.min_requests:
        outcome = "hold"
        head = (
            f"too little traffic to judge: canary {canary_served} of {spec.min_requests} "
            f"requests, stable {stable_served} of {spec.min_requests}"
        )
    else:
        names = ", ".join(m.name for m in metrics if m.verdict == "pass")
        outcome = "pass"
        head = f"canary within tolerance on {names}" if names else "no critical metric failed"
    return Judgement(
        outcome=outcome,
        metrics=tuple(metrics),
        reason="; ".join([head, *notes]),
        stable_requests=stable_served,
        canary_requests=canary_served,
    )


def _error_rate(stable: Rollup | None, canary: Rollup | None, spec: AnalysisSpec) -> MetricResult:
    stable_errors, stable_served = _errors(stable), _served(stable)
    canary_errors, canary_served = _errors(canary), _served(canary)
    test = two_proportion_test(canary_errors, canary_served, stable_errors, stable_served)
    p_value = fisher_exact_greater(canary_errors, canary_served, stable_errors, stable_served)
    worse = test.difference > spec.max_error_increase
    significant = p_value < spec.significance
    reason = (
        f"error_rate: canary {test.rate_a:.2%} ({canary_errors} of {canary_served}) vs stable "
        f"{test.rate_b:.2%} ({stable_errors} of {stable_served}) "
        f"({test.difference * 100:+.2f} points, p={p_value:.2g})"
    )
    return MetricResult(
        name="error_rate",
        critical="error_rate" in spec.critical,
        verdict=_verdict(worse, significant),
        stable=test.rate_b if stable_served else None,
        canary=test.rate_a if canary_served else None,
        p_value=p_value,
        reason=reason,
    )


def _latency(stable: Rollup | None, canary: Rollup | None, spec: AnalysisSpec) -> MetricResult:
    stable_median = stable.latency.quantile(0.5) if stable is not None else None
    canary_median = canary.latency.quantile(0.5) if canary is not None else None
    critical = "latency" in spec.critical
    if stable is None or canary is None or stable_median is None or canary_median is None:
        return MetricResult(
            "latency", critical, "pass", stable_median, canary_median, None, "latency: no data"
        )
    if stable.latency.alpha != canary.latency.alpha:
        raise ValueError(
            "latency sketches of different accuracy cannot be compared bin by bin: "
            f"alpha {stable.latency.alpha} and {canary.latency.alpha}"
        )
    test = mann_whitney_binned(canary.latency.bucket_counts(), stable.latency.bucket_counts())
    if stable_median > 0.0:
        ratio = canary_median / stable_median
    else:
        ratio = math.inf if canary_median > 0.0 else 1.0
    reason = (
        f"latency: canary median {_ms(canary_median)} vs stable {_ms(stable_median)} "
        f"(x{ratio:.3g}, p={test.p_greater:.2g})"
    )
    return MetricResult(
        name="latency",
        critical=critical,
        verdict=_verdict(ratio > spec.max_latency_ratio, test.p_greater < spec.significance),
        stable=stable_median,
        canary=canary_median,
        p_value=test.p_greater,
        reason=reason,
    )


def _confidence(stable: Histogram, canary: Histogram, spec: AnalysisSpec) -> MetricResult | None:
    """None when either side has no confidences (not a classifier, or no traffic)."""
    if not any(stable.counts) or not any(canary.counts):
        return None
    if stable.edges != canary.edges:
        raise ValueError(
            f"confidence histograms on different edges: {stable.edges} and {canary.edges}"
        )
    stable_mean, canary_mean = _binned_mean(stable), _binned_mean(canary)
    # Bins by position: "stable greater" is "canary lower".
    test = mann_whitney_binned(dict(enumerate(stable.counts)), dict(enumerate(canary.counts)))
    drop = stable_mean - canary_mean
    reason = (
        f"confidence: canary mean {canary_mean:.3f} vs stable {stable_mean:.3f} "
        f"({-drop:+.3f}, p={test.p_greater:.2g})"
    )
    return MetricResult(
        name="confidence",
        critical="confidence" in spec.critical,
        verdict=_verdict(drop > spec.max_confidence_drop, test.p_greater < spec.significance),
        stable=stable_mean,
        canary=canary_mean,
        p_value=test.p_greater,
        reason=reason,
    )


def _agreement(shadow: Rollup, spec: AnalysisSpec) -> MetricResult:
    rate = shadow.agreed / shadow.compared
    below = rate < spec.min_agreement
    if not below:
        verdict: Verdict = "pass"
    elif shadow.compared >= spec.min_requests:
        verdict = "fail"
    else:
        verdict = "marginal"  # below the floor, but on too few rows to act on
    reason = (
        f"agreement: {rate:.1%} of {shadow.compared} shadowed rows predicted as served "
        f"(minimum {spec.min_agreement:.1%})"
    )
    return MetricResult(
        name="agreement",
        critical="agreement" in spec.critical,
        verdict=verdict,
        stable=None,
        canary=rate,
        p_value=None,
        reason=reason,
    )


def _verdict(beyond_tolerance: bool, significant: bool) -> Verdict:
    if beyond_tolerance and significant:
        return "fail"
    if beyond_tolerance or significant:
        return "marginal"
    return "pass"


def _served(rollup: Rollup | None) -> int:
    return 0 if rollup is None else rollup.requests - rollup.status["rejected"]


def _errors(rollup: Rollup | None) -> int:
    return 0 if rollup is None else rollup.status["5xx"]


def _binned_mean(histogram: Histogram) -> float:
    """The mean of the values counted, each taken at its bin's midpoint (outer bins: the edge)."""
    edges = histogram.edges
    points = [edges[0], *((lo + hi) / 2 for lo, hi in pairwise(edges)), edges[-1]]
    counts = histogram.counts
    return sum(c * p for c, p in zip(counts, points, strict=True)) / sum(counts)


def _ms(seconds: float) -> str:
    milliseconds = seconds * 1000.0
    return f"{milliseconds:.1f} ms" if milliseconds >= 1.0 else f"{milliseconds:.3g} ms"
