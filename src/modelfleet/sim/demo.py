"""The demo scenario: the example fleet applied to a fresh store, a key per tenant, and the
gateway serving each tenant's traffic over real HTTP.

Later issues extend it until it shows the whole system at work. It returns what happened;
the CLI decides how to show it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from modelfleet.clock import Clock, VirtualClock
from modelfleet.config import Tenant, load_fleet
from modelfleet.control import ControlLoop
from modelfleet.errors import InvalidInput
from modelfleet.gateway.server import ServingThread, build_server
from modelfleet.monitors import MonitorController, MonitorStatus, latest_results
from modelfleet.registry import Change, IssuedKey, apply_fleet, create_key, load_state
from modelfleet.registry.events import Event
from modelfleet.registry.resources import FleetState
from modelfleet.rollouts import Rollout, RolloutController, RolloutEvent, events_of, start_rollout
from modelfleet.rollouts.records import get_rollout
from modelfleet.settings import Settings
from modelfleet.sim.rollout import RolloutDrill, Round, with_blank_frames
from modelfleet.sim.traffic import Tally, TenantLoad, send_traffic
from modelfleet.store import Store, open_store
from modelfleet.telemetry.summary import Summary, summarize
from modelfleet.telemetry.writer import read_rollups

EXAMPLE = Path("examples/retail-vision")


@dataclass(frozen=True)
class DemoReport:
    store: Store
    fleet_file: Path
    first_apply: list[Change]
    second_apply: list[Change]
    keys: list[IssuedKey]
    state: FleetState


# Requests per second each tier sends; the free tenant asks for twice its quota of 5/s, so the
# demo shows 429s with Retry-After while the others are served.
DEMO_RATES = {"enterprise": 120.0, "premium": 60.0, "standard": 30.0, "free": 10.0}


def demo_loads(report: DemoReport, example: Path) -> list[TenantLoad]:
    """Each tenant's traffic in the demo, by its tier."""
    tiers = {
        r.resource.name: r.resource.spec.tier
        for r in report.state.of_kind(Tenant)
        if isinstance(r.resource, Tenant)
    }
    return [
        TenantLoad(
            k.tenant,
            k.plaintext,
            DEMO_RATES[tiers[k.tenant]],
            clients=4,
            rows=overexposed(reference_rows(example)) if k.tenant == DRIFTING_TENANT else None,
        )
        for k in report.keys
    ]


# The tenant whose traffic drifts in the demo: its new shelf cameras overexpose every image.
DRIFTING_TENANT = "bayside-market"


def overexposed(rows: np.ndarray) -> np.ndarray:
    """Images from a camera that overexposes: every pixel brighter, clipped at the sensor's 16."""
    return np.clip(rows * 1.6 + 2.0, 0, 16).astype(np.float32)


def watch(store: Store, now: datetime) -> tuple[list[Event], list[MonitorStatus]]:
    """One tick of the monitors on what the gateway recorded, as the control loop does."""
    events = MonitorController(store).tick(now)
    with store.begin() as conn:
        return events, latest_results(conn)


def reference_rows(example: Path) -> np.ndarray:
    """The example's reference images: production-like input for the demo's traffic."""
    with np.load(example / "artifacts" / "reference.npz") as data:
        return np.asarray(data["pixels"], dtype=np.float32)


def prepare_demo(example: Path, database: Path, *, actor: str, now: datetime) -> DemoReport:
    """Apply `example/fleet.yaml` to a new SQLite store at `database`, twice, and issue keys."""
    fleet_file = example / "fleet.yaml"
    if not fleet_file.is_file():
        raise InvalidInput(
            f"no example fleet at {fleet_file}: run the demo from the repository root"
        )
    if not (example / "artifacts").is_dir():
        raise InvalidInput(
            f"the example's models are not trained yet: run `python {example / 'train.py'}` "
            "(make demo does this for you)"
        )
    for stale in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        stale.unlink(missing_ok=True)
    store = open_store(f"sqlite:///{database}")
    fleet = load_fleet([fleet_file])
    first = apply_fleet(store, fleet, actor=actor, now=now)
    second = apply_fleet(store, fleet, actor=actor, now=now)
    with store.begin() as conn:
        state = load_state(conn)
        keys = [
            create_key(conn, t.name, actor=actor, now=now)
            for t in sorted(fleet.tenants, key=lambda t: t.name)
        ]
    return DemoReport(store, fleet_file, first, second, keys, state)


def start_demo_gateway(settings: Settings, database: Path, clock: Clock) -> ServingThread:
    """The gateway on the demo's store, on a free loopback port, flushing every second."""
    demo_settings = replace(settings, database_url=f"sqlite:///{database}")
    serving = ServingThread(build_server(demo_settings, clock, flush_s=1.0))
    serving.start()
    return serving


def drive_traffic(
    url: str,
    report: DemoReport,
    example: Path,
    *,
    seconds: float,
    on_progress: Callable[[Mapping[str, Tally], float], None] | None = None,
) -> dict[str, Tally]:
    """Every tenant's traffic for `seconds`, through the gateway at `url`."""
    return asyncio.run(
        send_traffic(
            url,
            "product-recognizer",
            demo_loads(report, example),
            reference_rows(example),
            seconds=seconds,
            on_progress=on_progress,
        )
    )


# The demo's rollouts: one the gate refuses, one promoted, one rolled back in production.
DEMO_ROLLOUTS = (
    ("v3", "the gate should refuse it: it confuses donuts and ice cream"),
    ("v2", "more accurate everywhere: the canary should promote it"),
    ("v4", "passes the gate, but crashes on blank frames: the canary should roll it back"),
)
BLANK_FRAMES = 0.05  # share of demo requests from cameras that are switched off


@dataclass(frozen=True)
class RolloutResult:
    rollout: Rollout
    timeline: list[RolloutEvent]
    rounds: list[Round]


def run_rollouts(
    settings: Settings,
    database: Path,
    report: DemoReport,
    example: Path,
    *,
    start: datetime,
    on_round: Callable[[Rollout, Round, datetime], None] | None = None,
) -> list[RolloutResult]:
    """Each of DEMO_ROLLOUTS through a gateway on a virtual clock, with the rollout controller;
    rounds of real HTTP traffic from two tenants' cameras between control ticks."""
    clock = VirtualClock(start)
    demo_settings = replace(settings, database_url=f"sqlite:///{database}")
    serving = ServingThread(build_server(demo_settings, clock, flush_s=3600))
    serving.start()
    loop = ControlLoop([RolloutController(report.store)], clock)
    tiers = {k.tenant: k for k in report.keys}
    drill = RolloutDrill(
        serving,
        clock,
        loop,
        model="product-recognizer",
        keys=[tiers["acme-grocers"].plaintext, tiers["bayside-market"].plaintext],
        rows=with_blank_frames(reference_rows(example), BLANK_FRAMES),
    )
    results = []
    try:
        for version, _ in DEMO_ROLLOUTS:
            with report.store.begin() as conn:
                started = start_rollout(
                    conn, "product-recognizer", version, actor=settings.actor, now=clock.now()
                )
            rounds: list[Round] = []
            rollout = started
            for _ in range(40):
                rounds.append(drill.round(300, timedelta(seconds=30)))
                with report.store.begin() as conn:
                    rollout = get_rollout(conn, started.id) or rollout
                if on_round is not None:
                    on_round(rollout, rounds[-1], clock.now())
                if not rollout.active:
                    break
            with report.store.begin() as conn:
                results.append(RolloutResult(rollout, events_of(conn, rollout.id), rounds))
    finally:
        serving.stop()
    return results


def recorded_stats(store: Store, *, since: datetime, until: datetime) -> list[Summary]:
    """What the gateway's telemetry recorded in the store, per tenant and model."""
    with store.begin() as conn:
        rollups = read_rollups(conn, since=since, until=until)
    return summarize(rollups.values())
