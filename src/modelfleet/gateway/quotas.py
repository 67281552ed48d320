"""Per-tenant quotas: a token bucket for the request rate and a cap on requests in flight.

The bucket refills at `rate` tokens per second up to `burst`; a request takes one token.
`LocalQuotas` is exact within one process. `RedisQuotas` does the same arithmetic in one Lua
script on Redis, so every worker and gateway sharing that Redis shares each tenant's quota.
In-flight requests are held in a sorted set scored by a lease deadline, so a gateway that
dies mid-request frees its slots when their leases lapse instead of leaking them.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from redis.exceptions import RedisError

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Quota:
    """A tier's limits: `rate` requests/s sustained, `burst` at once, `max_in_flight` concurrent."""

    rate: float
    burst: float
    max_in_flight: int


# Defaults per tier; a tier's quota grows with what the customer pays for.
TIER_QUOTAS: Mapping[str, Quota] = {
    "free": Quota(rate=5, burst=10, max_in_flight=4),
    "standard": Quota(rate=50, burst=100, max_in_flight=16),
    "premium": Quota(rate=500, burst=1000, max_in_flight=64),
    "enterprise": Quota(rate=5000, burst=10000, max_in_flight=256),
}


@dataclass(frozen=True)
class Bucket:
    tokens: float
    updated: float  # seconds


def take_token(bucket: Bucket | None, quota: Quota, now: float) -> tuple[Bucket, float]:
    """Refill `bucket` to `now` and take one token: (new bucket, 0.0) when allowed, else
    (new bucket, seconds until a token is there)."""
    if bucket is None:
        tokens = quota.burst
    else:
        elapsed = max(0.0, now - bucket.updated)
        tokens = min(quota.burst, bucket.tokens + elapsed * quota.rate)
    # A client that waits exactly the advised time must get in, despite float rounding.
    if tokens >= 1.0 - 1e-9:
        return Bucket(max(0.0, tokens - 1.0), now), 0.0
    return Bucket(tokens, now), (1.0 - tokens) / quota.rate


@dataclass(frozen=True)
class Admission:
    """Whether a request may proceed; when not, why and when to retry."""

    admitted: bool
    ticket: str = ""
    reason: Literal["", "rate", "concurrency"] = ""
    retry_after: float = 0.0


class QuotaStore(Protocol):
    """Where quota state lives: in this process, or shared through Redis.

    `shared`: whether every gateway sees the same quota now; `fallbacks`: how many times
    sharing was lost (the running total, for /metrics).
    """

    @property
    def shared(self) -> bool: ...

    @property
    def fallbacks(self) -> int: ...

    async def acquire(self, tenant: str, quota: Quota, now: float) -> Admission: ...

    async def release(self, tenant: str, ticket: str) -> None: ...

    async def aclose(self) -> None:
        """Let go of connections (at the gateway's shutdown)."""


class LocalQuotas:
    """Quotas exact within one process (one event loop: no locking needed)."""

    def __init__(self) -> None:
        self._buckets: dict[str, Bucket] = {}
        self._in_flight: dict[str, int] = {}
        self._tickets = itertools.count()

    @property
    def shared(self) -> bool:
        return False

    @property
    def fallbacks(self) -> int:
        return 0

    async def acquire(self, tenant: str, quota: Quota, now: float) -> Admission:
        if self._in_flight.get(tenant, 0) >= quota.max_in_flight:
            return Admission(False, reason="concurrency", retry_after=1.0)
        bucket, wait = take_token(self._buckets.get(tenant), quota, now)
        self._buckets[tenant] = bucket
        if wait > 0:
            return Admission(False, reason="rate", retry_after=wait)
        self._in_flight[tenant] = self._in_flight.get(tenant, 0) + 1
        return Admission(True, ticket=str(next(self._tickets)))

    async def release(self, tenant: str, ticket: str) -> None:
        self._in_flight[tenant] = max(0, self._in_flight.get(tenant, 0) - 1)

    async def aclose(self) -> None:
        pass


# KEYS: bucket hash, in-flight sorted set.
# ARGV: now, rate, burst, max_in_flight, ticket, lease seconds.
# Numbers go back as strings: Redis truncates Lua numbers to integers.
_ACQUIRE = """
local now = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local cap = tonumber(ARGV[4])
local lease = tonumber(ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= cap then
  return {0, 'concurrency', '1'}
end
local b = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(b[1])
local updated = tonumber(b[2])
if tokens == nil then
  tokens = burst
  updated = now
end
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
local ttl = math.ceil(burst / rate) + 60
if tokens < 1 then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
  redis.call('EXPIRE', KEYS[1], ttl)
  return {0, 'rate', tostring((1 - tokens) / rate)}
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'updated', tostring(now))
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], now + lease, ARGV[5])
redis.call('EXPIRE', KEYS[2], math.ceil(lease) + 60)
return {1, '', '0'}
"""


class RedisQuotas:
    """Quotas shared by every process that uses the same Redis and key prefix.

    When Redis cannot be reached, each gateway falls back to exact in-process quotas rather
    than refusing customers: while Redis is down a tenant may get up to its quota from each
    gateway, and serving goes on. While down, Redis is tried again once every `retry_s`
    seconds, not on every request: a Redis that hangs costs one request its socket timeout
    per retry, not every request.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "modelfleet:quota",
        lease_s: float = 60.0,
        retry_s: float = 1.0,
    ):
        self._redis = redis
        self._prefix = prefix
        self._lease_s = lease_s
        self._retry_s = retry_s
        self._retry_at = 0.0  # while down: when to try Redis again (the `now` of acquire)
        self._fallbacks = 0
        self._script = redis.register_script(_ACQUIRE)
        self._tickets = itertools.count()
        self._instance = f"{id(self):x}"
        self._fallback = LocalQuotas()
        self._fallback_tickets: set[str] = set()
        self._redis_down = False

    @property
    def shared(self) -> bool:
        """False from a failed call to Redis until one succeeds again."""
        return not self._redis_down

    @property
    def fallbacks(self) -> int:
        return self._fallbacks

    def _keys(self, tenant: str) -> list[str]:
        return [f"{self._prefix}:{tenant}:bucket", f"{self._prefix}:{tenant}:inflight"]

    async def acquire(self, tenant: str, quota: Quota, now: float) -> Admission:
        ticket = f"{self._instance}:{next(self._tickets)}"
        args: list[str | float] = [
            now,
            quota.rate,
            quota.burst,
            quota.max_in_flight,
            ticket,
            self._lease_s,
        ]
        if self._redis_down and now < self._retry_at:
            return await self._acquire_locally(tenant, quota, now)
        try:
            admitted, reason, retry = await self._script(keys=self._keys(tenant), args=args)
        except RedisError as exc:
            if not self._redis_down:  # once per outage, not once per request
                log.warning("Redis unavailable, quotas are per gateway until it is back: %s", exc)
                self._fallbacks += 1
            self._redis_down = True
            self._retry_at = now + self._retry_s
            return await self._acquire_locally(tenant, quota, now)
        if self._redis_down:
            log.warning("Redis is back: quotas are shared again")
            self._redis_down = False
        if int(admitted):
            return Admission(True, ticket=ticket)
        why = reason.decode() if isinstance(reason, bytes) else str(reason)
        return Admission(
            False, reason="rate" if why == "rate" else "concurrency", retry_after=float(retry)
        )

    async def _acquire_locally(self, tenant: str, quota: Quota, now: float) -> Admission:
        admission = await self._fallback.acquire(tenant, quota, now)
        if admission.admitted:
            self._fallback_tickets.add(admission.ticket)
        return admission

    async def release(self, tenant: str, ticket: str) -> None:
        if ticket in self._fallback_tickets:
            self._fallback_tickets.discard(ticket)
            await self._fallback.release(tenant, ticket)
            return
        if self._redis_down:
            return  # the slot's lease frees it; a hanging Redis must not hold the response
        try:
            await self._redis.zrem(self._keys(tenant)[1], ticket)
        except RedisError as exc:  # the slot's lease frees it when Redis is back
            log.warning("Redis unavailable, could not release a quota slot: %s", exc)

    async def aclose(self) -> None:
        """Close the Redis client this store was given: the gateway's, made for it."""
        await self._redis.aclose()
