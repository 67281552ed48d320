"""What capacity costs: the cheapest purchase mix, cost per tenant, and right-sizing.

All pure: counts in, money out; no store, no clock. Counts are integers and money is summed
exactly (as `fractions.Fraction` of the float prices) and turned into floats once at the end,
so the parts of a total add up to it.

`plan_mix` chooses how many instances to reserve for a planned horizon of hourly instance
counts ``n_h`` (``H`` hours). A reserved instance is paid every hour of the horizon at
``reserved_hourly`` (its term's effective price, prorated to the horizon); each hour's excess
over the ``r`` reserved runs on demand, or on spot when the model is interruptible and spot's
expected price is lower::

    cost(r) = r · reserved_hourly · H + Σ_h max(n_h − r, 0) · excess_hourly

    excess_hourly = min(on_demand_hourly, spot_hourly + p · on_demand_hourly)  (interruptible)
                  = on_demand_hourly                                              (otherwise)

where ``p`` is ``spot_interruption_rate``: with probability ``p`` per hour a spot instance is
reclaimed and that hour's work is run again on demand. ``cost(r)`` is convex in ``r``; every
``r`` in ``[0, max n_h]`` is evaluated and the smallest minimiser is kept.

`allocate` splits a cost among tenants as OpenCost does: each interval's cost times the
utilization is shared by the tenants' requests in it; the rest, ``cost · (1 − utilization)``,
is idle and shown apart. Tenants plus idle add up to the total.

`right_size` compares the p95 of measured utilization with the target:
``recommended = ceil(replicas · p95 / target)`` (at least 1), the replicas that would run at
the target during the busy 5 %. `smallest_fitting` picks the cheapest declared instance type
with enough CPUs, memory and GPUs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import numpy as np

from modelfleet.capacity.autoscaler import ceil_count
from modelfleet.config.capacity import InstanceTypeSpec

Excess = Literal["on_demand", "spot"]


@dataclass(frozen=True)
class PurchaseMix:
    """Instances of one hour by purchase option."""

    reserved: int
    on_demand: int
    spot: int

    @property
    def instances(self) -> int:
        """All the instances of the hour."""
        return self.reserved + self.on_demand + self.spot


@dataclass(frozen=True)
class MixPlan:
    """The cheapest purchase mix for a horizon of hourly instance needs, and its costs."""

    currency: str
    reserved: int
    """Instances reserved, paid every hour of the horizon."""
    hours: tuple[PurchaseMix, ...]
    excess: Excess
    """Where the instances above the reserved ones run."""
    excess_hourly: float
    """Expected price of one excess instance-hour (spot's includes re-runs)."""
    hourly_cost: tuple[float, ...]
    reserved_cost: float
    on_demand_cost: float
    spot_cost: float
    total_cost: float
    on_demand_only_cost: float
    """The same hours all on demand, for comparison."""

    @property
    def saving(self) -> float:
        """How much the mix saves against all on demand."""
        return self.on_demand_only_cost - self.total_cost


def instances_needed(replicas: int, replicas_per_instance: int) -> int:
    """Instances that hold `replicas`: ``ceil(replicas / replicas_per_instance)``."""
    if replicas < 0:
        raise ValueError(f"replicas must not be negative, got {replicas}")
    if replicas_per_instance < 1:
        raise ValueError(f"replicas_per_instance must be at least 1, got {replicas_per_instance}")
    return -(-replicas // replicas_per_instance)


def excess_price(instance: InstanceTypeSpec, *, interruptible: bool) -> tuple[Excess, Fraction]:
    """Where an unreserved instance-hour runs, and its expected price there (module docstring)."""
    on_demand = Fraction(instance.on_demand_hourly)
    if interruptible and instance.spot_hourly is not None:
        rate = Fraction(instance.spot_interruption_rate)
        spot = Fraction(instance.spot_hourly) + rate * on_demand
        if spot < on_demand:
            return "spot", spot
    return "on_demand", on_demand


def plan_mix(
    replicas_per_hour: Sequence[int],
    instance: InstanceTypeSpec,
    *,
    replicas_per_instance: int = 1,
    interruptible: bool = False,
) -> MixPlan:
    """The reserved count minimising the horizon's cost, with each hour's mix and the totals."""
    needed = [instances_needed(int(r), replicas_per_instance) for r in replicas_per_hour]
    hours = len(needed)
    excess, excess_hourly = excess_price(instance, interruptible=interruptible)
    on_demand = Fraction(instance.on_demand_hourly)
    reserved_hourly = (
        Fraction(instance.reserved_hourly) if instance.reserved_hourly is not None else None
    )

    def cost(r: int) -> Fraction:
        assert reserved_hourly is not None
        return r * reserved_hourly * hours + sum(
            (max(n - r, 0) * excess_hourly for n in needed), Fraction(0)
        )

    best = 0
    if reserved_hourly is not None and needed:
        best_cost = cost(0)
        for r in range(1, max(needed) + 1):
            c = cost(r)
            if c < best_cost:
                best, best_cost = r, c

    mixes: list[PurchaseMix] = []
    hourly: list[Fraction] = []
    for n in needed:
        rest = max(n - best, 0)
        mix = PurchaseMix(
            reserved=best,
            on_demand=rest if excess == "on_demand" else 0,
            spot=rest if excess == "spot" else 0,
        )
        mixes.append(mix)
        hourly.append(best * (reserved_hourly or Fraction(0)) + rest * excess_hourly)
    reserved_total = best * (reserved_hourly or Fraction(0)) * hours
    excess_total = sum((max(n - best, 0) for n in needed), 0) * excess_hourly
    return MixPlan(
        currency=instance.currency,
        reserved=best,
        hours=tuple(mixes),
        excess=excess,
        excess_hourly=float(excess_hourly),
        hourly_cost=tuple(float(c) for c in hourly),
        reserved_cost=float(reserved_total),
        on_demand_cost=float(excess_total) if excess == "on_demand" else 0.0,
        spot_cost=float(excess_total) if excess == "spot" else 0.0,
        total_cost=float(sum(hourly, Fraction(0))),
        on_demand_only_cost=float(sum(needed, 0) * on_demand),
    )


@dataclass(frozen=True)
class Allocation:
    """A cost split among tenants by the requests they sent, with the idle part apart."""

    by_tenant: Mapping[str, float]
    idle: float
    total: float


def allocate(
    cost_per_interval: Sequence[float],
    requests: Mapping[str, Sequence[float]],
    utilization: Sequence[float],
) -> Allocation:
    """Split each interval's cost: ``cost · utilization`` by the tenants' share of requests,
    ``cost · (1 − utilization)`` to idle. An interval without requests is idle whole."""
    n = len(cost_per_interval)
    if len(utilization) != n or any(len(r) != n for r in requests.values()):
        raise ValueError("cost_per_interval, utilization and each tenant's requests must align")
    shares: dict[str, Fraction] = dict.fromkeys(requests, Fraction(0))
    idle = Fraction(0)
    total = Fraction(0)
    for i, c in enumerate(cost_per_interval):
        u = utilization[i]
        if not (c >= 0 and math.isfinite(c)):
            raise ValueError(f"costs must be finite and ≥ 0, got {c}")
        if not 0.0 <= u <= 1.0:
            raise ValueError(f"utilization must lie in [0, 1], got {u}")
        cost = Fraction(c)
        total += cost
        counts = {t: Fraction(r[i]) for t, r in requests.items()}
        if any(v < 0 for v in counts.values()):
            raise ValueError("request counts must not be negative")
        served = sum(counts.values(), Fraction(0))
        if served == 0:
            idle += cost
            continue
        used = cost * Fraction(u)
        idle += cost - used
        for t, v in counts.items():
            shares[t] += used * v / served
    return Allocation(
        by_tenant={t: float(v) for t, v in shares.items()}, idle=float(idle), total=float(total)
    )


@dataclass(frozen=True)
class Recommendation:
    """A replica count from measured utilization, and why."""

    replicas: int
    recommended: int
    utilization_p: float
    target: float

    @property
    def change(self) -> Literal["fewer", "more", "keep"]:
        """Whether the recommendation removes, adds or keeps replicas."""
        if self.recommended < self.replicas:
            return "fewer"
        return "more" if self.recommended > self.replicas else "keep"


def right_size(
    utilization: Sequence[float], replicas: int, *, target: float, quantile: float = 0.95
) -> Recommendation:
    """``ceil(replicas · p / target)`` replicas, ``p`` the `quantile` of measured utilization."""
    if not utilization:
        raise ValueError("need at least one utilization measurement")
    if replicas < 1:
        raise ValueError(f"replicas must be at least 1, got {replicas}")
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target must lie in (0, 1], got {target}")
    p = float(np.quantile(np.asarray(utilization, dtype=np.float64), quantile))
    recommended = max(1, ceil_count(replicas * p / target))
    return Recommendation(replicas, recommended, p, target)


def smallest_fitting(
    instance_types: Mapping[str, InstanceTypeSpec],
    *,
    cpus: float,
    memory_gib: float,
    gpus: int = 0,
) -> str | None:
    """The declared instance type with enough CPUs, memory and GPUs that is cheapest on demand
    (ties by name), or None when none fits."""
    fitting = [
        (spec.on_demand_hourly, name)
        for name, spec in instance_types.items()
        if spec.cpus >= cpus and spec.memory_gib >= memory_gib and spec.gpus >= gpus
    ]
    return min(fitting)[1] if fitting else None
