"""The capacity controller: each model's replicas for the next minutes, from forecast and load.

For every `CapacityPolicy`, once a minute:

1. **Per-replica capacity, measured**: over the last day's minutes whose p99 latency met the
   policy's `latency_objective`, the busiest per-replica throughput seen (requests per second
   divided by the replicas serving then). It is a lower bound of what a replica sustains, so
   it only rises as busier minutes meet the objective, and until a minute has been seen the
   scaler is reactive only.
2. **Demand forecast**, refitted every `forecast_every`: the model's hourly requests over the
   last four weeks into `DemandForecaster` (daily and weekly seasons, a damped trend,
   conformal intervals); its accuracy on the last week is kept as MASE against the
   seasonal-naive forecast.
3. **Decision**: the `Autoscaler` in the policy's mode: the forecast's upper bound over the
   start-up lead divided by the measured per-replica capacity at the target utilization, with
   Kubernetes HPA's reactive correction for what the forecast missed and its scale-down
   stabilization. A new replica count is written as the serving version's replica target
   (audited), which the gateways apply; every decision is recorded with its inputs.

Autoscaler state (the stabilization window) lives in memory: a restarted controller starts a
fresh window, which can only delay a scale-down, never an increase.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, insert, select

from modelfleet.capacity.autoscaler import Autoscaler, ScalingPolicy
from modelfleet.capacity.forecast import DemandForecaster, mase
from modelfleet.config.capacity import CapacityPolicySpec
from modelfleet.config.schema import CapacityPolicy, Deployment
from modelfleet.registry.declarations import declared
from modelfleet.registry.events import Event
from modelfleet.registry.replicas import replica_target, set_replica_target
from modelfleet.registry.resources import load_state
from modelfleet.store import Store
from modelfleet.store.tables import capacity_decisions, capacity_forecasts
from modelfleet.store.upsert import upsert
from modelfleet.telemetry.writer import read_rollups

SOURCE = "capacity"
_HOUR = timedelta(hours=1)
_HISTORY = timedelta(days=28)
_MEASURE_OVER = timedelta(days=1)


@dataclass
class _Model:
    scaler: Autoscaler
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
            serving = _serving_versions(conn)
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
        capacity = measured_capacity(conn, spec, version, minute, current)
        if capacity is None and spec.mode != "static":
            return []  # nothing to size replicas by until a minute has met the objective
        state = self._models.get(policy.name)
        if state is None or state.scaler.policy.per_replica_rps != (capacity or 1.0):
            scaler = Autoscaler(
                _scaling_policy(spec, capacity or 1.0),
                mode=spec.mode,
                static_replicas=spec.static_replicas,
            )
            state = self._models[policy.name] = _Model(scaler, state.forecast_at if state else None)
        if state.forecast_at is None or minute - state.forecast_at >= spec.forecast_every:
            _refit(conn, spec, minute, capacity)
            state.forecast_at = minute
        observed = _requests(conn, spec.model, minute - timedelta(minutes=1), minute) / 60.0
        upper = _upper_over_lead(conn, spec, minute)
        decision = state.scaler.decide(
            minute.timestamp(), current, observed, upper if capacity else None
        )
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


def measured_capacity(
    conn: Connection, spec: CapacityPolicySpec, version: str, now: datetime, replicas: int
) -> float | None:
    """Requests per second one replica served in the busiest minute of the last day that met
    the latency objective (None: no such minute yet)."""
    rollups = read_rollups(
        conn, since=now - _MEASURE_OVER, until=now, model=spec.model, version=version
    )
    per_minute: dict[datetime, list[Any]] = {}
    for rollup in rollups.values():
        per_minute.setdefault(rollup.key.minute, []).append(rollup)
    objective = spec.latency_objective.total_seconds()
    best = None
    for parts in per_minute.values():
        served = sum(r.requests - r.status["rejected"] for r in parts)
        if served == 0:
            continue
        sketch = parts[0].latency.copy()
        for r in parts[1:]:
            sketch.merge(r.latency)
        p99 = sketch.quantile(0.99)
        if p99 is not None and p99 <= objective:
            rate = served / 60.0 / max(replicas, 1)
            best = rate if best is None else max(best, rate)
    return best


def _refit(
    conn: Connection, spec: CapacityPolicySpec, now: datetime, capacity: float | None
) -> None:
    hours = _hourly(conn, spec.model, now - _HISTORY, now.replace(minute=0))
    if len(hours) < 24:
        return
    forecast = DemandForecaster().fit(hours).predict(24 * 7)
    accuracy = None
    if len(hours) >= 24 * 7 * 3:  # a week held out, two learned from
        held = hours[-168:]
        past = DemandForecaster().fit(hours[:-168]).predict(168)
        try:
            accuracy = mase(held, past.mean, hours[:-168], 168)
        except ValueError:
            accuracy = None
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


def _upper_over_lead(conn: Connection, spec: CapacityPolicySpec, now: datetime) -> float | None:
    """The forecast's upper bound, in requests per second, over the next start-up lead."""
    row = conn.execute(
        select(capacity_forecasts).where(capacity_forecasts.c.model == spec.model)
    ).one_or_none()
    if row is None:
        return None
    first = int((now - row.start) / _HOUR)
    last = int((now + spec.startup_lead - row.start) / _HOUR)
    window = row.upper[max(first, 0) : last + 1]
    return max(window) / 3600.0 if window else None


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


def _serving_versions(conn: Connection) -> dict[str, str]:
    out = {}
    for reg in load_state(conn).of_kind(Deployment):
        d = reg.resource
        assert isinstance(d, Deployment)
        if reg.serving_version is not None:
            out[d.spec.model] = reg.serving_version
    return out


def _scaling_policy(spec: CapacityPolicySpec, per_replica_rps: float) -> ScalingPolicy:
    return ScalingPolicy(
        min_replicas=spec.min_replicas,
        max_replicas=spec.max_replicas,
        per_replica_rps=per_replica_rps,
        startup_lead=spec.startup_lead.total_seconds(),
        target_utilization=spec.target_utilization,
        scale_down_stabilization=spec.scale_down_stabilization.total_seconds(),
        tolerance=spec.tolerance,
    )
