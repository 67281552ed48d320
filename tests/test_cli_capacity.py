"""`modelfleet capacity simulate`: a trace replayed through each policy, and bad input refused."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

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
        "capacity", "simulate", "--trace", str(trace), "--policy", "static", "--max", "40",
        "-o", "json",
    )  # fmt: skip
    assert code == 0, err
    figures = json.loads(out)
    assert figures["under_provisioned_share"] == 0
    assert figures["replica_hours"] == pytest.approx(40 * 72)


def test_a_bad_csv_line_exits_2_naming_the_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    path = tmp_path / "bad.csv"
    path.write_text("timestamp,requests\n0,100\n3600,lots\n")
    code, out, err = cli("capacity", "simulate", "--trace", str(path))
    assert code == 2
    assert "line 3" in err
    assert "lots" in err


@pytest.mark.parametrize("args", [["capacity"], ["capacity", "simulate"]])
def test_help_exits_0(cli, args: list[str]) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    code, out, _ = cli(*args, "--help")
    assert code == 0
    assert "Usage" in out
