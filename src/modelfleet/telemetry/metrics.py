"""Prometheus metrics of one gateway process, in base units with the usual suffixes.

Each gateway owns its registry (no global state), so tests and several gateways in one
process never mix their counts.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Latency buckets around the SLO thresholds tenants sign for (100 ms to 1 s).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class GatewayMetrics:
    """Requests, latency, requests in flight and rejections by reason."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "modelfleet_requests",
            "Inference requests answered, by tenant, model, version and HTTP status code.",
            ["tenant", "model", "version", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "modelfleet_request_duration_seconds",
            "Time from receiving an inference request to its response.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "modelfleet_requests_in_flight",
            "Inference requests being processed now.",
            registry=self.registry,
        )
        self.rejections = Counter(
            "modelfleet_rejections",
            "Requests refused before inference, by reason.",
            ["reason"],
            registry=self.registry,
        )

        self.shadow = Counter(
            "modelfleet_shadow_requests",
            "Requests mirrored to a shadow version, by outcome: agreed, disagreed (the "
            "predictions differ), answered (not a classifier), error, timeout, or dropped "
            "(too many shadow requests in flight).",
            ["model", "version", "outcome"],
            registry=self.registry,
        )
        self.predictions_dropped = Counter(
            "modelfleet_predictions_dropped",
            "Prediction-log rows not kept because the buffer between two flushes was full; "
            "feedback on those requests cannot be scored.",
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)
