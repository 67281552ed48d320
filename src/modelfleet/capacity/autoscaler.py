"""Autoscaling decisions: how many replicas a model needs now, reactive or ahead of demand.

`reactive_replicas` is Kubernetes HPA's algorithm (the autoscaling/v2 "Algorithm details",
pkg/controller/podautoscaler/replica_calculator.go): with utilization
``u = load / (current × per_replica_rps)`` and ``ratio = u / target_utilization``,
``desired = ceil(current × ratio)``, no change while ``|ratio − 1| ≤ tolerance``, clamped to
``[min_replicas, max_replicas]``.

`predictive_replicas` sizes for a forecast's upper bound over the replica start-up lead:
``ceil(upper / (per_replica_rps × forecast_utilization))``, clamped. Its utilization target
is its own: HPA keeps a quarter of every replica free because it learns of a rise only after
it happened and then waits out the start-up; the predictive rule's headroom is the
prediction interval, which is already in ``upper``.

`Autoscaler.decide` turns those into a decision the way HPA's controller does
(``stabilizeRecommendationWithBehaviors`` with the default behaviour): scale-up is immediate;
scale-down goes only as low as the highest recommendation of the last
``scale_down_stabilization`` seconds. In predictive mode the reactive rule corrects what the
forecast missed: when the load just observed exceeded the upper bound forecast for it, the
recommendation is the larger of the forecast's and HPA's, so a spike is answered on the next
decision; while the forecast holds, HPA's more cautious count does not override it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, cast

Mode = Literal["predictive", "reactive", "static"]
MODES: tuple[Mode, ...] = ("predictive", "reactive", "static")

# ceil(4.000000000000001) would ask for a fifth replica that float rounding invented.
_CEIL_SLACK = 1e-9


@dataclass(frozen=True)
class ScalingPolicy:
    """How one model scales: bounds, the utilization aimed at, and measured capacity."""

    min_replicas: int
    max_replicas: int
    per_replica_rps: float
    """Requests per second one replica serves at full utilization, as measured."""
    startup_lead: float = 0.0
    """Seconds from asking for a replica until it serves; forecasts look this far ahead."""
    target_utilization: float = 0.75
    """The utilization HPA's rule aims at on the load observed."""
    forecast_utilization: float = 0.9
    """The utilization the forecast's upper bound may bring replicas to."""
    scale_down_stabilization: float = 300.0
    """Seconds of recommendations whose maximum bounds a scale-down (HPA's default)."""
    tolerance: float = 0.1
    """No change while the utilization ratio is within 1 ± tolerance (HPA's default)."""

    def __post_init__(self) -> None:
        if self.min_replicas < 1:
            raise ValueError(f"min_replicas must be at least 1, got {self.min_replicas}")
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"max_replicas ({self.max_replicas}) is below min_replicas ({self.min_replicas})"
            )
        if not (self.per_replica_rps > 0 and math.isfinite(self.per_replica_rps)):
            raise ValueError(f"per_replica_rps must be positive, got {self.per_replica_rps}")
        for name in ("target_utilization", "forecast_utilization"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if self.startup_lead < 0 or self.scale_down_stabilization < 0 or self.tolerance < 0:
            raise ValueError("startup_lead, scale_down_stabilization and tolerance must be ≥ 0")

    def clamp(self, replicas: int) -> int:
        """`replicas` brought within [min_replicas, max_replicas]."""
        return max(self.min_replicas, min(self.max_replicas, replicas))


def ceil_count(value: float) -> int:
    """``ceil(value)`` that ignores float noise: replicas for a load that needs 4.000000000000001."""
    return math.ceil(value - _CEIL_SLACK)


def _check_load(name: str, value: float) -> None:
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number ≥ 0, got {value}")


def reactive_replicas(current: int, observed_load_rps: float, policy: ScalingPolicy) -> int:
    """Kubernetes HPA's desired replica count for `observed_load_rps` spread over `current`."""
    _check_load("observed_load_rps", observed_load_rps)
    if current < 1:
        # HPA does not scale from zero; size directly for the load instead.
        return policy.clamp(
            ceil_count(observed_load_rps / (policy.per_replica_rps * policy.target_utilization))
        )
    utilization = observed_load_rps / (current * policy.per_replica_rps)
    ratio = utilization / policy.target_utilization
    if abs(ratio - 1.0) <= policy.tolerance:
        return policy.clamp(current)
    return policy.clamp(ceil_count(current * ratio))


def predictive_replicas(forecast_upper_rps_over_lead: float, policy: ScalingPolicy) -> int:
    """Replicas that serve the forecast's upper bound at the forecast utilization, clamped."""
    _check_load("forecast_upper_rps_over_lead", forecast_upper_rps_over_lead)
    per_replica = policy.per_replica_rps * policy.forecast_utilization
    return policy.clamp(ceil_count(forecast_upper_rps_over_lead / per_replica))


@dataclass(frozen=True)
class Decision:
    """One autoscaling decision: when, how many replicas, why, and from what."""

    at: float
    replicas: int
    reason: str
    inputs: Mapping[str, float] = field(hash=False)


class Autoscaler:
    """Decides replica counts one tick at a time; remembers recent recommendations.

    Settings are `policy`, `mode` and `static_replicas` (the count a static fleet keeps;
    None means `policy.max_replicas`, sized for the peak). The learned state is
    `recommendations_`, the (time, replicas) recommendations still inside the scale-down
    stabilization window, and `expected_rps_`, the upper bound the last predictive decision
    was sized for (the load it expected next); `state()` and `from_state()` carry them across
    restarts.
    """

    def __init__(
        self,
        policy: ScalingPolicy,
        mode: Mode = "predictive",
        static_replicas: int | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if static_replicas is not None and static_replicas < 0:
            raise ValueError(f"static_replicas must be ≥ 0, got {static_replicas}")
        self.policy = policy
        self.mode: Mode = mode
        self.static_replicas = static_replicas
        self.recommendations_: list[tuple[float, int]] = []
        self.expected_rps_: float | None = None

    def decide(
        self,
        now: float,
        current: int,
        observed_rps: float,
        forecast_upper_rps: float | None = None,
    ) -> Decision:
        """The replica count to run from `now`, given `current` replicas and the load seen.

        `forecast_upper_rps` is the forecast's upper bound of the load over the next
        `policy.startup_lead` seconds; predictive mode without one falls back to reactive.
        """
        policy = self.policy
        inputs: dict[str, float] = {"current": float(current), "observed_rps": observed_rps}
        if forecast_upper_rps is not None:
            inputs["forecast_upper_rps"] = forecast_upper_rps

        if self.mode == "static":
            wanted = (
                self.static_replicas if self.static_replicas is not None else policy.max_replicas
            )
            replicas = policy.clamp(wanted)
            inputs["static_replicas"] = float(wanted)
            return Decision(now, replicas, f"static: keep {replicas} replicas", inputs)

        reactive = reactive_replicas(current, observed_rps, policy)
        inputs["reactive"] = float(reactive)
        if self.mode == "predictive" and forecast_upper_rps is not None:
            predictive = predictive_replicas(forecast_upper_rps, policy)
            inputs["predictive"] = float(predictive)
            expected = self.expected_rps_
            missed = expected is None or observed_rps > expected
            self.expected_rps_ = forecast_upper_rps
            why = (
                f"forecast upper {forecast_upper_rps:g} rps over the next {policy.startup_lead:g} s "
                f"needs {predictive}"
            )
            if missed:
                recommendation = max(predictive, reactive)
                why += f"; observed {observed_rps:g} rps"
                if expected is not None:
                    inputs["expected_rps"] = expected
                    why += f", above the {expected:g} expected,"
                why += f" needs {reactive}"
            else:
                recommendation = predictive
        else:
            recommendation = reactive
            why = f"observed {observed_rps:g} rps on {current} replicas needs {reactive}"
            if self.mode == "predictive":
                why += " (no forecast, reactive only)"

        # HPA keeps recommendations newer than the cutoff; the scale-down floor is their maximum.
        cutoff = now - policy.scale_down_stabilization
        window = [(at, r) for at, r in self.recommendations_ if at > cutoff]
        window.append((now, recommendation))
        self.recommendations_ = window
        floor = max(r for _, r in window)
        inputs["stabilized"] = float(floor)

        if recommendation > current:
            replicas = recommendation
            verdict = f"scale up from {current} to {replicas}"
        elif floor < current:
            replicas = floor
            verdict = f"scale down from {current} to {replicas}"
            if floor > recommendation:
                verdict += (
                    f" (not {recommendation}: {policy.scale_down_stabilization:g} s stabilization)"
                )
        else:
            replicas = current
            verdict = f"keep {current}"
            if recommendation < current:
                verdict += (
                    f" (recommended {recommendation}, held for "
                    f"{policy.scale_down_stabilization:g} s stabilization)"
                )
        replicas = policy.clamp(replicas)
        return Decision(now, replicas, f"{self.mode}: {verdict}: {why}", inputs)

    def state(self) -> dict[str, object]:
        """The learned state as plain, JSON-serializable data."""
        return {
            "recommendations": [[at, r] for at, r in self.recommendations_],
            "expected_rps": self.expected_rps_,
        }

    @classmethod
    def from_state(
        cls,
        policy: ScalingPolicy,
        state: Mapping[str, object],
        mode: Mode = "predictive",
        static_replicas: int | None = None,
    ) -> Autoscaler:
        """An autoscaler with these settings that resumes from `state()`'s output."""
        scaler = cls(policy, mode, static_replicas)
        raw = state.get("recommendations", [])
        if not isinstance(raw, Sequence):
            raise ValueError("state['recommendations'] must be a list of [time, replicas]")
        recommendations: list[tuple[float, int]] = []
        for item in raw:
            if not isinstance(item, Sequence) or len(item) != 2:
                raise ValueError(f"bad recommendation in state: {item!r}")
            at, replicas = cast(Sequence[object], item)
            if not isinstance(at, int | float) or not isinstance(replicas, int):
                raise ValueError(f"bad recommendation in state: {item!r}")
            recommendations.append((float(at), replicas))
        scaler.recommendations_ = recommendations
        expected = state.get("expected_rps")
        if expected is not None and not isinstance(expected, int | float):
            raise ValueError(f"state['expected_rps'] must be a number, got {expected!r}")
        scaler.expected_rps_ = None if expected is None else float(expected)
        return scaler
