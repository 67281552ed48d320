"""Traffic from tenants to a gateway over real HTTP, paced per tenant, with live tallies.

Used by the demo to show the gateway at work; each tenant sends one-row Open Inference
Protocol requests at its own rate from a few concurrent clients.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx
import numpy as np

from modelfleet.stats import LatencySketch


@dataclass
class Tally:
    """What one tenant's traffic got back: status codes and a latency sketch (seconds)."""

    tenant: str
    codes: Counter[int] = field(default_factory=Counter)
    latency: LatencySketch = field(default_factory=LatencySketch)

    @property
    def sent(self) -> int:
        return sum(self.codes.values())


@dataclass(frozen=True)
class TenantLoad:
    """One tenant's share of the traffic: its key, requests per second and clients."""

    tenant: str
    key: str
    rate: float
    clients: int = 2
    rows: np.ndarray | None = None  # this tenant's own inputs, in place of the shared ones


async def send_traffic(
    url: str,
    model: str,
    loads: list[TenantLoad],
    rows: np.ndarray,
    *,
    seconds: float,
    on_progress: Callable[[Mapping[str, Tally], float], None] | None = None,
    progress_every: float = 0.5,
) -> dict[str, Tally]:
    """Send each tenant's requests for `seconds`; rows are drawn in turn from `rows`."""
    tallies = {load.tenant: Tally(load.tenant) for load in loads}
    loop = asyncio.get_running_loop()
    start = loop.time()
    end = start + seconds
    limits = httpx.Limits(max_connections=sum(load.clients for load in loads) + 4)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def one_client(load: TenantLoad, index: int) -> None:
            interval = load.clients / load.rate
            headers = {"Authorization": f"Bearer {load.key}"}
            tally = tallies[load.tenant]
            n = index
            next_at = start + index * interval / load.clients
            while next_at < end:
                await asyncio.sleep(max(0.0, next_at - loop.time()))
                own = rows if load.rows is None else load.rows
                row = own[n % len(own)]
                body = {
                    "inputs": [
                        {
                            "name": "pixels",
                            "shape": [1, row.size],
                            "datatype": "FP32",
                            "data": row.tolist(),
                        }
                    ]
                }
                sent = loop.time()
                try:
                    r = await client.post(f"/v2/models/{model}/infer", json=body, headers=headers)
                    tally.codes[r.status_code] += 1
                except httpx.TransportError:
                    tally.codes[0] += 1
                tally.latency.add(loop.time() - sent)
                n += load.clients
                next_at += interval

        async def report() -> None:
            while loop.time() < end:
                await asyncio.sleep(progress_every)
                if on_progress is not None:
                    on_progress(tallies, min(loop.time(), end) - start)

        workers = [one_client(load, i) for load in loads for i in range(load.clients)]
        await asyncio.gather(report(), *workers)
    if on_progress is not None:
        on_progress(tallies, seconds)
    return tallies
