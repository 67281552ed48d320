"""A backend with faults to inject, and a simple capacity model, for the response drills.

`FaultyBackend` wraps a real `LocalBackend`: every request still runs the real model. On top,
each request takes a service time drawn from `LatencyModel` (a real sleep, so the gateway
measures it as it measures any latency), and the faults change what happens:

- `crash(version)`: its replicas are gone; every request fails (500) until the version is
  deployed again, which is what a runbook's restart does;
- `slow(version, seconds)`: its replicas are degraded (a leak, a noisy neighbour) and every
  request takes that much longer, until a restart;
- load: each replica serves `per_replica_rps` requests a (virtual) second. Past 70 % of
  capacity requests wait, as in an M/M/1 queue: the wait grows as rho / (1 - rho) of the
  service time (rho capped at 0.99, the wait at 2 s). Scaling out (a runbook's `scale`) adds capacity.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import defaultdict
from dataclasses import dataclass

from modelfleet.clock import Clock
from modelfleet.errors import PredictionError
from modelfleet.runtime.backend import Health, VersionRef, VersionSpec
from modelfleet.runtime.local import LocalBackend
from modelfleet.runtime.model import Batch, Outputs

_WINDOW_S = 10  # the load is measured over this many virtual seconds


@dataclass(frozen=True)
class LatencyModel:
    """Service times: log-normal around `median_s`."""

    median_s: float = 0.02
    sigma: float = 0.3

    def draw(self, rng: random.Random) -> float:
        return self.median_s * math.exp(rng.gauss(0.0, self.sigma))


class FaultyBackend:
    """A `Backend` whose versions can crash, slow down or run out of capacity; see the module."""

    def __init__(
        self,
        clock: Clock,
        *,
        latency: LatencyModel | None = None,
        per_replica_rps: float = 5.0,
        seed: int = 0,
    ) -> None:
        self.inner = LocalBackend()
        self.clock = clock
        self.latency = latency or LatencyModel()
        self.per_replica_rps = per_replica_rps
        self.rng = random.Random(seed)
        self.crashed: set[VersionRef] = set()
        self.slowed: dict[VersionRef, float] = {}
        self._arrivals: dict[tuple[VersionRef, int], int] = defaultdict(int)

    def crash(self, version: VersionRef) -> None:
        self.crashed.add(version)

    def slow(self, version: VersionRef, seconds: float) -> None:
        self.slowed[version] = seconds

    def deploy(self, version: VersionSpec, replicas: int) -> None:
        """Deploy (again): fresh replicas, so whatever was wrong with the old ones is gone."""
        self.inner.deploy(version, replicas)
        self.crashed.discard(version.ref)
        self.slowed.pop(version.ref, None)

    def scale(self, version: VersionRef, replicas: int) -> None:
        self.inner.scale(version, replicas)

    async def infer(self, version: VersionRef, batch: Batch) -> Outputs:
        if version in self.crashed:
            raise PredictionError(f"{version}: replica crashed")
        rows = len(next(iter(batch.values()))) if batch else 1
        await asyncio.sleep(self._service_time(version, rows))
        return await self.inner.infer(version, batch)

    def _service_time(self, version: VersionRef, rows: int) -> float:
        window = int(self.clock.now().timestamp()) // _WINDOW_S
        self._arrivals[(version, window)] += rows
        offered = self._arrivals[(version, window - 1)] / _WINDOW_S  # the last full window
        capacity = max(1, self.health(version).replicas) * self.per_replica_rps
        rho = offered / capacity
        base = self.latency.draw(self.rng)
        rho = min(rho, 0.99)
        wait = min(2.0, base * rho / (1.0 - rho)) if rho > 0.7 else 0.0
        return base + wait + self.slowed.get(version, 0.0)

    def health(self, version: VersionRef) -> Health:
        health = self.inner.health(version)
        if version in self.crashed and health.serving:
            return Health("failed", reason="replica crashed")
        return health

    def undeploy(self, version: VersionRef) -> None:
        self.inner.undeploy(version)

    def close(self) -> None:
        self.inner.close()
