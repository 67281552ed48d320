"""The demo scenario: the example fleet applied to a fresh store, with a key per tenant.

Later issues extend it until it shows the whole system at work. It returns what happened;
the CLI decides how to show it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from modelfleet.config import load_fleet
from modelfleet.errors import InvalidInput
from modelfleet.registry import Change, IssuedKey, apply_fleet, create_key, load_state
from modelfleet.registry.resources import FleetState
from modelfleet.store import Store, open_store

EXAMPLE = Path("examples/retail-vision")


@dataclass(frozen=True)
class DemoReport:
    store: Store
    fleet_file: Path
    first_apply: list[Change]
    second_apply: list[Change]
    keys: list[IssuedKey]
    state: FleetState


def run_demo(example: Path, database: Path, *, actor: str, now: datetime) -> DemoReport:
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
