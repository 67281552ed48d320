"""Redis away: quotas fall back to per-process limits, /metrics says so, and sharing comes back.

A gateway built as `modelfleet up` builds it (build_server), with its quotas in the real Redis
reached through a TCP proxy that the test cuts or hangs.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_digits

from modelfleet.clock import SystemClock
from modelfleet.config import load_fleet
from modelfleet.gateway.quotas import Quota, RedisQuotas
from modelfleet.gateway.server import ServingThread, build_server
from modelfleet.registry import apply_fleet, create_key
from modelfleet.settings import Settings
from modelfleet.store import open_store
from tests.gateway.conftest import FLEET, infer_body, wait_for
from tests.netfaults import TcpProxy

pytestmark = pytest.mark.redis

REDIS_URL = os.environ.get("MODELFLEET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
UNLIMITED = Quota(rate=100_000, burst=100_000, max_in_flight=1000)
SCARCE = Quota(rate=0.001, burst=3, max_in_flight=10)  # bolt's: three requests, then none
BODY = infer_body(load_digits().data.astype(np.float32)[:1])


class Running:
    def __init__(self, url: str, keys: dict[str, str], proxy: TcpProxy, prefix: str) -> None:
        self.url, self.keys, self.proxy, self.prefix = url, keys, proxy, prefix

    def infer(self, tenant: str) -> int:
        headers = {"Authorization": f"Bearer {self.keys[tenant]}"}
        answer = httpx.post(f"{self.url}/v2/models/digits/infer", json=BODY, headers=headers)
        return answer.status_code

    def metric(self, name: str) -> float:
        for line in httpx.get(f"{self.url}/metrics").text.splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
        raise AssertionError(f"{name} not in /metrics")

    def shared(self) -> bool:
        self.infer("acme")  # quotas learn Redis's state on a request
        return self.metric("modelfleet_quotas_shared") == 1


@pytest.fixture
def running(tmp_path: Path, digits_models: Path) -> Iterator[Running]:
    for name in ("v1.joblib", "v2.joblib", "reference.npz"):
        (tmp_path / name).write_bytes((digits_models / name).read_bytes())
    (tmp_path / "fleet.yaml").write_text(FLEET)
    database_url = f"sqlite:///{tmp_path / 'fleet.db'}"
    store = open_store(database_url)
    now = SystemClock().now()
    apply_fleet(store, load_fleet([tmp_path / "fleet.yaml"]), actor="test", now=now)
    with store.begin() as conn:
        keys = {t: create_key(conn, t, actor="test", now=now).plaintext for t in ("acme", "bolt")}
    store.close()
    prefix = f"modelfleet-test-{secrets.token_hex(4)}"
    with TcpProxy("127.0.0.1", int(REDIS_URL.rsplit(":", 1)[1].split("/")[0])) as proxy:
        settings = Settings(
            database_url=database_url,
            actor="test",
            home=tmp_path,
            redis_url=f"redis://127.0.0.1:{proxy.port}/0",
            redis_prefix=prefix,
        )
        server = build_server(settings, SystemClock(), refresh_s=0.1, flush_s=3600)
        tiers = {"enterprise": UNLIMITED, "free": SCARCE}
        server.gateway.settings = replace(server.gateway.settings, tier_quotas=tiers)
        serving = ServingThread(server)
        try:
            yield Running(serving.start(), keys, proxy, prefix)
        finally:
            serving.stop(timeout=30)
            asyncio.run(_forget(prefix))
    assert not serving.thread.is_alive()


async def _forget(prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    keys = [k async for k in client.scan_iter(f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def _take_from_redis(prefix: str, tenant: str, n: int) -> None:
    """Take `n` of a tenant's tokens as another gateway sharing the Redis would."""
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    await client.delete(f"{prefix}:quota:{tenant}:bucket")
    other = RedisQuotas(client, prefix=f"{prefix}:quota")
    for _ in range(n):
        assert (await other.acquire(tenant, SCARCE, time.time())).admitted
    await client.aclose()


def test_with_redis_cut_quotas_are_per_process_and_metrics_say_so(running: Running) -> None:
    assert running.shared()
    assert running.metric("modelfleet_quota_fallbacks_total") == 0

    running.proxy.cut()
    assert [running.infer("bolt") for _ in range(4)] == [200, 200, 200, 429]
    assert [running.infer("acme") for _ in range(20)] == [200] * 20
    assert running.metric("modelfleet_quotas_shared") == 0
    assert running.metric("modelfleet_quota_fallbacks_total") == 1

    running.proxy.restore()
    wait_for(running.shared, timeout=5)  # Redis is tried again once a second
    # Shared again: what another gateway takes from bolt's quota in Redis, this one sees.
    asyncio.run(_take_from_redis(running.prefix, "bolt", 2))
    assert [running.infer("bolt") for _ in range(2)] == [200, 429]
    assert running.metric("modelfleet_quota_fallbacks_total") == 1


def test_a_redis_that_hangs_does_not_hang_requests(running: Running) -> None:
    assert running.shared()
    running.proxy.hang()
    slowest = 0.0
    for _ in range(30):
        started = time.monotonic()
        assert running.infer("acme") == 200
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(0.05)  # across the once-a-second retries of Redis
    assert slowest < 1.0  # one socket timeout (0.25 s) at most, not a hang
    assert running.metric("modelfleet_quotas_shared") == 0

    running.proxy.restore()
    wait_for(running.shared, timeout=5)
