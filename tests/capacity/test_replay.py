"""Replaying demand traces through autoscalers: shortfalls, utilization, cost, trace files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelfleet.capacity.autoscaler import ScalingPolicy
from modelfleet.capacity.replay import read_trace, replay, seasonal_naive_upper

INTERVAL = 60.0
# 1 rps for 20 minutes, a sudden 10 rps spike for 10 minutes, then 1 rps again.
DEMAND = [60.0] * 20 + [600.0] * 10 + [60.0] * 30
TRACE = [(i * INTERVAL, r) for i, r in enumerate(DEMAND)]
POLICY = ScalingPolicy(min_replicas=1, max_replicas=20, per_replica_rps=2.0, startup_lead=120.0)


def perfect_forecaster(history: np.ndarray, h: int) -> np.ndarray:
    """The demand that will really come: the next h intervals of the trace."""
    start = len(history)
    return np.array(DEMAND[start : start + h], dtype=float)


def test_a_static_policy_sized_for_the_peak_is_never_under_provisioned() -> None:
    result = replay(
        TRACE,
        POLICY,
        "static",
        interval_s=INTERVAL,
        startup_delay_s=120.0,
        price_per_replica_hour=0.5,
        static_replicas=5,  # 5 replicas × 2 rps × 60 s = 600 requests, the peak
    )
    assert result.under_provisioned_share == 0.0
    assert np.array_equal(result.served, result.demand)


def test_replica_hours_and_cost_add_up_exactly() -> None:
    static = replay(
        TRACE,
        POLICY,
        "static",
        interval_s=INTERVAL,
        startup_delay_s=0.0,
        price_per_replica_hour=0.5,
        static_replicas=5,
    )
    assert static.replica_hours == 5.0  # 5 replicas for 60 minutes
    assert static.cost == 2.5
    reactive = replay(
        TRACE,
        POLICY,
        "reactive",
        interval_s=INTERVAL,
        startup_delay_s=120.0,
        price_per_replica_hour=0.37,
    )
    assert reactive.replica_hours == float(np.sum(reactive.billed_replicas)) * INTERVAL / 3600
    assert reactive.cost == reactive.replica_hours * 0.37


def test_reactive_under_provisions_a_sudden_spike_that_predictive_with_a_perfect_forecast_covers() -> (
    None
):
    reactive = replay(
        TRACE,
        POLICY,
        "reactive",
        interval_s=INTERVAL,
        startup_delay_s=120.0,
        price_per_replica_hour=1.0,
    )
    predictive = replay(
        TRACE,
        POLICY,
        "predictive",
        interval_s=INTERVAL,
        startup_delay_s=120.0,
        forecaster=perfect_forecaster,
        price_per_replica_hour=1.0,
    )
    spike = slice(20, 30)
    assert np.any(reactive.demand[spike] > reactive.capacity[spike])
    assert reactive.under_provisioned_share > 0.0
    assert predictive.under_provisioned_share == 0.0


def test_replicas_become_ready_only_after_the_startup_delay() -> None:
    result = replay(
        TRACE,
        POLICY,
        "reactive",
        interval_s=INTERVAL,
        startup_delay_s=120.0,
        price_per_replica_hour=1.0,
    )
    # The spike starts at interval 20, is seen at 21, and the replicas asked for then serve at 23.
    assert result.ready_replicas[21] == result.ready_replicas[19]
    assert result.billed_replicas[21] > result.ready_replicas[21]
    assert result.ready_replicas[23] > result.ready_replicas[21]


def test_a_replica_ready_partway_through_an_interval_serves_the_rest_of_it() -> None:
    policy = ScalingPolicy(min_replicas=1, max_replicas=10, per_replica_rps=10.0)
    hourly = [(0.0, 10.0 * 3600.0), (3600.0, 30.0 * 3600.0), (7200.0, 30.0 * 3600.0)]
    grown = replay(
        hourly,
        policy,
        "reactive",
        interval_s=3600.0,
        startup_delay_s=600.0,
        price_per_replica_hour=1.0,
    )
    # Hour 2 starts with 2 ready and 2 more asked for (HPA: 2 × 30 / 15): they serve 50 minutes.
    assert grown.ready_replicas[2] == 2
    assert grown.capacity[2] == (2 * 3600.0 + 2 * 3000.0) * 10.0
    assert grown.billed_replicas[2] == 4


def test_utilization_is_served_over_capacity_and_never_above_one() -> None:
    result = replay(
        TRACE,
        POLICY,
        "reactive",
        interval_s=INTERVAL,
        startup_delay_s=120.0,
        price_per_replica_hour=1.0,
    )
    assert np.allclose(result.utilization, result.served / result.capacity)
    assert np.all(result.utilization <= 1.0)
    assert result.mean_utilization == pytest.approx(float(np.mean(result.utilization)))


def test_predictive_without_a_forecaster_uses_the_seasonal_naive_upper_bound() -> None:
    result = replay(
        TRACE,
        POLICY,
        "predictive",
        interval_s=INTERVAL,
        startup_delay_s=0.0,
        price_per_replica_hour=1.0,
    )
    assert len(result.decisions) == len(TRACE)
    assert all("forecast upper" in decision.reason for decision in result.decisions[1:])


def test_seasonal_naive_takes_the_same_interval_a_day_earlier_with_a_margin() -> None:
    forecast = seasonal_naive_upper(interval_s=3600.0)
    history = np.arange(30, dtype=float)  # hourly; the next interval is hour 30
    assert forecast(history, 2) == pytest.approx([6 * 1.1, 7 * 1.1])
    assert forecast(np.array([4.0, 5.0]), 2) == pytest.approx([5 * 1.1, 5 * 1.1])
    assert forecast(np.array([], dtype=float), 3).tolist() == [0.0, 0.0, 0.0]


def test_replay_refuses_timestamps_that_do_not_increase() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        replay(
            [(0.0, 1.0), (0.0, 1.0)],
            POLICY,
            "reactive",
            interval_s=INTERVAL,
            startup_delay_s=0.0,
            price_per_replica_hour=1.0,
        )


def test_read_trace_accepts_a_header_iso_and_epoch_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    path.write_text(
        "timestamp,requests\n2026-01-01T00:00:00Z,10\n2026-01-01T00:01:00,12.5\n\n1767225720,3\n"
    )
    assert read_trace(path) == [(1767225600.0, 10.0), (1767225660.0, 12.5), (1767225720.0, 3.0)]


def test_read_trace_without_a_header_reads_the_first_line(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    path.write_text("0,1\n60,2\n")
    assert read_trace(path) == [(0.0, 1.0), (60.0, 2.0)]


def test_read_trace_names_the_line_it_cannot_read(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    path.write_text("timestamp,requests\n0,1\n60,many\n")
    with pytest.raises(ValueError, match=r"line 3: requests 'many' is not a number"):
        read_trace(path)
