"""The capacity drill: the real capacity controller's replicas follow a load spike and return."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from modelfleet.sim.capacity import run_capacity_drill
from modelfleet.store import open_store
from modelfleet.store.tables import capacity_decisions

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "retail-vision"


def test_replicas_rise_with_the_spike_and_come_back_after_it(
    trained_example: Path, tmp_path: Path
) -> None:
    example = tmp_path / "example"
    shutil.copytree(trained_example, example)
    shutil.copy(EXAMPLE / "capacity.yaml", example / "capacity.yaml")

    drill = run_capacity_drill(example, tmp_path / "work")

    timeline = drill.timeline
    replicas = [m.replicas for m in timeline]
    assert all(drill.min_replicas <= r <= drill.max_replicas for r in replicas)
    during = replicas[drill.spike_from : drill.spike_until]
    assert drill.peak == max(during) > drill.before
    # Up within two minutes of the spike: the reactive correction, not the hourly forecast.
    assert max(during[:2]) > drill.before
    # Down once the spike is over and the scale-down stabilization (5 minutes) has passed.
    assert drill.after < drill.peak
    assert drill.after <= drill.before + 1
    assert max(replicas[drill.spike_until : drill.spike_until + 5]) == drill.peak  # held

    store = open_store(f"sqlite:///{drill.database}")
    try:
        with store.begin() as conn:
            decided = conn.execute(
                select(capacity_decisions).order_by(capacity_decisions.c.id)
            ).all()
    finally:
        store.close()
    changes = {d.at: d for d in decided if d.replicas != d.previous}
    asked_before = [drill.min_replicas, *replicas[:-1]]  # no target yet: the policy's minimum
    changed = [(m, b) for m, b in zip(timeline, asked_before, strict=True) if m.replicas != b]
    assert len(changed) == len(changes) >= 2
    for m, before in changed:
        decision = changes[m.at + timedelta(minutes=1)]  # decided once the minute was seen
        assert (decision.previous, decision.replicas) == (before, m.replicas)
        assert m.reason == decision.reason
    assert sum(m.reason is not None for m in timeline) == len(changed)
