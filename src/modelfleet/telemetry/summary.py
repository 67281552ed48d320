"""Per (tenant, model) figures over a window of rollups: rate, errors, latency percentiles."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from modelfleet.stats import LatencySketch
from modelfleet.telemetry.rollup import STATUS_CLASSES, Rollup


@dataclass
class Summary:
    """What `modelfleet stats` shows for one tenant and model."""

    tenant: str
    model: str
    status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUS_CLASSES, 0))
    latency: LatencySketch = field(default_factory=LatencySketch)

    @property
    def requests(self) -> int:
        return sum(self.status.values())

    @property
    def served(self) -> int:
        """Requests that reached the gateway's handling (all but quota rejections)."""
        return self.requests - self.status["rejected"]

    @property
    def error_rate(self) -> float:
        """Share of served requests that failed on the server's side (5xx)."""
        return self.status["5xx"] / self.served if self.served else 0.0

    def rate(self, window_s: float) -> float:
        return self.requests / window_s if window_s > 0 else 0.0

    def percentile(self, q: float) -> float | None:
        return self.latency.quantile(q)


def summarize(rollups: Iterable[Rollup]) -> list[Summary]:
    """Combine rollups of every version, region and minute into one summary per (tenant, model)."""
    out: dict[tuple[str, str], Summary] = {}
    for rollup in rollups:
        key = (rollup.key.tenant, rollup.key.model)
        summary = out.get(key) or out.setdefault(key, Summary(*key))
        for status, count in rollup.status.items():
            summary.status[status] = summary.status.get(status, 0) + count
        summary.latency.merge(rollup.latency)
    return [out[k] for k in sorted(out)]
