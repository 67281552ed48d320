"""The capacity controller: each model's replicas for the next minutes, from forecast and load.

For every `CapacityPolicy`, once a minute:

1. **Per-replica capacity, measured** (`measure.py`): over the last day's minutes whose p99
   latency met the policy's `latency_objective`, the busiest per-replica throughput seen
   (requests per second divided by the replicas that ran then). It is a lower bound of what
   a replica sustains, so it only rises as busier minutes meet the objective; until a minute
   has been measured, nothing is scaled.
2. **Demand forecast**, refitted every `forecast_every`: the model's hourly requests over the
   last four weeks into `DemandForecaster` (daily and weekly seasons, a damped trend,
   conformal intervals), stored with its accuracy on the last week (or day, with less than
   three weeks) as MASE against the seasonal-naive forecast. The same fit rebases the
   model's `OnlineForecaster`, which follows the minutes: the seasonal base interpolated to
   minutes, corrected by the minutes just seen, bounded by the `forecast_level` quantile of
   its own recent errors.
3. **Decision**: the `Autoscaler` in the policy's mode: the upper bound over the start-up lead
   divided by the measured per-replica capacity at `forecast_utilization`, with Kubernetes
   HPA's rule (at `target_utilization`) when the load seen exceeded the bound, and HPA's
   scale-down stabilization. A new replica count is written as the serving version's replica
   target (audited), which the gateways apply; every decision is recorded with its inputs.

Autoscaler and forecaster state live in memory. A restarted controller starts a fresh
stabilization window, which can only delay a scale-down, and a fresh window of errors: until
it holds two hours of them, the bound is the forecast plus 30 %, which errs wide.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import Connection, insert

from modelfleet.capacity.autoscaler import Autoscaler, ScalingPolicy
from modelfleet.capacity.forecast import DemandForecaster, holdout_mase, two_sided
from modelfleet.capacity.measure import CapacityMeter, serving_versions
from modelfleet.capacity.online import OnlineForecaster
from modelfleet.capacity.replay import upper_over_window
from modelfleet.config.capacity import CapacityPolicySpec
from modelfleet.config.schema import CapacityPolicy
from modelfleet.registry.declarations import declared
from modelfleet.registry.events import Event
from modelfleet.registry.replicas import replica_target, set_replica_target
from modelfleet.store import Store
from modelfleet.store.tables import capacity_decisions, capacity_forecasts
from modelfleet.store.upsert import upsert
from modelfleet.telemetry.writer import read_rollups

SOURCE = "capacity"
_HOUR = timedelta(hours=1)
_HISTORY = timedelta(days=28)
_MINUTE_S = 60.0


@dataclass
class _Model:
    scaler: Autoscaler
    forecaster: OnlineForecaster
    meter: CapacityMeter
    forecast_at: datetime | None = None


class CapacityController:
    """Measures, forecasts and scales every model with a capacity policy; see the module."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._models: dict[str, _Model] = {}
        self._last: datetime | None = None

    def tick(self, now: datetime) -> list[Event]:
        minute = now.replace(second=0, microsecond=0)
        if self._last == minute:
            return []
        self._last = minute
        events: list[Event] = []
        with self.store.begin() as conn:
            serving = serving_versions(conn)
            for policy in declared(conn, CapacityPolicy):
                version = serving.get(policy.spec.model)
                if version is not None:
                    events += self._scale(conn, policy, version, minute)
        return events

    def _scale(
        self, conn: Connection, policy: CapacityPolicy, version: str, minute: datetime
    ) -> list[Event]:
        spec = policy.spec
        current = replica_target(conn, spec.model, version).replicas or spec.min_replicas
        state = self._models.get(policy.name)
        if state is None or state.meter.version != version or state.meter.spec != spec:
            # A new policy or version: measure and learn afresh.
            state = self._models[policy.name] = _Model(
                Autoscaler(_scaling_policy(spec, 1.0), spec.mode, spec.static_replicas),
                OnlineForecaster(_MINUTE_S, level=spec.forecast_level),
                CapacityMeter(spec, version),
            )
        capacity = state.meter.measure(conn, minute, current)
        if capacity is None and spec.mode != "static":
            return []  # nothing to size replicas by until a minute has met the objective
        scaling = _scaling_policy(spec, capacity or 1.0)
        scaler = state.scaler
        if (scaler.policy, scaler.mode, scaler.static_replicas) != (
            scaling,
            spec.mode,
            spec.static_replicas,
        ):
            # A new measurement or policy: keep the stabilization window and expectation.
            scaler = Autoscaler.from_state(
                scaling, state.scaler.state(), spec.mode, spec.static_replicas
            )
            state.scaler = scaler
        index = int(minute.timestamp() // _MINUTE_S)
        last = _requests(conn, spec.model, minute - timedelta(minutes=1), minute)
        state.forecaster.observe(index - 1, float(last))
        if state.forecast_at is None or minute - state.forecast_at >= spec.forecast_every:
            model = _refit(conn, spec, minute, capacity)
            if model is not None:
                state.forecaster.rebase(model, int(minute.replace(minute=0).timestamp() // 60))
            state.forecast_at = minute
        upper = None
        if state.forecaster.base_ is not None and capacity:
            lead = spec.startup_lead.total_seconds()
            outlook = state.forecaster.outlook(index, int(lead // _MINUTE_S) + 2)
            upper = upper_over_window(outlook.upper, _MINUTE_S, lead)
        decision = state.scaler.decide(minute.timestamp(), current, last / _MINUTE_S, upper)
        conn.execute(
            insert(capacity_decisions).values(
                model=spec.model,
                version=version,
                at=minute,
                replicas=decision.replicas,
                previous=current,
                reason=decision.reason,
                inputs={**decision.inputs, "per_replica_rps": capacity},
            )
        )
        if decision.replicas == current:
            return []
        target = replica_target(conn, spec.model, version)
        set_replica_target(
            conn,
            spec.model,
            version,
            replace(target, replicas=decision.replicas),
            actor="capacity",
            action="scale",
            now=minute,
        )
        return [
            Event(
                at=minute,
                source=SOURCE,
                kind="capacity.scaled",
                severity="info",
                subject=f"{spec.model}/{version}",
                message=f"{spec.model}/{version}: {current} -> {decision.replicas} replicas "
                f"({decision.reason})",
                details={"from": current, "to": decision.replicas, **decision.inputs},
            )
        ]


def _refit(
    conn: Connection, spec: CapacityPolicySpec, now: datetime, capacity: float | None
) -> DemandForecaster | None:
    """Fit and store the week's forecast; return the fitted model."""
    hours = _hourly(conn, spec.model, now - _HISTORY, now.replace(minute=0))
    if len(hours) < 24:
        return None
    model = DemandForecaster(level=two_sided(spec.forecast_level)).fit(hours)
    forecast = model.predict(24 * 7)
    scored = holdout_mase(hours)
    accuracy = scored[0] if scored else None
    upsert(
        conn,
        capacity_forecasts,
        [
            {
                "model": spec.model,
                "fitted_at": now,
                "start": now.replace(minute=0),
                "mean": forecast.mean.tolist(),
                "lower": forecast.lower.tolist(),
                "upper": forecast.upper.tolist(),
                "method": "mstl-ets",
                "mase": accuracy,
                "per_replica_rps": capacity,
            }
        ],
        unique=["model"],
        update=[
            "fitted_at",
            "start",
            "mean",
            "lower",
            "upper",
            "method",
            "mase",
            "per_replica_rps",
        ],
    )
    return model


def _hourly(conn: Connection, model: str, since: datetime, until: datetime) -> np.ndarray:
    rollups = read_rollups(conn, since=since, until=until, model=model)
    if not rollups:
        return np.zeros(0)
    first = min(r.key.minute for r in rollups.values()).replace(minute=0)
    hours = int((until - first) / _HOUR)
    out = np.zeros(max(hours, 0))
    for rollup in rollups.values():
        index = int((rollup.key.minute - first) / _HOUR)
        if 0 <= index < len(out):
            out[index] += rollup.requests
    return out


def _requests(conn: Connection, model: str, since: datetime, until: datetime) -> int:
    return sum(
        r.requests for r in read_rollups(conn, since=since, until=until, model=model).values()
    )


def _scaling_policy(spec: CapacityPolicySpec, per_replica_rps: float) -> ScalingPolicy:
    return ScalingPolicy(
        min_replicas=spec.min_replicas,
        max_replicas=spec.max_replicas,
        per_replica_rps=per_replica_rps,
        startup_lead=spec.startup_lead.total_seconds(),
        target_utilization=spec.target_utilization,
        forecast_utilization=spec.forecast_utilization,
        scale_down_stabilization=spec.scale_down_stabilization.total_seconds(),
        tolerance=spec.tolerance,
    )
