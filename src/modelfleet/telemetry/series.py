"""The metric streams read off rollups: what anomaly detectors and alert rules watch.

Each stream is one metric of one (tenant, model, version, region). A value is computed from the
rollups of a span of time (one minute for a detector's point, a rule's window for a rule):

- request_rate: requests per second that reached the gateway, quota rejections included;
- error_rate: the share of served requests answered 5xx;
- latency_p50, latency_p99: seconds, from the merged latency sketch;
- confidence: the mean confidence of the predictions (classifiers only).

A ratio over too few requests says little, so below `min_requests` those are None (not
judged); the request rate is always defined.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from modelfleet.stats.histogram import midpoint_mean
from modelfleet.telemetry.rollup import Rollup

METRICS: Final = (
    "request_rate",
    "error_rate",
    "latency_p50",
    "latency_p99",
    "confidence",
    "drift_score",
)


@dataclass(frozen=True, order=True)
class StreamKey:
    """Which traffic a stream follows."""

    tenant: str
    model: str
    version: str
    region: str

    def labels(self) -> dict[str, str]:
        return {
            "tenant": self.tenant,
            "model": self.model,
            "version": self.version,
            "region": self.region,
        }


def stream_key(rollup: Rollup) -> StreamKey:
    k = rollup.key
    return StreamKey(k.tenant, k.model, k.version, k.region)


def metric_values(
    rollup: Rollup | None, seconds: float, *, min_requests: int = 10
) -> dict[str, float | None]:
    """Every rollup-borne metric over `seconds` of traffic summarised by `rollup` (None: none)."""
    if rollup is None or seconds <= 0:
        return {"request_rate": 0.0} | dict.fromkeys(METRICS[1:5])
    served = rollup.requests - rollup.status["rejected"]
    enough = served >= min_requests
    mean_confidence = midpoint_mean(rollup.confidence)
    return {
        "request_rate": rollup.requests / seconds,
        "error_rate": rollup.status["5xx"] / served if enough else None,
        "latency_p50": rollup.latency.quantile(0.5) if enough else None,
        "latency_p99": rollup.latency.quantile(0.99) if enough else None,
        "confidence": mean_confidence if enough else None,
    }
