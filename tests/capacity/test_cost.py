"""Cost: the cheapest purchase mix, cost per tenant with idle apart, and right-sizing."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelfleet.capacity.cost import (
    allocate,
    instances_needed,
    plan_mix,
    right_size,
    smallest_fitting,
)
from modelfleet.config.capacity import InstanceTypeSpec

# Dyadic prices, so float sums of them are exact and "exactly" can mean ==.
GPU = InstanceTypeSpec(
    cpus=8,
    memory_gib=64,
    gpus=1,
    on_demand_hourly=4.0,
    reserved_hourly=2.5,
    spot_hourly=1.5,
    spot_interruption_rate=0.125,
)


def test_the_mix_is_cheaper_than_all_on_demand_when_a_steady_base_exists() -> None:
    day = [4] * 8 + [10] * 8 + [4] * 8
    plan = plan_mix(day * 7, GPU)
    assert plan.reserved == 4
    assert plan.total_cost < plan.on_demand_only_cost
    assert plan.saving == plan.on_demand_only_cost - plan.total_cost


def test_a_flat_plan_is_all_reserved() -> None:
    plan = plan_mix([6] * 168, GPU)
    assert plan.reserved == 6
    assert all(h.on_demand == 0 and h.spot == 0 for h in plan.hours)
    assert plan.total_cost == 6 * 2.5 * 168


def test_a_single_spike_without_a_base_reserves_nothing() -> None:
    plan = plan_mix([0] * 100 + [12] + [0] * 67, GPU)
    assert plan.reserved == 0
    assert plan.total_cost == plan.on_demand_only_cost == 12 * 4.0


def test_instances_hold_several_replicas_rounded_up() -> None:
    assert instances_needed(5, 2) == 3
    assert instances_needed(0, 4) == 0
    plan = plan_mix([5] * 10, GPU, replicas_per_instance=2)
    assert plan.reserved == 3


def test_without_a_reserved_price_nothing_is_reserved() -> None:
    spec = InstanceTypeSpec(cpus=2, memory_gib=4, on_demand_hourly=1.0)
    plan = plan_mix([3] * 24, spec)
    assert plan.reserved == 0 and plan.total_cost == plan.on_demand_only_cost == 72.0


def test_spot_is_used_only_when_interruptible() -> None:
    needs = [2] * 20 + [8] * 4
    steady = plan_mix(needs, GPU)
    assert steady.excess == "on_demand" and all(h.spot == 0 for h in steady.hours)
    peaky = plan_mix(needs, GPU, interruptible=True)
    assert peaky.excess == "spot" and any(h.spot > 0 for h in peaky.hours)
    assert all(h.on_demand == 0 for h in peaky.hours)
    # 1.5 + 0.125 × 4.0: the expected re-run of an interrupted hour on demand.
    assert peaky.excess_hourly == 2.0
    assert peaky.total_cost < steady.total_cost


def test_spot_whose_interruptions_cost_more_than_on_demand_is_not_used() -> None:
    risky = GPU.model_copy(update={"spot_interruption_rate": 0.75})  # 1.5 + 3.0 > 4.0
    plan = plan_mix([1, 5, 1], risky, interruptible=True)
    assert plan.excess == "on_demand" and all(h.spot == 0 for h in plan.hours)


@given(
    st.lists(st.integers(min_value=0, max_value=30), max_size=72),
    st.integers(min_value=1, max_value=4),
    st.booleans(),
)
def test_costs_sum_exactly_and_counts_cover_every_hour(
    replicas: list[int], per_instance: int, interruptible: bool
) -> None:
    plan = plan_mix(replicas, GPU, replicas_per_instance=per_instance, interruptible=interruptible)
    for r, mix in zip(replicas, plan.hours, strict=True):
        assert mix.instances == max(instances_needed(r, per_instance), plan.reserved)
    assert plan.total_cost == sum(plan.hourly_cost)
    assert plan.total_cost == plan.reserved_cost + plan.on_demand_cost + plan.spot_cost
    assert plan.total_cost <= plan.on_demand_only_cost


@given(st.lists(st.integers(min_value=0, max_value=12), min_size=1, max_size=48))
def test_the_chosen_reservation_is_no_worse_than_any_other(replicas: list[int]) -> None:
    best = plan_mix(replicas, GPU).total_cost
    hours = len(replicas)
    for r in range(max(replicas) + 2):
        assert best <= r * 2.5 * hours + sum(max(n - r, 0) for n in replicas) * 4.0


intervals = st.integers(min_value=1, max_value=24)


@st.composite
def usage(draw: st.DrawFn) -> tuple[list[float], dict[str, list[float]], list[float]]:
    n = draw(intervals)
    money = st.floats(min_value=0.0, max_value=1e4, allow_nan=False)
    costs = draw(st.lists(money, min_size=n, max_size=n))
    share = st.floats(min_value=0.0, max_value=1.0)
    util = draw(st.lists(share, min_size=n, max_size=n))
    tenants = draw(st.lists(st.sampled_from("abcdef"), unique=True, max_size=5))
    count = st.floats(min_value=0.0, max_value=1e6, allow_nan=False)
    reqs = {t: draw(st.lists(count, min_size=n, max_size=n)) for t in tenants}
    return costs, reqs, util


@given(usage())
def test_allocations_and_idle_add_up_to_the_total(
    case: tuple[list[float], dict[str, list[float]], list[float]],
) -> None:
    costs, reqs, util = case
    split = allocate(costs, reqs, util)
    assert split.total == pytest.approx(math.fsum(costs), rel=1e-12, abs=1e-12)
    parts = math.fsum([*split.by_tenant.values(), split.idle])
    assert parts == pytest.approx(split.total, rel=1e-9, abs=1e-9)
    assert all(v >= 0 for v in split.by_tenant.values()) and split.idle >= 0


def test_allocation_follows_requests_and_keeps_idle_apart() -> None:
    split = allocate([10.0, 10.0], {"a": [3, 0], "b": [1, 0]}, [0.5, 0.9])
    assert split.by_tenant == {"a": 3.75, "b": 1.25}
    assert split.idle == 15.0  # half the first interval, all of the second (no requests)
    assert split.total == 20.0


def test_right_size_recommends_fewer_replicas_when_the_p95_is_under_target() -> None:
    rec = right_size([0.2] * 100, 10, target=0.75)
    assert rec.recommended == 3 and rec.change == "fewer"  # ceil(10 × 0.2 / 0.75)


def test_right_size_recommends_more_replicas_when_busy_hours_exceed_target() -> None:
    rec = right_size([0.5] * 90 + [0.95] * 10, 4, target=0.75)
    assert rec.change == "more" and rec.recommended == 6


def test_right_size_keeps_replicas_at_target() -> None:
    assert right_size([0.75] * 10, 4, target=0.75).change == "keep"


def test_smallest_fitting_picks_the_cheapest_type_with_enough_room() -> None:
    small = InstanceTypeSpec(cpus=2, memory_gib=8, on_demand_hourly=0.25)
    large = InstanceTypeSpec(cpus=16, memory_gib=64, on_demand_hourly=2.0)
    types = {"small": small, "large": large, "gpu": GPU}
    assert smallest_fitting(types, cpus=1, memory_gib=4) == "small"
    assert smallest_fitting(types, cpus=4, memory_gib=16) == "large"
    assert smallest_fitting(types, cpus=4, memory_gib=16, gpus=1) == "gpu"
    assert smallest_fitting(types, cpus=64, memory_gib=16) is None
