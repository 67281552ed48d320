"""`modelfleet capacity`: simulate, plan, cost and rightsize, and bad input refused."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelfleet.registry.replicas import ReplicaTarget, set_replica_target
from modelfleet.settings import Settings
from modelfleet.store import open_store
from tests.capacity.test_usage import (
    FAST,
    FLEET,
    SLOW,
    decide,
    every_minute,
    traffic,
    write_fleet,
)
from tests.test_cli import cli  # noqa: F401  (the fixture)


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    """Three days of hourly requests with a daily cycle, peaking at 1,500 rps."""
    path = tmp_path / "trace.csv"
    rows = ["timestamp,requests"]
    for hour in range(72):
        rps = 1000.0 + 500.0 * math.sin(2 * math.pi * (hour % 24) / 24)
        rows.append(f"{hour * 3600},{rps * 3600:.0f}")
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("policy", ["predictive", "reactive", "static"])
def test_simulate_prints_the_figures_for_each_policy(cli, trace: Path, policy: str) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    code, out, err = cli("capacity", "simulate", "--trace", str(trace), "--policy", policy)
    assert code == 0, err
    for heading in ("UNDER-PROVISIONED", "MEAN UTILIZATION", "REPLICA-HOURS", "COST"):
        assert heading in out
    assert policy in out

    code, out, err = cli(
        "capacity", "simulate", "--trace", str(trace), "--policy", policy, "-o", "json"
    )
    assert code == 0, err
    figures = json.loads(out)
    assert figures["policy"] == policy
    assert figures["intervals"] == 72
    assert 0 <= figures["under_provisioned_share"] <= 1
    assert 0 < figures["mean_utilization"] <= 1
    assert figures["cost"] == pytest.approx(figures["replica_hours"] * 0.10)


def test_static_fleet_sized_above_the_peak_is_never_under_provisioned(cli, trace: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    # 1,500 rps peak / 50 rps per replica = 30 replicas; 40 is above it.
    code, out, err = cli(
        "capacity", "simulate", "--trace", str(trace), "--policy", "static",
        "--per-replica-rps", "50", "--replicas", "40", "-o", "json",
    )  # fmt: skip
    assert code == 0, err
    figures = json.loads(out)
    assert figures["under_provisioned_share"] == 0
    assert figures["replica_hours"] == pytest.approx(40 * 72)


def test_static_defaults_to_the_peak_at_the_target_utilization(cli, trace: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    code, out, err = cli(
        "capacity", "simulate", "--trace", str(trace), "--policy", "static",
        "--per-replica-rps", "50", "-o", "json",
    )  # fmt: skip
    assert code == 0, err
    figures = json.loads(out)
    assert figures["under_provisioned_share"] == 0
    assert figures["replica_hours"] == pytest.approx(40 * 72)  # ceil(1,500 / (50 × 0.75))


def test_simulate_reads_the_interval_and_a_replica_size_from_the_trace(cli, trace: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    code, out, err = cli("capacity", "simulate", "--trace", str(trace), "-o", "json")
    assert code == 0, err
    figures = json.loads(out)
    assert figures["interval_s"] == 3600
    assert "--per-replica-rps not given" in err
    # The busy hours (95th percentile, about 1,490 rps) fill 20 replicas.
    assert 70 < figures["per_replica_rps"] < 76


def test_a_bad_csv_line_exits_2_naming_the_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    path = tmp_path / "bad.csv"
    path.write_text("timestamp,requests\n0,100\n3600,lots\n")
    code, out, err = cli("capacity", "simulate", "--trace", str(path))
    assert code == 2
    assert "line 3" in err
    assert "lots" in err


@pytest.mark.parametrize(
    "args",
    [["capacity"], ["capacity", "simulate"], ["capacity", "cost"], ["capacity", "rightsize"]],
)
def test_help_exits_0(cli, args: list[str]) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    code, out, _ = cli(*args, "--help")
    assert code == 0
    assert "Usage" in out


# -- cost, rightsize and plan on a store with traffic ---------------------------------------------


@pytest.fixture
def capacity_fleet(cli, tmp_path: Path) -> datetime:  # type: ignore[no-untyped-def]  # noqa: F811
    """digits under a CapacityPolicy on 2 replicas of 1 rps each (a recorded decision); returns
    the current minute."""
    code, _, err = cli("apply", "-f", str(write_fleet(tmp_path / "fleet")))
    assert code == 0, err
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with open_store(Settings.from_env().database_url).begin() as conn:
        decide(conn, now - timedelta(days=8), 2, 2, 1.0)
    return now


def test_cost_splits_used_cost_by_requests_and_shows_idle(cli, capacity_fleet: datetime) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    now = capacity_fleet
    with open_store(Settings.from_env().database_url).begin() as conn:
        traffic(conn, {"acme": 40, "bolt": 20}, every_minute(now - timedelta(hours=3), 60))
    code, out, err = cli("capacity", "cost", "--since", "1d", "-o", "json")
    assert code == 0, err
    report = json.loads(out)
    acme, bolt = report["tenants"]
    assert (acme["tenant"], acme["requests"], bolt["requests"]) == ("acme", 2400, 1200)
    assert acme["cost"] == pytest.approx(2 * bolt["cost"])
    assert report["total"] == pytest.approx(24 * 2 * 0.6)  # a day of 2 instances at 0.6
    assert acme["cost"] + bolt["cost"] + report["idle"]["cost"] == pytest.approx(
        report["total"], rel=1e-12
    )
    assert acme["cost"] + bolt["cost"] == pytest.approx(0.6)  # one hour at 50 % of 1.2
    assert acme["share"] + bolt["share"] + report["idle"]["share"] == pytest.approx(1.0)

    code, out, err = cli("capacity", "cost", "--model", "digits", "--since", "1d")
    assert code == 0, err
    for text in ("TENANT", "REQUESTS", "COST (USD)", "SHARE", "acme", "(idle)", "total", "28.80"):
        assert text in out


def test_cost_without_requests_is_all_idle(cli, capacity_fleet: datetime) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    code, out, err = cli("capacity", "cost", "--since", "2h", "-o", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["tenants"] == []
    assert report["idle"]["cost"] == report["total"] == pytest.approx(2 * 2 * 0.6)


def test_cost_refuses_an_unknown_model_and_a_model_never_measured(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    assert cli("apply", "-f", str(write_fleet(tmp_path / "fleet")))[0] == 0
    code, _, err = cli("capacity", "cost", "--model", "nope")
    assert code == 2 and "no CapacityPolicy" in err
    code, _, err = cli("capacity", "cost", "--model", "digits")
    assert code == 2 and "capacity controller" in err


def test_rightsize_recommends_fewer_replicas_when_utilization_is_low(  # type: ignore[no-untyped-def]
    cli,  # noqa: F811
    capacity_fleet: datetime,
    tmp_path: Path,
) -> None:
    now = capacity_fleet
    with open_store(Settings.from_env().database_url).begin() as conn:
        target = ReplicaTarget(8, 0)
        set_replica_target(conn, "digits", "v1", target, actor="t", action="scale", now=now)
        traffic(conn, {"acme": 60}, every_minute(now - timedelta(hours=2), 120))
    code, out, err = cli("capacity", "rightsize", "--since", "2h", "-o", "json")
    assert code == 0, err
    [row] = json.loads(out)["models"]
    assert row["replicas"] == 8 and row["p95_utilization"] == pytest.approx(0.125)
    assert (row["recommended"], row["change"]) == (2, "fewer")
    assert row["cheapest_fitting_type"] is None  # one instance type declared

    # A cheaper type as big as the current one is named.
    code, _, err = cli("apply", "-f", str(write_fleet(tmp_path / "fleet2", FLEET + CHEAPER)))
    assert code == 0, err
    code, out, err = cli("capacity", "rightsize", "--since", "2h")
    assert code == 0, err
    for text in ("MODEL", "P95 UTILIZATION", "RECOMMENDED", "fewer", "small (cheaper: tiny-price)"):
        assert text in out


CHEAPER = """---
kind: InstanceType
metadata: {name: tiny-price}
spec: {cpus: 4, memory_gib: 8, on_demand_hourly: 0.5}
"""


def _history(conn, now: datetime, latency: float) -> None:  # type: ignore[no-untyped-def]
    """Three days of one rollup an hour, 3,600 requests each."""
    hours = [now - timedelta(hours=h) for h in range(72, 0, -1)]
    traffic(conn, {"acme": 3600}, hours, latency=latency)


def test_plan_sizes_by_the_measured_capacity(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    assert cli("apply", "-f", str(write_fleet(tmp_path / "fleet")))[0] == 0
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with open_store(Settings.from_env().database_url).begin() as conn:
        _history(conn, now, FAST)
    code, out, err = cli("capacity", "plan", "--model", "digits", "--days", "1", "-o", "json")
    assert code == 0, err
    # The busiest minute met the objective: 3,600 a minute on the policy's 2 replicas.
    assert json.loads(out)["per_replica_rps"] == pytest.approx(30.0)
    code, out, err = cli(
        "capacity", "plan", "--model", "digits", "--days", "1", "--per-replica-rps", "5",
        "-o", "json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["per_replica_rps"] == 5.0  # given: it overrides


def test_plan_gives_every_hour_s_replicas(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    assert cli("apply", "-f", str(write_fleet(tmp_path / "fleet")))[0] == 0
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with open_store(Settings.from_env().database_url).begin() as conn:
        _history(conn, now, FAST)
    code, out, err = cli("capacity", "plan", "--model", "digits", "--days", "2", "-o", "json")
    assert code == 0, err
    plan = json.loads(out)
    replicas = [h["replicas"] for h in plan["hours"]]
    assert len(replicas) == 48
    assert [d["max_replicas"] for d in plan["days"]] == [max(replicas[:24]), max(replicas[24:])]
    assert "forecast_accuracy" in plan  # None here: a flat history has no seasonal-naive error
    code, out, err = cli("capacity", "plan", "--model", "digits", "--days", "1", "--hourly")
    assert code == 0, err
    assert out.count(":00 ") == 24


def test_plan_falls_back_to_the_decisions_capacity(cli, capacity_fleet: datetime) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    with open_store(Settings.from_env().database_url).begin() as conn:
        _history(conn, capacity_fleet, SLOW)
    code, out, err = cli("capacity", "plan", "--model", "digits", "--days", "1", "-o", "json")
    assert code == 0, err
    assert json.loads(out)["per_replica_rps"] == 1.0


def test_plan_without_a_measured_capacity_exits_2(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    assert cli("apply", "-f", str(write_fleet(tmp_path / "fleet")))[0] == 0
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with open_store(Settings.from_env().database_url).begin() as conn:
        _history(conn, now, SLOW)
    code, out, err = cli("capacity", "plan", "--model", "digits")
    assert code == 2
    assert "--per-replica-rps" in err and "capacity controller" in err
    code, out, err = cli(
        "capacity", "plan", "--model", "digits", "--days", "1", "--per-replica-rps", "10"
    )
    assert code == 0, err
