"""Usage read from a real store: replicas that ran, requests served, cost and utilization."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, insert

from modelfleet.capacity.cost import allocate, right_size
from modelfleet.capacity.usage import Usage, per_replica_capacity, usage
from modelfleet.config import load_fleet
from modelfleet.config.capacity import CapacityPolicySpec, InstanceTypeSpec
from modelfleet.config.schema import CapacityPolicy, InstanceType
from modelfleet.registry import apply_fleet
from modelfleet.registry.declarations import declared
from modelfleet.registry.replicas import ReplicaTarget, set_replica_target
from modelfleet.store import Store
from modelfleet.store.tables import capacity_decisions
from modelfleet.telemetry.rollup import Rollup, RollupKey
from modelfleet.telemetry.writer import write_rollups
from tests.registry.conftest import FLEET as BASE_FLEET

START = datetime(2026, 11, 2, tzinfo=UTC)
# 0.6 an hour: a hundredth a minute. The latency objective is 250 ms.
FLEET = (
    BASE_FLEET
    + """---
kind: InstanceType
metadata: {name: small}
spec: {cpus: 2, memory_gib: 4, on_demand_hourly: 0.6}
---
kind: CapacityPolicy
metadata: {name: digits}
spec: {model: digits, instance_type: small, min_replicas: 2, max_replicas: 16}
"""
)
FAST, SLOW = 0.01, 1.0  # seconds: under the latency objective, and over it


def write_fleet(directory: Path, text: str = FLEET) -> Path:
    """fleet.yaml with the files it names, in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "v1.bin").write_bytes(b"model one")
    (directory / "ref.npz").write_bytes(b"reference")
    path = directory / "fleet.yaml"
    path.write_text(text)
    return path


def traffic(
    conn: Connection,
    per_minute: dict[str, int],
    minutes: Iterable[datetime],
    *,
    latency: float = SLOW,
    rejected: dict[str, int] | None = None,
) -> None:
    """Rollups of digits/v1: each tenant's requests served in each of `minutes`."""
    rollups = []
    for minute in minutes:
        for tenant, n in per_minute.items():
            rollup = Rollup(RollupKey.at(tenant, "digits", "v1", "eu-west", minute))
            for _ in range(n):
                rollup.record(200, latency)
            for _ in range((rejected or {}).get(tenant, 0)):
                rollup.record_rejection()
            rollups.append(rollup)
    write_rollups(conn, rollups, now=max(minutes, default=START))


def decide(
    conn: Connection,
    at: datetime,
    replicas: int,
    previous: int,
    rps: float | None,
    *,
    model: str = "digits",
    observed_rps: float | None = None,
) -> None:
    inputs: dict[str, float | None] = {"per_replica_rps": rps}
    if observed_rps is not None:
        inputs["observed_rps"] = observed_rps
    conn.execute(
        insert(capacity_decisions).values(
            model=model,
            version="v1",
            at=at,
            replicas=replicas,
            previous=previous,
            reason="test",
            inputs=inputs,
        )
    )


def every_minute(start: datetime, minutes: int) -> list[datetime]:
    return [start + timedelta(minutes=m) for m in range(minutes)]


@pytest.fixture
def fleet(store: Store, tmp_path: Path) -> tuple[CapacityPolicySpec, InstanceTypeSpec]:
    apply_fleet(store, load_fleet([write_fleet(tmp_path / "fleet")]), actor="t", now=START)
    with store.begin() as conn:
        [policy] = declared(conn, CapacityPolicy)
        [instance] = declared(conn, InstanceType)
    return policy.spec, instance.spec


def read(store: Store, fleet: tuple[CapacityPolicySpec, InstanceTypeSpec], hours: int) -> Usage:
    with store.begin() as conn:
        return usage(conn, *fleet, since=START, until=START + timedelta(hours=hours))


def test_replicas_follow_the_decisions_and_are_priced_per_minute(store: Store, fleet) -> None:  # type: ignore[no-untyped-def]
    with store.begin() as conn:
        decide(
            conn, START - timedelta(hours=1), 3, 2, 1.0
        )  # before the period: 3 ran from its start
        decide(conn, START + timedelta(minutes=90), 5, 3, 1.0)
    used = read(store, fleet, 2)
    assert used.replica_minutes == (3 * 60, 3 * 30 + 5 * 30)
    assert used.cost == pytest.approx((3 * 0.6, 4 * 0.6))
    assert used.per_replica_rps == 1.0  # the decisions' capacity: no minute met the objective


def test_before_the_first_decision_its_previous_count_ran(store: Store, fleet) -> None:  # type: ignore[no-untyped-def]
    with store.begin() as conn:
        decide(conn, START + timedelta(minutes=30), 6, 4, 1.0)
    assert read(store, fleet, 1).replica_minutes == (4 * 30 + 6 * 30,)


def test_without_decisions_the_replica_target_or_the_minimum_ran(store: Store, fleet) -> None:  # type: ignore[no-untyped-def]
    assert read(store, fleet, 1).replica_minutes == (2 * 60,)  # min_replicas
    with store.begin() as conn:
        set_replica_target(
            conn, "digits", "v1", ReplicaTarget(7, 0), actor="t", action="scale", now=START
        )
    used = read(store, fleet, 1)
    assert used.replica_minutes == (7 * 60,) and used.replicas_now == 7
    assert used.per_replica_rps is None
    with pytest.raises(ValueError, match="no measured per-replica capacity"):
        used.utilization()


def test_served_requests_leave_out_rejections_and_give_utilization(store: Store, fleet) -> None:  # type: ignore[no-untyped-def]
    with store.begin() as conn:
        decide(conn, START - timedelta(minutes=1), 2, 2, 1.0)  # 2 replicas × 60 requests a minute
        traffic(conn, {"acme": 60, "bolt": 30}, every_minute(START, 60), rejected={"bolt": 5})
    used = read(store, fleet, 2)
    assert used.served == {"acme": (3600, 0), "bolt": (1800, 0)}
    assert used.utilization() == pytest.approx([0.75, 0.0])
    assert used.utilization_at(1) == pytest.approx([1.5, 0.0])  # above 1: not clipped


def test_utilization_is_clipped_to_one(store: Store, fleet) -> None:  # type: ignore[no-untyped-def]
    with store.begin() as conn:
        decide(conn, START - timedelta(minutes=1), 2, 2, 1.0)
        traffic(conn, {"acme": 600}, every_minute(START, 60))
    assert read(store, fleet, 1).utilization() == [1.0]


def test_capacity_is_the_larger_of_measured_and_decided(store: Store, fleet) -> None:  # type: ignore[no-untyped-def]
    policy, _ = fleet
    now = START + timedelta(hours=1)
    with store.begin() as conn:
        assert per_replica_capacity(conn, policy, now) is None
        traffic(conn, {"acme": 240}, every_minute(START, 10), latency=FAST)
        # 240 a minute on the policy's 2 replicas, with p99 under the objective: 2 rps each.
        assert per_replica_capacity(conn, policy, now) == pytest.approx(2.0)
        decide(conn, START, 2, 2, 1.0)
        assert per_replica_capacity(conn, policy, now) == pytest.approx(2.0)
        decide(conn, START + timedelta(minutes=1), 2, 2, 4.0)  # a busier day's, remembered
        decide(conn, START + timedelta(minutes=2), 2, 2, None)  # static: nothing measured
        assert per_replica_capacity(conn, policy, now) == 4.0


def test_allocation_of_usage_adds_up_and_follows_requests(store: Store, fleet) -> None:  # type: ignore[no-untyped-def]
    with store.begin() as conn:
        decide(conn, START - timedelta(minutes=1), 2, 2, 1.0)
        traffic(conn, {"acme": 40, "bolt": 20}, every_minute(START, 60))
    used = read(store, fleet, 3)  # the last two hours served nothing
    split = allocate(used.cost, used.served, used.utilization())
    assert split.total == pytest.approx(sum(used.cost)) == pytest.approx(3 * 2 * 0.6)
    assert sum(split.by_tenant.values()) + split.idle == pytest.approx(split.total, rel=1e-12)
    assert split.by_tenant["acme"] == pytest.approx(2 * split.by_tenant["bolt"])
    # Hour 0 runs at 50 %: half its 1.2 is used; hours 1 and 2 are idle whole.
    assert sum(split.by_tenant.values()) == pytest.approx(0.6)
    assert split.idle == pytest.approx(0.6 + 2 * 1.2)


def test_an_idle_period_is_all_idle(store: Store, fleet) -> None:  # type: ignore[no-untyped-def]
    with store.begin() as conn:
        decide(conn, START - timedelta(minutes=1), 2, 2, 1.0)
    used = read(store, fleet, 2)
    split = allocate(used.cost, used.served, used.utilization())
    assert split.by_tenant == {} and split.idle == split.total == pytest.approx(2.4)


def test_low_utilization_is_right_sized_down(store: Store, fleet) -> None:  # type: ignore[no-untyped-def]
    with store.begin() as conn:
        set_replica_target(
            conn, "digits", "v1", ReplicaTarget(8, 0), actor="t", action="scale", now=START
        )
        decide(conn, START - timedelta(minutes=1), 8, 8, 1.0)
        traffic(conn, {"acme": 60}, every_minute(START, 120))  # one replica's worth of 8
    used = read(store, fleet, 2)
    advice = right_size(used.utilization_at(used.replicas_now), used.replicas_now, target=0.75)
    assert advice.utilization_p == pytest.approx(0.125)
    assert (advice.recommended, advice.change) == (2, "fewer")  # ceil(8 × 0.125 / 0.75)
