"""Fault drills: a fault is injected, and the real control plane must notice, fix and record it.

A `ResponseDrill` is the retail-vision example run for real on a virtual clock: its fleet and
its alerting file (`alerting.yaml`: routes, on-call, runbooks) applied to a fresh store, two
gateways (eu-west and us-east) serving real HTTP on `FaultyBackend`s, the example's receivers
pointed at a recording `Receiver`, and the whole control loop (`control.controllers`). Two days
of synthetic history warm the detectors up; then every 10 virtual seconds each tenant sends
its requests to its region's gateway (or where its region fails over to), the gateways flush,
the clock moves on and the control loop ticks.

Each scenario injects one fault and is judged on the incidents the fleet itself recorded:
detected (an incident opened after the fault), MTTD (from the fault to detection), resolved
without a person, MTTR (from detection to the last serious incident's resolution) and the
pages sent.
"""

from __future__ import annotations

import asyncio
import gc
import random
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np

from modelfleet.alerts.commands import acknowledge
from modelfleet.alerts.groups import open_groups
from modelfleet.clock import VirtualClock
from modelfleet.config import load_fleet, load_fleet_text
from modelfleet.control import ControlLoop, controllers
from modelfleet.gateway.app import Gateway, GatewaySettings
from modelfleet.gateway.quotas import LocalQuotas
from modelfleet.gateway.routing import version_spec
from modelfleet.gateway.server import GatewayServer, ServingThread
from modelfleet.incidents import Incident, TimelineEntry, list_incidents, timeline
from modelfleet.registry import apply_fleet, create_key, load_state
from modelfleet.registry.splits import set_serving_version
from modelfleet.runtime.backend import VersionRef
from modelfleet.runtime.loader import load_model
from modelfleet.sim.demo import overexposed
from modelfleet.sim.faults import FaultyBackend
from modelfleet.sim.history import StreamLoad, sketch_latencies, synthetic_rollups
from modelfleet.sim.receiver import Receiver
from modelfleet.sim.rollout import with_blank_frames
from modelfleet.store import open_store
from modelfleet.store.tables import region_status
from modelfleet.telemetry.rollup import pooled
from modelfleet.telemetry.writer import read_rollups, write_rollups

MODEL = "product-recognizer"
DEPLOYMENT = "product-recognizer"
STABLE = "v1"
# Tenants and the region whose gateway serves them.
HOMES = {"acme-grocers": "eu-west", "bayside-market": "us-east", "corner-deli": "us-east"}
PER_MINUTE = 48.0  # each tenant's requests a minute
TICK = timedelta(seconds=10)
ACK_AFTER = timedelta(minutes=3)  # how long the person paged takes to acknowledge
BLANK_SHARE = 0.1  # cameras that are off send blank frames, in history and live
START = datetime(2026, 11, 4, 10, 0, tzinfo=UTC)  # a Wednesday morning


@dataclass
class Outcome:
    """How the fleet answered one fault."""

    scenario: str
    fault_at: datetime
    incidents: list[Incident]
    pages: int
    timelines: dict[int, list[TimelineEntry]] = field(default_factory=dict)

    @property
    def detected(self) -> bool:
        return bool(self.incidents)

    @property
    def serious(self) -> list[Incident]:
        critical = [i for i in self.incidents if i.severity == "critical"]
        return critical or self.incidents

    @property
    def mttd(self) -> timedelta | None:
        return (
            min(i.detected_at for i in self.incidents) - self.fault_at if self.incidents else None
        )

    @property
    def resolved_automatically(self) -> bool:
        return (
            bool(self.serious)
            and all(i.resolved_at is not None and i.resolved_automatically for i in self.serious)
            and self.pages == 0
        )

    @property
    def mttr(self) -> timedelta | None:
        serious = self.serious
        if not serious or any(i.resolved_at is None for i in serious):
            return None
        ends = [i.resolved_at for i in serious if i.resolved_at is not None]
        return max(ends) - min(i.detected_at for i in serious)

    @property
    def most_pages_per_incident(self) -> int:
        return max((i.pages for i in self.incidents), default=0)


@dataclass
class _Traffic:
    load: dict[str, float] = field(default_factory=lambda: dict.fromkeys(HOMES, 1.0))
    rows: dict[str, np.ndarray] = field(default_factory=dict)
    unreachable: set[str] = field(default_factory=set)  # regions the network cannot reach
    failed: int = 0  # requests that could not reach any gateway


class ResponseDrill:
    """The example fleet under faults; see the module docstring. Use as a context manager."""

    def __init__(self, example: Path, workdir: Path, *, history: timedelta = timedelta(days=2)):
        self.example = example
        self.clock = VirtualClock(START)
        self.receiver = Receiver()
        self.receiver.start()
        database = workdir / "fleet.db"
        for stale in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            stale.unlink(missing_ok=True)  # a drill starts from nothing
        url = f"sqlite:///{database}"
        self.store = open_store(url)
        self._apply()
        with self.store.begin() as conn:
            self.keys = {
                t: create_key(conn, t, actor="sim", now=self.clock.now()).plaintext for t in HOMES
            }
        rows = _reference_rows(example)
        self.traffic = _Traffic(
            rows={t: with_blank_frames(rows, BLANK_SHARE, seed=i) for i, t in enumerate(HOMES)}
        )
        self.backends: dict[str, FaultyBackend] = {}
        self.gateways: dict[str, ServingThread] = {}
        for i, region in enumerate(sorted(set(HOMES.values()))):
            backend = FaultyBackend(self.clock, seed=i)
            gateway = Gateway(backend, LocalQuotas(), self.clock, GatewaySettings(region=region))
            server = GatewayServer(gateway, open_store(url), self.clock, flush_s=3600)
            serving = ServingThread(server)
            serving.start()
            self.backends[region], self.gateways[region] = backend, serving
        self._rng = random.Random(0)
        self._sent = 0
        # Calibration: two minutes of live traffic, whose latencies (as the gateways measured
        # them on this machine, now) the synthetic history then draws from.
        self.loop = ControlLoop([], self.clock)
        self.rounds(timedelta(minutes=2))
        self._write_history(history, rows, start=START)
        self.loop = ControlLoop(controllers(self.store, external_url=self.receiver.url), self.clock)
        self.loop.tick()  # the detectors learn the history
        # The harness made millions of objects; collect them now, not in a pause mid-drill
        # that the gateways would measure as a latency spike of their own.
        gc.collect()
        gc.freeze()

    def _apply(self) -> None:
        now = self.clock.now()
        apply_fleet(self.store, load_fleet([self.example / "fleet.yaml"]), actor="sim", now=now)
        text = (self.example / "alerting.yaml").read_text()
        text = text.replace("http://127.0.0.1:9093", self.receiver.url)
        alerting = load_fleet_text(text, "alerting.yaml", self.example)
        apply_fleet(self.store, alerting, actor="sim", now=now)

    def _write_history(self, span: timedelta, rows: np.ndarray, *, start: datetime) -> None:
        """Synthetic minutes before `start`, with the stable version's real confidences and
        the latencies measured since."""
        with self.store.begin() as conn:
            spec = version_spec(load_state(conn), MODEL, STABLE)
        assert spec is not None
        model = load_model(spec.format, spec.artifact, spec.sha256, spec.features, spec.labels)
        outputs = model.predict({"pixels": with_blank_frames(rows, BLANK_SHARE)})
        assert outputs.confidences is not None
        loads = [StreamLoad(t, MODEL, STABLE, region, PER_MINUTE) for t, region in HOMES.items()]
        with self.store.begin() as conn:
            measured = pooled(read_rollups(conn, since=start, until=self.clock.now()).values())
        assert measured is not None
        minutes = int(span / timedelta(minutes=1))
        history = synthetic_rollups(
            loads,
            start - span,
            minutes,
            confidences=outputs.confidences,
            latencies=sketch_latencies(measured.latency),
        )
        with self.store.begin() as conn:
            write_rollups(conn, history, now=self.clock.now())

    # -- running ----------------------------------------------------------------------------

    def region_of(self, tenant: str) -> str | None:
        """Where the global load balancer sends a tenant: its home, or its home's failover."""
        home = HOMES[tenant]
        with self.store.begin() as conn:
            row = conn.execute(
                region_status.select().where(region_status.c.region == home)
            ).one_or_none()
        region = row.failover_to if row is not None and row.status == "down" else home
        return None if region in self.traffic.unreachable else region

    def round(self) -> None:
        """Ten seconds of traffic, then flush, move the clock, tick, publish."""
        asyncio.run(self._send())
        for serving in self.gateways.values():
            serving.flush()
        self.clock.advance(TICK)
        self.loop.tick()
        self._respond()
        for serving in self.gateways.values():
            serving.refresh()

    def _respond(self) -> None:
        """The person paged acknowledges `ACK_AFTER` later (nobody in a drill fixes anything)."""
        now = self.clock.now()
        with self.store.begin() as conn:
            for group in open_groups(conn):
                paged = group.paged_at
                if paged is not None and not group.acknowledged and now - paged >= ACK_AFTER:
                    acknowledge(conn, str(group.id), actor="on-call", now=now)

    def rounds(self, duration: timedelta) -> None:
        for _ in range(int(duration / TICK)):
            self.round()

    async def _send(self) -> None:
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            jobs = []
            for tenant, factor in self.traffic.load.items():
                n = _poisson(self._rng, PER_MINUTE * factor * TICK.total_seconds() / 60)
                region = self.region_of(tenant)
                if region is None:
                    self.traffic.failed += n
                    continue
                url = self.gateways[region].url
                jobs += [self._one(client, url, tenant) for _ in range(n)]
            await asyncio.gather(*jobs)

    async def _one(self, client: httpx.AsyncClient, url: str, tenant: str) -> None:
        rows = self.traffic.rows[tenant]
        row = rows[self._sent % len(rows)]
        self._sent += 1
        body = {
            "inputs": [
                {"name": "pixels", "shape": [1, row.size], "datatype": "FP32", "data": row.tolist()}
            ]
        }
        headers = {"Authorization": f"Bearer {self.keys[tenant]}"}
        try:
            await client.post(f"{url}/v2/models/{MODEL}/infer", json=body, headers=headers)
        except httpx.TransportError:
            self.traffic.failed += 1

    def outcome(self, scenario: str, fault_at: datetime) -> Outcome:
        with self.store.begin() as conn:
            found = [i for i in list_incidents(conn, limit=1000) if i.detected_at >= fault_at]
            timelines = {i.id: timeline(conn, i.id) for i in found}
        found.sort(key=lambda i: i.id)
        return Outcome(scenario, fault_at, found, sum(i.pages for i in found), timelines)

    def close(self) -> None:
        for serving in self.gateways.values():
            serving.stop()
        for backend in self.backends.values():
            backend.close()
        self.receiver.stop()
        self.store.close()


# -- the scenarios ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    inject: Callable[[ResponseDrill], None]
    lasts: timedelta | None = None  # the fault ends by itself after this long
    heal: Callable[[ResponseDrill], None] | None = None


def _crash(d: ResponseDrill) -> None:
    d.backends["eu-west"].crash(VersionRef(MODEL, STABLE))


def _slow(d: ResponseDrill) -> None:
    d.backends["eu-west"].slow(VersionRef(MODEL, STABLE), 0.4)


def _bad_version(d: ResponseDrill) -> None:
    with d.store.begin() as conn:  # v4 to everyone at once, by hand, without a canary
        set_serving_version(conn, DEPLOYMENT, "v4", actor="operator", now=d.clock.now())
    for serving in d.gateways.values():
        serving.refresh()


def _load(d: ResponseDrill) -> None:
    d.traffic.load["bayside-market"] = 5.0


def _unload(d: ResponseDrill) -> None:
    d.traffic.load["bayside-market"] = 1.0


def _drift(d: ResponseDrill) -> None:
    d.traffic.rows["bayside-market"] = overexposed(d.traffic.rows["bayside-market"])


def _outage(d: ResponseDrill) -> None:
    d.traffic.unreachable.add("eu-west")


SCENARIOS = [
    Scenario("replica crash", "eu-west's replicas of v1 crash: every request fails", _crash),
    Scenario("latency spike", "eu-west's replicas degrade: +400 ms on every request", _slow),
    Scenario("bad version", "v4 goes to everyone by hand; it fails on blank frames", _bad_version),
    Scenario(
        "5x load",
        "bayside-market sends 5x its requests for 6 minutes",
        _load,
        lasts=timedelta(minutes=6),
        heal=_unload,
    ),
    Scenario("input drift", "bayside-market's cameras overexpose every image", _drift),
    Scenario("region outage", "the network loses eu-west: its gateway gets nothing", _outage),
]


def run_scenario(
    example: Path,
    scenario: Scenario,
    *,
    workdir: Path | None = None,
    warm: timedelta = timedelta(minutes=3),
    limit: timedelta = timedelta(minutes=12),
) -> Outcome:
    """Warm up, inject the fault, and run until its incidents are resolved (or `limit`)."""
    with _directory(workdir) as directory, _drill(example, directory) as drill:
        drill.rounds(warm)
        fault_at = drill.clock.now()
        scenario.inject(drill)
        healed = False
        while drill.clock.now() - fault_at < limit:
            drill.round()
            elapsed = drill.clock.now() - fault_at
            if scenario.lasts is not None and not healed and elapsed >= scenario.lasts:
                assert scenario.heal is not None
                scenario.heal(drill)
                healed = True
            outcome = drill.outcome(scenario.name, fault_at)
            settled = outcome.incidents and all(i.resolved_at for i in outcome.incidents)
            if settled and (scenario.lasts is None or healed) and elapsed >= timedelta(minutes=3):
                break
        return drill.outcome(scenario.name, fault_at)


@contextmanager
def _drill(example: Path, directory: Path) -> Iterator[ResponseDrill]:
    drill = ResponseDrill(example, directory)
    try:
        yield drill
    finally:
        drill.close()


@contextmanager
def _directory(given: Path | None) -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="modelfleet-drill-") as made:
        yield Path(made)


def _reference_rows(example: Path) -> np.ndarray:
    with np.load(example / "artifacts" / "reference.npz") as data:
        return np.asarray(data["pixels"], dtype=np.float32)


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: fine for the small means of one tick's requests."""
    limit, k, p = np.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
