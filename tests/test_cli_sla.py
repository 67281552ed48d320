"""The `sla` commands: status, reports (table, CSV, HTML), the ledger, OpenSLO export/import."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelfleet.settings import Settings
from modelfleet.sla.periods import period_of
from modelfleet.store import open_store
from modelfleet.telemetry.rollup import Rollup, RollupKey
from modelfleet.telemetry.writer import write_rollups
from tests.test_cli import cli  # noqa: F401  (the fixture)

NEW_COMMANDS = [
    ["sla"],
    ["sla", "status"],
    ["sla", "report"],
    ["sla", "ledger"],
    ["sla", "export"],
    ["sla", "import"],
]

FLEET = """\
kind: Tenant
metadata: {name: acme}
spec: {display_name: Acme, tier: premium, home_region: eu-west, contact_email: ops@acme.example}
---
kind: Tenant
metadata: {name: bolt}
spec: {display_name: Bolt, tier: free, home_region: us-east, contact_email: dev@bolt.example}
---
kind: SLA
metadata: {name: gold}
spec:
  tenants: [acme]
  monthly_fee: 1000
  currency: EUR
  slos:
    - {name: availability, type: availability, objective: 0.99}
    - {name: fast, type: latency, objective: 0.9, threshold: 500ms}
  credits:
    - {slo: availability, below: 0.99, credit: 0.10}
"""


@pytest.mark.parametrize("command", NEW_COMMANDS, ids=" ".join)
def test_every_new_command_has_help(cli, command: list[str]) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    code, out, _ = cli(*command, "--help")
    assert code == 0
    assert "Usage: modelfleet" in out


@pytest.fixture
def fleet(cli, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]  # noqa: F811
    """A tenant under an SLA, with a few minutes of traffic (one 5xx in ten) this period."""
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET)
    code, _, err = cli("apply", "-f", str(path))
    assert code == 0, err
    now = datetime.now(UTC)
    start = period_of(now, "UTC").start
    rollups = []
    for back in (3, 2):
        at = max(start, now - timedelta(minutes=back))
        rollup = Rollup(RollupKey.at("acme", "digits", "v1", "eu-west", at))
        for i in range(10):
            rollup.record(500 if i == 0 else 200, 0.05)
        rollups.append(rollup)
    rollups = list({r.key: r for r in rollups}.values())  # the same minute at a period's start
    with open_store(Settings.from_env().database_url).begin() as conn:
        write_rollups(conn, rollups, now=now)
    return path


def test_status_shows_each_covered_tenant(cli, fleet: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    code, out, err = cli("sla", "status")
    assert code == 0, err
    assert "acme" in out and "gold" in out
    assert "availability 90.000%/99.000%" in out
    assert "EUR" in out
    code, out, _ = cli("sla", "status", "-o", "json")
    assert code == 0
    [row] = json.loads(out)
    assert row["tenant"] == "acme"
    assert row["slos"][0]["value"] == pytest.approx(0.9)


def test_report_table_and_csv(cli, fleet: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    code, out, err = cli("sla", "report", "--tenant", "acme")
    assert code == 0, err
    assert "availability" in out and "fast" in out and "credit so far" in out
    code, out, err = cli("sla", "report", "--tenant", "acme", "--format", "csv")
    assert code == 0, err
    rows = list(csv.reader(out.splitlines()))
    assert rows[0] == ["date", "slo", "value"]
    daily = [r for r in rows[1:] if r[0] != "total"]
    assert daily and {r[1] for r in daily} == {"availability", "fast"}
    assert float(next(r for r in daily if r[1] == "availability")[2]) == pytest.approx(0.9)
    totals = {r[1]: float(r[2]) for r in rows if r[0] == "total"}
    assert totals == {"availability": pytest.approx(0.9), "fast": pytest.approx(1.0)}


def test_report_html_is_self_contained(cli, fleet: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    page = tmp_path / "f.html"
    code, _, err = cli("sla", "report", "-t", "acme", "--format", "html", "--out", str(page))
    assert code == 0, err
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert "<svg" in text and "<table>" in text
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text


def test_report_refuses_an_uncovered_tenant_and_a_bad_period(cli, fleet: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    code, _, err = cli("sla", "report", "--tenant", "bolt")
    assert code == 2
    assert "no SLA covers tenant 'bolt'" in err
    code, _, err = cli("sla", "report", "--tenant", "nobody")
    assert code == 2
    code, _, err = cli("sla", "report", "--tenant", "acme", "--period", "November")
    assert code == 2
    assert "YYYY-MM" in err


def test_ledger_lists_nothing_yet(cli, fleet: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    code, out, err = cli("sla", "ledger", "-o", "json")
    assert code == 0, err
    assert json.loads(out) == []
    code, out, _ = cli("sla", "ledger", "--tenant", "acme")
    assert code == 0 and "PERIOD" in out


def test_export_then_import_round_trips_to_an_applicable_fleet(  # type: ignore[no-untyped-def]
    cli,  # noqa: F811
    fleet: Path,
    tmp_path: Path,
) -> None:
    exported = tmp_path / "openslo.yaml"
    code, _, err = cli("sla", "export", "--out", str(exported))
    assert code == 0, err
    assert "openslo/v1" in exported.read_text()
    code, out, _ = cli("sla", "export")
    assert code == 0 and out == exported.read_text()
    back = tmp_path / "fleet-sla.yaml"
    code, _, err = cli("sla", "import", str(exported), "--out", str(back))
    assert code == 0, err
    text = back.read_text()
    assert "apiVersion: modelfleet/v1" in text and "kind: SLA" in text
    code, out, err = cli("apply", "--dry-run", "-f", str(back), "-o", "json")
    assert code == 0, err
    assert [(c["kind"], c["name"], c["action"]) for c in json.loads(out)] == [
        ("SLA", "gold", "unchanged")
    ]


def test_import_refuses_what_is_not_openslo(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: SLO\n: [\n")
    code, _, err = cli("sla", "import", str(bad))
    assert code == 2, err
    code, _, _ = cli("sla", "import", str(tmp_path / "missing.yaml"))
    assert code == 2
