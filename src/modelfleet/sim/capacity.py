"""The capacity drill: a sudden load spike, and the capacity controller's replicas following it.

The retail-vision fleet and its `capacity.yaml` are applied to a fresh store. Three days of
product-recognizer's traffic are written as minute rollups (`sim/history.py`): a daily cycle,
Poisson noise, and latencies from the load model below with the policy's minimum replicas
serving. From that history the controller measures a replica's capacity and fits its demand
forecast. Then, minute by minute on a virtual clock, each minute's traffic is written the same
way and the real `CapacityController` ticks at the minute's end; partway through, the load
jumps to `spike` times its usual rate, holds, and falls back.

The load model, simple on purpose (the same queue as `FaultyBackend`'s):

- each replica serves `PER_REPLICA_RPS` requests a second; a request's service time is
  `LatencyModel()`'s, plus 3 ms of gateway overhead;
- a replica asked for serves `startup_lead` later; one let go stops at once. So the replicas
  serving in a minute are the fewest the target asked for over the last `startup_lead`;
- past 70 % of the serving replicas' capacity requests queue, as in an M/M/1 queue: each
  waits `rho / (1 - rho)` of its service time (rho capped at 0.99, the wait at 2 s).

Nothing else is simulated: no gateway, no HTTP, no requests refused.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import select

from modelfleet.capacity.controller import CapacityController
from modelfleet.config import load_fleet
from modelfleet.config.schema import CapacityPolicy
from modelfleet.registry import apply_fleet
from modelfleet.registry.declarations import declared
from modelfleet.registry.replicas import replica_target
from modelfleet.sim.faults import LatencyModel
from modelfleet.sim.history import LatencySampler, StreamLoad, model_latencies, synthetic_rollups
from modelfleet.store import Store, open_store
from modelfleet.store.tables import capacity_decisions
from modelfleet.telemetry.writer import write_rollups

MODEL = "product-recognizer"
VERSION = "v1"  # the deployment's serving version
PER_MINUTE = 180.0  # requests a minute, on average over the day
PER_REPLICA_RPS = 3.0  # what one replica really serves; the controller has to measure it
START = datetime(2026, 11, 5, 9, 0, tzinfo=UTC)  # a Thursday morning, at the day's mean load
_MINUTE = timedelta(minutes=1)
_CONFIDENCES = np.array([0.9])  # the drill looks at counts and latencies, not at answers


@dataclass(frozen=True)
class CapacityMinute:
    """One minute of the drill: the load offered, the replicas serving it, and the replicas the
    controller asked for once it had seen the minute, with why when the count changed."""

    minute: int
    at: datetime
    load_rps: float
    replicas: int
    serving: int
    p99_s: float | None
    reason: str | None = None


@dataclass(frozen=True)
class CapacityDrill:
    """What the drill saw, minute by minute, with the spike's first and last minutes."""

    timeline: list[CapacityMinute]
    spike_from: int
    spike_until: int
    spike: float
    min_replicas: int
    max_replicas: int
    database: Path

    @property
    def before(self) -> int:
        """Replicas just before the spike."""
        return self.timeline[self.spike_from - 1].replicas

    @property
    def peak(self) -> int:
        return max(m.replicas for m in self.timeline[self.spike_from : self.spike_until])

    @property
    def after(self) -> int:
        """Replicas at the end of the drill."""
        return self.timeline[-1].replicas


def run_capacity_drill(
    example: Path,
    workdir: Path,
    *,
    history: timedelta = timedelta(days=3),
    minutes: int = 40,
    spike_from: int = 5,
    spike_for: int = 15,
    spike: float = 3.0,
    seed: int = 0,
) -> CapacityDrill:
    """Write history, then run `minutes` with a `spike`x load from `spike_from` for `spike_for`
    minutes; see the module docstring."""
    database = workdir / "capacity.db"
    for stale in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        stale.unlink(missing_ok=True)  # a drill starts from nothing
    workdir.mkdir(parents=True, exist_ok=True)
    store = open_store(f"sqlite:///{database}")
    try:
        fleet = load_fleet([example / "fleet.yaml", example / "capacity.yaml"])
        apply_fleet(store, fleet, actor="sim", now=START - history)
        with store.begin() as conn:
            (policy,) = [p for p in declared(conn, CapacityPolicy) if p.spec.model == MODEL]
        spec = policy.spec
        lead = int(spec.startup_lead / _MINUTE)
        load = StreamLoad("acme-grocers", MODEL, VERSION, "eu-west", PER_MINUTE, daily_swing=0.5)
        past = synthetic_rollups(
            [load],
            START - history,
            int(history / _MINUTE),
            confidences=_CONFIDENCES,
            latencies=_queued(spec.min_replicas),
            seed=seed,
        )
        with store.begin() as conn:
            write_rollups(conn, past, now=START)
        controller = CapacityController(store)
        asked = [_replicas(store, spec.min_replicas)] * (lead + 1)
        timeline: list[CapacityMinute] = []
        for m in range(minutes):
            at = START + m * _MINUTE
            spiking = spike_from <= m < spike_from + spike_for
            offered = replace(load, per_minute=PER_MINUTE * spike) if spiking else load
            serving = min(asked[-(lead + 1) :])
            (rollup,) = synthetic_rollups(
                [offered],
                at,
                1,
                confidences=_CONFIDENCES,
                latencies=_queued(serving),
                seed=seed + 1 + m,
            )
            with store.begin() as conn:
                write_rollups(conn, [rollup], now=at + _MINUTE)
            before = asked[-1]
            controller.tick(at + _MINUTE)
            asked.append(_replicas(store, spec.min_replicas))
            timeline.append(
                CapacityMinute(
                    minute=m,
                    at=at,
                    load_rps=rollup.requests / 60.0,
                    replicas=asked[-1],
                    serving=serving,
                    p99_s=rollup.latency.quantile(0.99),
                    reason=_reason(store, at + _MINUTE) if asked[-1] != before else None,
                )
            )
        return CapacityDrill(
            timeline,
            spike_from,
            spike_from + spike_for,
            spike,
            spec.min_replicas,
            spec.max_replicas,
            database,
        )
    finally:
        store.close()


def _queued(serving: int) -> LatencySampler:
    """Service times with the queueing wait of `serving` replicas offered n requests a minute."""
    service = model_latencies(LatencyModel())

    def draw(rng: np.random.Generator, n: int) -> np.ndarray:
        base = service(rng, n)
        rho = min(n / 60.0 / (max(serving, 1) * PER_REPLICA_RPS), 0.99)
        if rho <= 0.7:
            return base
        return base + np.minimum(2.0, base * rho / (1.0 - rho))

    return draw


def _replicas(store: Store, default: int) -> int:
    with store.begin() as conn:
        return replica_target(conn, MODEL, VERSION).replicas or default


def _reason(store: Store, at: datetime) -> str | None:
    t = capacity_decisions
    with store.begin() as conn:
        return conn.execute(
            select(t.c.reason).where(t.c.model == MODEL, t.c.at == at).order_by(t.c.id.desc())
        ).scalar()
