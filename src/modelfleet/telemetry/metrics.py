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
    """Requests, latency, requests in flight, rejections by reason, and the state of what the
    gateway depends on: the store (and the telemetry spooled while it is away) and Redis."""

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

        self.store_reachable = Gauge(
            "modelfleet_store_reachable",
            "1 if the store answered this gateway's last attempt (route refresh or telemetry "
            "flush), 0 if it did not: routes are then the last ones read, telemetry is spooled.",
            registry=self.registry,
        )
        self.spooled_batches = Gauge(
            "modelfleet_telemetry_spooled_batches",
            "Telemetry batches waiting in this gateway's spool to be written to the store.",
            registry=self.registry,
        )
        self.batches_written_back = Counter(
            "modelfleet_telemetry_batches_written_back",
            "Spooled telemetry batches written back to the store (or found already there).",
            registry=self.registry,
        )
        self.batches_set_aside = Counter(
            "modelfleet_telemetry_batches_set_aside",
            "Spool files that could not be read, moved aside as *.bad: telemetry not counted.",
            registry=self.registry,
        )
        self.quotas_shared = Gauge(
            "modelfleet_quotas_shared",
            "1 while tenants' quotas are shared through Redis, 0 while they are kept per "
            "process (no Redis configured, or Redis unreachable).",
            registry=self.registry,
        )
        self.quota_fallbacks = Counter(
            "modelfleet_quota_fallbacks",
            "Times quotas fell back to per-process limits because Redis could not be reached.",
            registry=self.registry,
        )
        self._seen = {"written_back": 0, "set_aside": 0, "fallbacks": 0}

    def observe_spool(self, waiting: int, written_back: int, set_aside: int) -> None:
        """Show a spool's state; `written_back` and `set_aside` are its running totals."""
        self.spooled_batches.set(waiting)
        self._advance(self.batches_written_back, "written_back", written_back)
        self._advance(self.batches_set_aside, "set_aside", set_aside)

    def observe_quotas(self, shared: bool, fallbacks: int) -> None:
        """Show whether quotas are shared now; `fallbacks` is the quota store's running total."""
        self.quotas_shared.set(1 if shared else 0)
        self._advance(self.quota_fallbacks, "fallbacks", fallbacks)

    def _advance(self, counter: Counter, name: str, total: int) -> None:
        """Move a counter up to a running total kept elsewhere."""
        if total > self._seen[name]:
            counter.inc(total - self._seen[name])
            self._seen[name] = total

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)
