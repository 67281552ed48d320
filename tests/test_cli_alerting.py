"""The alerting commands: anomaly detect, alerts, silences, on-call, incidents, runbooks."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from tests.test_cli import cli  # noqa: F401  (the fixture)

NEW_COMMANDS = [
    ["anomaly"],
    ["anomaly", "detect"],
    ["alerts"],
    ["alerts", "list"],
    ["alerts", "groups"],
    ["alerts", "ack"],
    ["alerts", "resolve"],
    ["alerts", "silence"],
    ["alerts", "silences"],
    ["alerts", "unsilence"],
    ["oncall"],
    ["oncall", "who"],
    ["incidents"],
    ["incidents", "list"],
    ["incidents", "show"],
    ["incidents", "postmortem"],
    ["runbooks"],
    ["runbooks", "list"],
    ["runbooks", "runs"],
    ["runbooks", "approve"],
]

ONCALL = """\
kind: OnCallSchedule
metadata: {name: primary}
spec:
  time_zone: Europe/Berlin
  participants:
    - {name: Alice Example, email: alice@example.com}
    - {name: Bob Example, email: bob@example.com}
  rotation: {length: 7d, start: 2026-11-02, handoff: "09:00"}
---
kind: EscalationPolicy
metadata: {name: ops}
spec:
  levels:
    - {schedule: primary, escalate_after: 10m}
    - people: [{name: Carol Boss, email: carol@example.com}]
"""


@pytest.mark.parametrize("command", NEW_COMMANDS, ids=" ".join)
def test_every_new_command_has_help(cli, command: list[str]) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    code, out, _ = cli(*command, "--help")
    assert code == 0
    assert "Usage: modelfleet" in out


def _series(path: Path, n: int = 300, spike_at: int = 250) -> None:
    lines = ["timestamp,value"]
    for i in range(n):
        value = 10 + math.sin(i / 5) + (50 if i == spike_at else 0)
        lines.append(f"{1_700_000_000 + 60 * i},{value:.4f}")
    path.write_text("\n".join(lines) + "\n")


def test_anomaly_detect_writes_score_and_alarm_columns(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    source, scored = tmp_path / "metric.csv", tmp_path / "scored.csv"
    _series(source)
    code, _, err = cli("anomaly", "detect", str(source), "--out", str(scored), "--direction", "up")
    assert code == 0, err
    rows = list(csv.DictReader(scored.read_text().splitlines()))
    assert len(rows) == 300
    assert set(rows[0]) == {"timestamp", "value", "score", "alarm"}
    assert rows[250]["alarm"] == "1"
    assert "300 rows" in err and "alarms" in err

    code, out, _ = cli("anomaly", "detect", str(source))
    assert code == 0
    assert out.splitlines()[0] == "timestamp,value,score,alarm"
    assert len(out.splitlines()) == 301


def test_anomaly_detect_bad_row_exits_2_naming_the_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    source = tmp_path / "bad.csv"
    source.write_text("timestamp,value\n1700000000,1.0\n1700000060,oops\n")
    code, _, err = cli("anomaly", "detect", str(source))
    assert code == 2
    assert "line 3" in err and "oops" in err

    code, _, err = cli("anomaly", "detect", str(tmp_path / "missing.csv"))
    assert code == 2
    assert "missing.csv" in err


def test_alerts_list_on_an_empty_store(cli) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    code, out, _ = cli("alerts", "list")
    assert code == 0
    assert "FINGERPRINT" in out and "ALERTNAME" in out
    code, out, _ = cli("alerts", "list", "--state", "firing", "-o", "json")
    assert code == 0
    assert json.loads(out) == []
    code, out, _ = cli("alerts", "groups")
    assert code == 0
    code, out, _ = cli("incidents", "list", "-o", "json")
    assert code == 0 and json.loads(out) == []
    code, out, _ = cli("runbooks", "runs")
    assert code == 0


def test_silence_list_and_unsilence(cli) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    code, out, err = cli(
        "alerts", "silence", 'alertname="RegionDown"', 'region="eu-west"',
        "--duration", "2h", "--comment", "planned maintenance",
    )  # fmt: skip
    assert code == 0, err
    assert "silence 1" in out

    code, out, _ = cli("alerts", "silences", "-o", "json")
    assert code == 0
    (silence,) = json.loads(out)
    assert silence["id"] == 1
    assert silence["created_by"] == "carol"
    assert silence["comment"] == "planned maintenance"
    assert silence["active"] is True
    code, out, _ = cli("alerts", "silences")
    assert "planned maintenance" in out and "active" in out

    code, out, _ = cli("alerts", "unsilence", "1")
    assert code == 0
    assert "expired" in out
    code, out, _ = cli("alerts", "silences", "-o", "json")
    assert json.loads(out) == []
    code, out, _ = cli("alerts", "silences", "--expired", "-o", "json")
    assert [s["active"] for s in json.loads(out)] == [False]


def test_silence_and_alert_errors_exit_2(cli) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    code, _, err = cli("alerts", "silence", 'region=~".*"', "--comment", "everything")
    assert code == 2 and "every alert" in err
    code, _, err = cli("alerts", "unsilence", "42")
    assert code == 2 and "42" in err
    code, _, err = cli("alerts", "ack", "7")
    assert code == 2 and "not found" in err
    code, _, err = cli("runbooks", "approve", "3")
    assert code == 2 and "not found" in err


def test_incidents_show_unknown_exits_2(cli) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    code, _, err = cli("incidents", "show", "999")
    assert code == 2
    assert "incident '999' not found" in err
    code, _, _ = cli("incidents", "postmortem", "999")
    assert code == 2


def test_oncall_who_shows_the_participant(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    fleet = tmp_path / "oncall.yaml"
    fleet.write_text(ONCALL)
    code, _, err = cli("apply", "-f", str(fleet))
    assert code == 0, err

    # The first turn (Alice's) starts 2026-11-02 09:00 Berlin (08:00 UTC); Bob's a week later.
    code, out, err = cli("oncall", "who", "--at", "2026-11-03T12:00:00")
    assert code == 0, err
    assert "Alice Example" in out and "2026-11-09 08:00:00" in out
    assert "Carol Boss" in out

    code, out, _ = cli("oncall", "who", "--schedule", "primary", "--at", "2026-11-10T12:00+00:00", "-o", "json")  # fmt: skip
    assert code == 0
    (row,) = json.loads(out)["schedules"]
    assert row["name"] == "Bob Example" and row["email"] == "bob@example.com"

    code, _, err = cli("oncall", "who", "--schedule", "nobody")
    assert code == 2 and "nobody" in err

    code, out, _ = cli("runbooks", "list")
    assert code == 0
