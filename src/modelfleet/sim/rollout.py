"""A rollout driven end to end: real HTTP traffic through the gateway, on a virtual clock.

Each round sends requests from shelf cameras (each with its own sticky id), flushes the
gateway's telemetry, moves the clock on, ticks the control loop and publishes the routes it
wrote. Minutes of canary steps pass in a fraction of a second, with every decision made by the
real controller on rollups the real gateway wrote. The demo and the tests both use it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
import numpy as np

from modelfleet.clock import VirtualClock
from modelfleet.control import ControlLoop
from modelfleet.gateway.server import ServingThread
from modelfleet.registry.events import Event


@dataclass
class Round:
    """What one round's requests got back, and what the control loop decided after it."""

    answered: Counter[str] = field(default_factory=Counter)  # by the version that answered
    codes: Counter[int] = field(default_factory=Counter)
    events: list[Event] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(n for code, n in self.codes.items() if code >= 500 or code == 0)


def with_blank_frames(rows: np.ndarray, share: float, seed: int = 0) -> np.ndarray:
    """`rows` with a `share` of them replaced by blank (all-zero) frames, as cameras that are
    switched off send them."""
    out = rows.copy()
    rng = np.random.default_rng(seed)
    out[rng.random(len(out)) < share] = 0.0
    return out


class RolloutDrill:
    """Rounds of traffic and control ticks; see the module docstring."""

    def __init__(
        self,
        serving: ServingThread,
        clock: VirtualClock,
        loop: ControlLoop,
        *,
        model: str,
        keys: Sequence[str],
        rows: np.ndarray,
        feature: str = "pixels",
        sticky_header: str = "x-camera-id",
        cameras: int = 400,
        concurrency: int = 16,
    ) -> None:
        self.serving = serving
        self.clock = clock
        self.loop = loop
        self.model = model
        self.keys = list(keys)
        self.rows = np.asarray(rows, dtype=np.float32)
        self.feature = feature
        self.sticky_header = sticky_header
        self.cameras = cameras
        self.concurrency = concurrency
        self._sent = 0

    def round(self, requests: int, advance: timedelta) -> Round:
        """Send `requests`, flush, advance the clock by `advance`, tick, publish."""
        result = Round()
        asyncio.run(self._send(requests, result))
        self.serving.flush()
        self.clock.advance(advance)
        result.events = self.loop.tick()
        self.serving.refresh()
        return result

    async def _send(self, requests: int, result: Round) -> None:
        numbers = iter(range(self._sent, self._sent + requests))
        self._sent += requests
        limits = httpx.Limits(max_connections=self.concurrency)
        async with httpx.AsyncClient(
            base_url=self.serving.url, limits=limits, timeout=30
        ) as client:

            async def worker() -> None:
                for n in numbers:  # shared: each request is taken by one worker
                    await self._one(client, n, result)

            await asyncio.gather(*(worker() for _ in range(self.concurrency)))

    async def _one(self, client: httpx.AsyncClient, n: int, result: Round) -> None:
        row = self.rows[n % len(self.rows)]
        headers = {
            "Authorization": f"Bearer {self.keys[n % len(self.keys)]}",
            self.sticky_header: f"camera-{(n * 7919) % self.cameras}",
        }
        body = {
            "inputs": [
                {
                    "name": self.feature,
                    "shape": [1, row.size],
                    "datatype": "FP32",
                    "data": row.tolist(),
                }
            ]
        }
        try:
            response = await client.post(
                f"/v2/models/{self.model}/infer", json=body, headers=headers
            )
        except httpx.TransportError:
            result.codes[0] += 1
            return
        result.codes[response.status_code] += 1
        if response.status_code == 200:
            result.answered[str(response.json().get("model_version"))] += 1


def rounds_until(
    drill: RolloutDrill,
    done: Callable[[Round], bool],
    *,
    requests: int,
    advance: timedelta,
    limit: int = 40,
) -> list[Round]:
    """Rounds until `done(round)` is true (a callable) or `limit` rounds have run."""
    out: list[Round] = []
    for _ in range(limit):
        out.append(drill.round(requests, advance))
        if done(out[-1]):
            break
    return out
