"""Autoscaling decisions: HPA's algorithm, stabilization, prediction, bounds, state."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelfleet.capacity.autoscaler import (
    MODES,
    Autoscaler,
    Mode,
    ScalingPolicy,
    predictive_replicas,
    reactive_replicas,
)

POLICY = ScalingPolicy(min_replicas=2, max_replicas=10, per_replica_rps=10.0, startup_lead=120.0)


def test_reactive_keeps_replicas_when_the_ratio_is_within_tolerance() -> None:
    # 4 replicas at 0.75 target serve 30 rps; 32 rps is a ratio of 1.067, inside 1 ± 0.1.
    assert reactive_replicas(4, 32.0, POLICY) == 4
    assert reactive_replicas(4, 27.1, POLICY) == 4


def test_reactive_scales_by_the_utilization_ratio_rounded_up() -> None:
    assert reactive_replicas(4, 60.0, POLICY) == 8  # ratio 2
    assert reactive_replicas(4, 40.0, POLICY) == 6  # ceil(4 × 1.333)
    assert reactive_replicas(4, 15.0, POLICY) == 2  # ratio 0.5


def test_reactive_ratio_of_exactly_an_integer_does_not_round_up_past_it() -> None:
    policy = ScalingPolicy(min_replicas=1, max_replicas=100, per_replica_rps=0.1, tolerance=0.0)
    # One replica's worth of load computes to a ratio of 1.0000000000000002 in floats.
    assert reactive_replicas(2, 0.1 * 0.75, policy) == 1


def test_reactive_clamps_to_min_and_max_replicas() -> None:
    assert reactive_replicas(4, 10_000.0, POLICY) == 10
    assert reactive_replicas(4, 0.0, POLICY) == 2
    assert reactive_replicas(20, 150.0, POLICY) == 10  # within tolerance, yet above max


def test_predictive_sizes_for_the_upper_bound_at_the_forecast_utilization() -> None:
    # 10 rps a replica at 0.9: 9 rps of the bound per replica.
    assert predictive_replicas(81.0, POLICY) == 9
    assert predictive_replicas(45.0, POLICY) == 5
    assert predictive_replicas(45.1, POLICY) == 6
    assert predictive_replicas(0.0, POLICY) == 2
    assert predictive_replicas(1e9, POLICY) == 10


def test_a_dip_right_after_a_peak_does_not_scale_down_until_the_window_has_passed() -> None:
    scaler = Autoscaler(POLICY, mode="reactive")
    peak = scaler.decide(0.0, 4, 60.0, None)
    assert peak.replicas == 8
    for now in (60.0, 120.0, 299.0):
        held = scaler.decide(now, 8, 10.0, None)
        assert held.replicas == 8
        assert "stabilization" in held.reason
    after = scaler.decide(300.0, 8, 10.0, None)
    assert after.replicas == 2


def test_scale_up_is_immediate_even_inside_the_stabilization_window() -> None:
    scaler = Autoscaler(POLICY, mode="reactive")
    assert scaler.decide(0.0, 4, 15.0, None).replicas == 2
    assert scaler.decide(1.0, 2, 60.0, None).replicas == 8  # 2 replicas at 4× the target


def test_predictive_scales_before_a_known_peak_by_the_lead_time() -> None:
    peak_at, lead = 600.0, POLICY.startup_lead

    def upper_over_lead(now: float) -> float:
        return 90.0 if now + lead >= peak_at else 15.0

    scaler = Autoscaler(POLICY, mode="predictive")
    current, sized_at = 2, None
    for now in range(0, 660, 60):
        decision = scaler.decide(float(now), current, 15.0, upper_over_lead(float(now)))
        if decision.replicas == 10 and sized_at is None:
            sized_at = float(now)
        current = decision.replicas
    assert sized_at == peak_at - lead


def test_predictive_still_answers_a_spike_the_forecast_missed() -> None:
    scaler = Autoscaler(POLICY, mode="predictive")
    scaler.decide(0.0, 2, 10.0, 15.0)  # sized for up to 15 rps
    decision = scaler.decide(60.0, 2, 30.0, 15.0)  # 30 rps came
    assert decision.inputs["expected_rps"] == 15.0
    assert decision.inputs["predictive"] == 2
    assert decision.inputs["reactive"] == 4  # HPA: 2 × 30 / (2 × 10 × 0.75)
    assert decision.replicas == 4
    assert "above the 15 expected" in decision.reason


def test_while_the_forecast_holds_hpa_does_not_override_it() -> None:
    scaler = Autoscaler(POLICY, mode="predictive")
    scaler.decide(0.0, 5, 40.0, 45.0)
    # 44 rps on 5 replicas is 88 % busy, above HPA's 0.75 ± 0.1, but within the bound.
    decision = scaler.decide(60.0, 5, 44.0, 45.0)
    assert decision.inputs["reactive"] == 6
    assert decision.replicas == 5


def test_every_decision_records_its_inputs_and_reason() -> None:
    decision = Autoscaler(POLICY).decide(10.0, 3, 20.0, 40.0)
    assert decision.at == 10.0
    assert decision.inputs["current"] == 3
    assert decision.inputs["observed_rps"] == 20.0
    assert decision.inputs["forecast_upper_rps"] == 40.0
    assert decision.reason.startswith("predictive: scale up from 3 to 5")


def test_predictive_without_a_forecast_falls_back_to_reactive_and_says_so() -> None:
    decision = Autoscaler(POLICY).decide(0.0, 4, 60.0, None)
    assert decision.replicas == 8
    assert "no forecast" in decision.reason


def test_static_mode_keeps_its_replica_count_whatever_the_load() -> None:
    scaler = Autoscaler(POLICY, mode="static", static_replicas=5)
    assert {scaler.decide(t, 3, load, 99.0).replicas for t, load in [(0, 0.0), (1, 1e6)]} == {5}
    assert Autoscaler(POLICY, mode="static").decide(0.0, 3, 0.0, None).replicas == 10


def test_state_round_trips_through_json_and_resumes_the_same_decisions() -> None:
    scaler = Autoscaler(POLICY, mode="reactive")
    scaler.decide(0.0, 4, 60.0, None)
    saved = json.loads(json.dumps(scaler.state()))
    resumed = Autoscaler.from_state(POLICY, saved, mode="reactive")
    assert resumed.recommendations_ == scaler.recommendations_
    assert resumed.decide(100.0, 8, 10.0, None) == scaler.decide(100.0, 8, 10.0, None)


def test_from_state_refuses_malformed_recommendations() -> None:
    with pytest.raises(ValueError, match="bad recommendation"):
        Autoscaler.from_state(POLICY, {"recommendations": [["soon", 3]]})


def test_policy_refuses_max_below_min() -> None:
    with pytest.raises(ValueError, match="below min_replicas"):
        ScalingPolicy(min_replicas=5, max_replicas=2, per_replica_rps=1.0)


@st.composite
def policies(draw: st.DrawFn) -> ScalingPolicy:
    low = draw(st.integers(1, 20))
    return ScalingPolicy(
        min_replicas=low,
        max_replicas=draw(st.integers(low, 50)),
        per_replica_rps=draw(st.floats(0.01, 1e4)),
        target_utilization=draw(st.floats(0.05, 1.0)),
        scale_down_stabilization=draw(st.floats(0.0, 600.0)),
        tolerance=draw(st.floats(0.0, 0.5)),
    )


loads = st.floats(0.0, 1e7)


@given(
    policy=policies(),
    mode=st.sampled_from(MODES),
    static=st.none() | st.integers(0, 100),
    ticks=st.lists(
        st.tuples(st.floats(0.0, 400.0), st.integers(0, 100), loads, st.none() | loads),
        min_size=1,
        max_size=30,
    ),
)
def test_decisions_are_always_within_min_and_max_replicas(
    policy: ScalingPolicy,
    mode: Mode,
    static: int | None,
    ticks: list[tuple[float, int, float, float | None]],
) -> None:
    scaler = Autoscaler(policy, mode, static)
    now = 0.0
    for step, current, observed, forecast in ticks:
        now += step
        decision = scaler.decide(now, current, observed, forecast)
        assert policy.min_replicas <= decision.replicas <= policy.max_replicas
