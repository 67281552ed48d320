"""`modelfleet retention run` and `retention status` on a store of their own, in-process."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from modelfleet.sim.history import StreamLoad, synthetic_rollups
from modelfleet.store import open_store
from modelfleet.telemetry.writer import read_rollups, write_rollups
from tests.regions.runner import run_cli

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_retention_run_compacts_what_is_due_and_status_shows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MODELFLEET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MODELFLEET_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    store = open_store(f"sqlite:///{tmp_path / 'home' / 'fleet.db'}")
    old = (NOW - timedelta(days=40)).replace(minute=0)  # past the 35-day minute horizon
    recent = NOW - timedelta(hours=3)
    loads = [StreamLoad("acme", "churn", "v1", "eu-west", per_minute=5.0)]
    with store.begin() as conn:
        for start in (old, recent):
            minutes = synthetic_rollups(loads, start, 120, confidences=np.array([0.9]))
            write_rollups(conn, minutes, now=start)
        before = read_rollups(conn, since=old, until=NOW)
    store.close()

    said = run_cli(capsys, "retention", "run", "--now", NOW.isoformat())
    assert "2 hour(s) compacted" in said

    status = {
        t["table"]: t for t in json.loads(run_cli(capsys, "retention", "status", "-o", "json"))
    }
    assert status["rollups (hour)"]["rows"] == 2  # the two old hours, one row each
    assert status["rollups (minute)"]["rows"] == 120  # the recent ones, untouched
    store = open_store(f"sqlite:///{tmp_path / 'home' / 'fleet.db'}")
    with store.begin() as conn:
        after = read_rollups(conn, since=old, until=NOW)
    store.close()
    assert sum(r.requests for r in after.values()) == sum(r.requests for r in before.values())
    assert "ROWS" in run_cli(capsys, "retention", "status")  # the table, for people
