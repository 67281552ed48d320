"""Quotas: the token bucket's maths, and the same behaviour in-process and through Redis."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelfleet.gateway.quotas import LocalQuotas, Quota, QuotaStore, RedisQuotas, take_token

REDIS_URL = os.environ.get("MODELFLEET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@given(
    rate=st.floats(0.5, 100),
    burst=st.integers(1, 50),
    gaps=st.lists(st.floats(0, 2), min_size=1, max_size=200),
)
@settings(max_examples=200, deadline=None)
def test_a_bucket_never_admits_more_than_burst_plus_rate_times_time(
    rate: float, burst: int, gaps: list[float]
) -> None:
    quota = Quota(rate=rate, burst=burst, max_in_flight=1)
    bucket, t, admitted_at = None, 0.0, []
    for gap in gaps:
        t += gap
        bucket, wait = take_token(bucket, quota, t)
        if wait == 0:
            admitted_at.append(t)
    for i, start in enumerate(admitted_at):
        for j in range(i, len(admitted_at)):
            window = admitted_at[j] - start
            assert j - i + 1 <= burst + rate * window + 1e-6


@given(rate=st.floats(0.5, 100), burst=st.integers(1, 50))
def test_a_refused_request_is_told_exactly_when_a_token_will_be_there(
    rate: float, burst: int
) -> None:
    quota = Quota(rate=rate, burst=burst, max_in_flight=1)
    bucket = None
    for _ in range(burst):
        bucket, wait = take_token(bucket, quota, 0.0)
        assert wait == 0
    bucket, wait = take_token(bucket, quota, 0.0)
    assert wait == pytest.approx(1 / rate)
    assert take_token(bucket, quota, wait)[1] == 0


def run(coro: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(coro())


async def _redis_quotas() -> AsyncIterator[RedisQuotas]:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    prefix = f"modelfleet-test:{secrets.token_hex(4)}"
    try:
        yield RedisQuotas(client, prefix=prefix)
    finally:
        keys = [k async for k in client.scan_iter(f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def quota_stores() -> list[Any]:
    return ["local", pytest.param("redis", marks=pytest.mark.redis)]


async def _with_store(kind: str, body: Callable[[QuotaStore], Coroutine[Any, Any, None]]) -> None:
    if kind == "local":
        await body(LocalQuotas())
        return
    async for store in _redis_quotas():
        await body(store)


@pytest.mark.parametrize("kind", quota_stores())
def test_burst_is_admitted_then_rate_limited_with_retry_after(kind: str) -> None:
    quota = Quota(rate=2, burst=3, max_in_flight=100)

    async def body(store: QuotaStore) -> None:
        results = [await store.acquire("acme", quota, now=1000.0) for _ in range(4)]
        assert [r.admitted for r in results] == [True, True, True, False]
        assert results[3].reason == "rate" and results[3].retry_after == pytest.approx(0.5)
        later = await store.acquire("acme", quota, now=1000.5)
        assert later.admitted

    run(lambda: _with_store(kind, body))


@pytest.mark.parametrize("kind", quota_stores())
def test_requests_in_flight_are_capped_and_released(kind: str) -> None:
    quota = Quota(rate=1000, burst=1000, max_in_flight=2)

    async def body(store: QuotaStore) -> None:
        a = await store.acquire("acme", quota, now=0.0)
        b = await store.acquire("acme", quota, now=0.0)
        c = await store.acquire("acme", quota, now=0.0)
        assert (a.admitted, b.admitted, c.admitted) == (True, True, False)
        assert c.reason == "concurrency" and c.retry_after > 0
        await store.release("acme", a.ticket)
        assert (await store.acquire("acme", quota, now=0.0)).admitted

    run(lambda: _with_store(kind, body))


@pytest.mark.parametrize("kind", quota_stores())
def test_tenants_have_separate_quotas(kind: str) -> None:
    quota = Quota(rate=1, burst=1, max_in_flight=10)

    async def body(store: QuotaStore) -> None:
        assert (await store.acquire("acme", quota, now=0.0)).admitted
        assert not (await store.acquire("acme", quota, now=0.0)).admitted
        assert (await store.acquire("bolt", quota, now=0.0)).admitted

    run(lambda: _with_store(kind, body))


@pytest.mark.redis
def test_two_gateways_sharing_redis_share_one_quota() -> None:
    from redis.asyncio import Redis

    quota = Quota(rate=1, burst=5, max_in_flight=100)

    async def body() -> None:
        prefix = f"modelfleet-test:{secrets.token_hex(4)}"
        one, two = Redis.from_url(REDIS_URL), Redis.from_url(REDIS_URL)
        try:
            gateways = [RedisQuotas(one, prefix=prefix), RedisQuotas(two, prefix=prefix)]
            results = await asyncio.gather(
                *[gateways[i % 2].acquire("acme", quota, now=50.0) for i in range(10)]
            )
            assert sum(r.admitted for r in results) == 5
        finally:
            keys = [k async for k in one.scan_iter(f"{prefix}:*")]
            if keys:
                await one.delete(*keys)
            await one.aclose()
            await two.aclose()

    run(body)


@pytest.mark.redis
def test_slots_of_a_dead_gateway_are_freed_when_their_lease_lapses() -> None:
    from redis.asyncio import Redis

    quota = Quota(rate=1000, burst=1000, max_in_flight=1)

    async def body() -> None:
        prefix = f"modelfleet-test:{secrets.token_hex(4)}"
        client = Redis.from_url(REDIS_URL)
        try:
            dead = RedisQuotas(client, prefix=prefix, lease_s=30)
            assert (await dead.acquire("acme", quota, now=0.0)).admitted  # never released
            alive = RedisQuotas(client, prefix=prefix, lease_s=30)
            assert not (await alive.acquire("acme", quota, now=10.0)).admitted
            assert (await alive.acquire("acme", quota, now=31.0)).admitted
        finally:
            keys = [k async for k in client.scan_iter(f"{prefix}:*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()

    run(body)


def test_when_redis_is_down_each_gateway_keeps_exact_local_quotas() -> None:
    from redis.asyncio import Redis

    quota = Quota(rate=1, burst=2, max_in_flight=10)

    async def body() -> None:
        unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
        try:
            store = RedisQuotas(unreachable)
            results = [await store.acquire("acme", quota, now=0.0) for _ in range(3)]
            assert [r.admitted for r in results] == [True, True, False]
            await store.release("acme", results[0].ticket)
        finally:
            await unreachable.aclose()

    run(body)
