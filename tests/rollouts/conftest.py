"""The retail-vision fleet behind a real gateway on a virtual clock, with the rollout controller."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from modelfleet.clock import VirtualClock
from modelfleet.config import load_fleet
from modelfleet.control import ControlLoop
from modelfleet.gateway.app import Gateway, GatewaySettings
from modelfleet.gateway.quotas import LocalQuotas
from modelfleet.gateway.server import GatewayServer, ServingThread
from modelfleet.registry import apply_fleet, create_key
from modelfleet.rollouts import Rollout, RolloutController, RolloutEvent, events_of, latest_rollout
from modelfleet.runtime import LocalBackend
from modelfleet.sim.rollout import RolloutDrill, Round, rounds_until
from modelfleet.store import Store, open_store

MODEL = "product-recognizer"
DEPLOYMENT = "product-recognizer"


@dataclass
class Fleet:
    store: Store
    clock: VirtualClock
    serving: ServingThread
    drill: RolloutDrill
    loop: ControlLoop
    directory: Path

    def apply(self, edit: Callable[[str], str] = lambda text: text) -> None:
        path = self.directory / "fleet.yaml"
        path.write_text(edit(path.read_text()))
        apply_fleet(self.store, load_fleet([path]), actor="test", now=self.clock.now())
        self.serving.refresh()

    def rollout(self) -> Rollout:
        with self.store.begin() as conn:
            found = latest_rollout(conn, DEPLOYMENT)
        assert found is not None
        return found

    def timeline(self) -> list[RolloutEvent]:
        with self.store.begin() as conn:
            return events_of(conn, self.rollout().id)

    def until(
        self, *states: str, requests: int = 300, advance_s: float = 30, limit: int = 40
    ) -> list[Round]:
        return rounds_until(
            self.drill,
            lambda _: self.rollout().state in states,
            requests=requests,
            advance=timedelta(seconds=advance_s),
            limit=limit,
        )


def example_rows(directory: Path) -> np.ndarray:
    with np.load(directory / "artifacts" / "reference.npz") as data:
        return np.asarray(data["pixels"], dtype=np.float32)


@pytest.fixture
def fleet(trained_example: Path, tmp_path: Path, clock: VirtualClock) -> Iterator[Fleet]:
    """The example applied to a fresh SQLite store, served on `clock`; rollouts by its canary."""
    directory = tmp_path / "retail-vision"
    directory.mkdir()
    for name in ("fleet.yaml", "v4.py"):
        (directory / name).write_text((trained_example / name).read_text())
    (directory / "artifacts").symlink_to(trained_example / "artifacts")
    store = open_store(f"sqlite:///{tmp_path / 'fleet.db'}")
    apply_fleet(store, load_fleet([directory / "fleet.yaml"]), actor="test", now=clock.now())
    with store.begin() as conn:
        keys = [
            create_key(conn, tenant, actor="test", now=clock.now()).plaintext
            for tenant in ("acme-grocers", "bayside-market")  # enterprise and premium quotas
        ]
    gateway = Gateway(LocalBackend(), LocalQuotas(), clock, GatewaySettings(region="eu-west"))
    server = GatewayServer(
        gateway, open_store(f"sqlite:///{tmp_path / 'fleet.db'}"), clock, flush_s=3600
    )
    serving = ServingThread(server)
    serving.start()
    loop = ControlLoop([RolloutController(store)], clock)
    drill = RolloutDrill(serving, clock, loop, model=MODEL, keys=keys, rows=example_rows(directory))
    yield Fleet(store, clock, serving, drill, loop, directory)
    serving.stop()
    store.close()
