"""`modelfleet demo` on the real example: applies it, issues keys, serves traffic, exits 0."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from modelfleet.cli import DASHBOARD_PAGES, PORTAL_PAGES, main
from modelfleet.registry import Action
from modelfleet.sim.demo import prepare_demo

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "retail-vision"


def test_demo_applies_the_example_and_exits_0(
    trained_example: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MODELFLEET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as info:
        main(["demo", "--example", str(trained_example), "--seconds", "4"])
    assert info.value.code in (0, None)
    out = capsys.readouterr().out
    assert "10 created, 0 changed, 0 unchanged" in out
    assert "0 created, 0 changed, 10 unchanged" in out
    assert "10 resources registered, 4 API keys" in out
    # One version refused by the gate, one canary promoted, one rolled back in production.
    assert "Rollouts: v3 refused, v2 promoted, v4 rolled back." in out
    # bayside-market's new cameras overexpose: its inputs drift, and only its.
    assert "Drift: bayside-market." in out
    assert "refused over quota, 0 failed." in out  # the free tenant asks for twice its quota
    # A 3x load spike: the capacity controller scales out, and back in after it.
    assert "7. capacity: replicas follow the load" in out
    assert "Capacity: replicas followed the spike from 2 to " in out
    # The dashboard and the portal open, signed in, on the demo's store.
    assert "8. the dashboard and the customer portal" in out
    for page in DASHBOARD_PAGES + PORTAL_PAGES:
        assert re.search(rf"^ {re.escape(page)} +200 ", out, re.M), page
    served = int(out.split("audit entries; ")[1].split(" requests served")[0])
    assert served > 100
    for tenant in ("acme-grocers", "bayside-market", "corner-deli", "dune-foods"):
        assert tenant in out
    assert (tmp_path / "home" / "demo" / "fleet.db").exists()


def test_a_second_demo_starts_again_from_a_fresh_store(
    trained_example: Path, tmp_path: Path
) -> None:
    database = tmp_path / "demo" / "fleet.db"
    now = datetime.now(UTC)
    for _ in range(2):
        report = prepare_demo(trained_example, database, actor="test", now=now)
        assert [c.action for c in report.first_apply] == [Action.CREATED] * 10
        report.store.close()


def test_demo_without_trained_models_says_how_to_train_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MODELFLEET_HOME", str(tmp_path / "home"))
    shutil.copy(EXAMPLE / "fleet.yaml", tmp_path / "fleet.yaml")
    with pytest.raises(SystemExit) as info:
        main(["demo", "--example", str(tmp_path)])
    assert info.value.code == 2
    assert "train.py" in capsys.readouterr().err
