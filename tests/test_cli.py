"""The command line: help everywhere, tables and JSON, and exit codes scripts can trust."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelfleet.cli import main
from tests.registry.conftest import FLEET

Run = tuple[int, str, str]


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run `modelfleet ARGS` in-process against a store of its own; returns (code, out, err)."""
    monkeypatch.setenv("MODELFLEET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MODELFLEET_DATABASE_URL", raising=False)
    monkeypatch.setenv("MODELFLEET_ACTOR", "carol")
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> Run:
        capsys.readouterr()
        with pytest.raises(SystemExit) as info:
            main(list(args))
        captured = capsys.readouterr()
        code = info.value.code
        return (code if isinstance(code, int) else 1 if code else 0), captured.out, captured.err

    return run


@pytest.fixture
def fleet_file(tmp_path: Path) -> Path:
    (tmp_path / "v1.bin").write_bytes(b"model one")
    (tmp_path / "ref.npz").write_bytes(b"reference")
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET)
    return path


COMMANDS = [
    [],
    ["apply"],
    ["get"],
    ["keys"],
    ["keys", "create"],
    ["keys", "list"],
    ["keys", "revoke"],
    ["audit"],
    ["db"],
    ["db", "upgrade"],
    ["version"],
    ["demo"],
    ["rollout"],
    ["rollout", "start"],
    ["rollout", "status"],
    ["rollout", "pause"],
    ["rollout", "resume"],
    ["rollout", "abort"],
    ["rollout", "promote"],
    ["rollback"],
    ["events"],
    ["monitor"],
    ["monitor", "status"],
    ["monitor", "report"],
    ["up"],
    ["leader"],
    ["region"],
    ["region", "list"],
    ["region", "down"],
    ["region", "up"],
    ["tenant"],
    ["tenant", "export"],
    ["tenant", "erase"],
    ["retention"],
    ["retention", "run"],
    ["retention", "status"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "modelfleet")
def test_every_command_has_help(cli, command: list[str]) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli(*command, "--help")
    assert code == 0
    assert "Usage: modelfleet" in out


def test_apply_prints_a_table_and_a_second_apply_changes_nothing(cli, fleet_file: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("apply", "-f", str(fleet_file))
    assert code == 0
    assert "digits/v1" in out and "5 created, 0 changed, 0 unchanged" in out
    code, out, _ = cli("apply", "-f", str(fleet_file), "-o", "json")
    assert code == 0
    assert {c["action"] for c in json.loads(out)} == {"unchanged"}


def test_dry_run_shows_the_plan_and_writes_nothing(cli, fleet_file: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("apply", "-f", str(fleet_file), "--dry-run")
    assert code == 0 and "dry run: nothing written" in out
    assert json.loads(cli("get", "tenants", "-o", "json")[1]) == []


def test_an_invalid_file_exits_2_with_located_errors_and_applies_nothing(
    cli, fleet_file: Path
) -> None:  # type: ignore[no-untyped-def]
    fleet_file.write_text(
        FLEET.replace("tier: free", "tier: gold").replace("format: sklearn", "format: pmml")
    )
    code, out, err = cli("apply", "-f", str(fleet_file))
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert lines[0].startswith(f"{fleet_file}:7:34: spec.tier: Input should be")
    assert lines[1].startswith(f"{fleet_file}:18:49: spec.format: Input should be")
    assert "refused: 2 error(s); nothing was applied" in err
    assert json.loads(cli("get", "tenants", "-o", "json")[1]) == []


def test_get_lists_each_kind_as_table_and_json(cli, fleet_file: Path) -> None:  # type: ignore[no-untyped-def]
    cli("apply", "-f", str(fleet_file))
    code, out, _ = cli("get", "tenants")
    assert code == 0 and "acme" in out and "premium" in out and "TIER" in out
    tenants = json.loads(cli("get", "tenants", "-o", "json")[1])
    assert [t["metadata"]["name"] for t in tenants] == ["acme", "bolt"]
    assert tenants[0]["spec"]["contact_email"] == "ops@acme.example"
    [model] = json.loads(cli("get", "models", "-o", "json")[1])
    assert model["spec"]["input"]["features"][0]["shape"] == [64]
    [version] = json.loads(cli("get", "versions", "digits", "-o", "json")[1])
    assert len(version["status"]["artifact_sha256"]) == 64
    [deployment] = json.loads(cli("get", "deployments", "-o", "json")[1])
    assert deployment["spec"]["tenants"] == ["acme", "bolt"]
    assert "v1" in cli("get", "deployments")[1]


def test_get_of_an_unknown_name_or_kind_exits_2(cli, fleet_file: Path) -> None:  # type: ignore[no-untyped-def]
    cli("apply", "-f", str(fleet_file))
    assert cli("get", "tenants", "zeta")[0] == 2
    assert cli("get", "gadgets")[0] == 2


def test_keys_are_printed_once_listed_by_prefix_and_revoked(cli, fleet_file: Path) -> None:  # type: ignore[no-untyped-def]
    cli("apply", "-f", str(fleet_file))
    code, out, err = cli("keys", "create", "acme")
    key = out.strip()
    assert code == 0 and key.startswith("mf_") and "shown only once" in err
    prefix = key.split("_")[1]
    code, out, _ = cli("keys", "list")
    assert code == 0 and prefix in out and key not in out and "never" in out
    [listed] = json.loads(cli("keys", "list", "--tenant", "acme", "-o", "json")[1])
    assert listed["prefix"] == prefix and listed["revoked_at"] is None
    assert listed["created_by"] == "carol"
    assert cli("keys", "revoke", prefix)[0] == 0
    [listed] = json.loads(cli("keys", "list", "-o", "json")[1])
    assert listed["revoked_at"] is not None
    assert key not in cli("audit", "-o", "json")[1]


def test_keys_for_an_unknown_tenant_exit_2(cli, fleet_file: Path) -> None:  # type: ignore[no-untyped-def]
    cli("apply", "-f", str(fleet_file))
    code, _, err = cli("keys", "create", "zeta")
    assert code == 2 and "tenant 'zeta' not found" in err
    assert cli("keys", "revoke", "zzzz9999")[0] == 2


def test_audit_shows_who_changed_what(cli, fleet_file: Path) -> None:  # type: ignore[no-untyped-def]
    cli("apply", "-f", str(fleet_file))
    fleet_file.write_text(FLEET.replace("tier: free", "tier: standard"))
    cli("apply", "-f", str(fleet_file))
    code, out, _ = cli("audit", "-n", "1")
    assert code == 0 and "carol" in out and "spec.tier" in out
    entries = json.loads(cli("audit", "--kind", "Tenant", "-o", "json")[1])
    assert [(e["action"], e["name"]) for e in entries] == [
        ("update", "bolt"),
        ("create", "bolt"),
        ("create", "acme"),
    ]


def test_db_upgrade_migrates_once(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("db", "upgrade")
    assert code == 0 and "migrated from empty to 0008" in out
    code, out, _ = cli("db", "upgrade")
    assert code == 0 and "already at 0008" in out


def test_version_names_the_schema(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("version")
    assert code == 0 and "modelfleet 0.1.0" in out and "0008" in out


def test_an_unreachable_store_exits_1_with_a_message(cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MODELFLEET_DATABASE_URL", "postgresql+psycopg://postgres:pw@127.0.0.1:1/x")
    code, out, err = cli("get", "tenants")
    assert code == 1 and "cannot reach the store" in err and "pw@" not in err
    assert "Traceback" not in out + err


def test_usage_errors_exit_2(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("frobnicate")[0] == 2
    assert cli("apply")[0] == 2  # -f is required


def test_stats_summarises_rollups_per_tenant_and_model(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from modelfleet.store import open_store
    from modelfleet.telemetry.rollup import RollupBuffer
    from modelfleet.telemetry.writer import write_rollups

    now = datetime.now(UTC)
    buffer = RollupBuffer()
    for i in range(100):
        buffer.record("acme", "digits", "v1", "eu", now, 200 if i < 98 else 503, 0.001 * (i + 1))
    buffer.record("bolt", "digits", "v1", "eu", now, 404, 0.002)
    buffer.record_rejection("bolt", "digits", "v1", "eu", now)
    store = open_store(f"sqlite:///{tmp_path / 'home' / 'fleet.db'}")
    with store.begin() as conn:
        write_rollups(conn, buffer.drain(), now=now)
    store.close()
    code, out, _ = cli("stats", "-o", "json")
    assert code == 0
    acme, bolt = json.loads(out)
    assert (acme["tenant"], acme["requests"], acme["error_rate"]) == ("acme", 100, 0.02)
    assert abs(acme["p50_s"] - 0.050) <= 0.050 * 0.011  # the sketch's 1 % relative error
    assert abs(acme["p99_s"] - 0.099) <= 0.099 * 0.011
    assert (bolt["client_errors"], bolt["rejected"]) == (1, 1)
    code, out, _ = cli("stats", "--tenant", "acme")
    assert code == 0 and "acme" in out and "bolt" not in out and "P99 ms" in out


def test_rollout_commands_from_start_to_abort(cli, trained_example: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("apply", "-f", str(trained_example / "fleet.yaml"))[0] == 0

    code, out, _ = cli("rollout", "start", "product-recognizer", "v2")
    assert code == 0 and "rollout 1 of product-recognizer: v1 -> v2 by canary" in out
    code, _, err = cli("rollout", "start", "product-recognizer", "v4")
    assert code == 2 and "still pending: abort it first" in err
    code, _, err = cli("rollout", "promote", "product-recognizer")
    assert code == 2 and "has not passed its quality gate yet" in err

    code, out, _ = cli("rollout", "status", "product-recognizer")
    assert code == 0 and "pending" in out and "started by carol" in out
    code, out, _ = cli("rollout", "status", "product-recognizer", "-o", "json")
    status = json.loads(out)
    assert status["state"] == "pending" and status["candidate_version"] == "v2"
    assert [e["kind"] for e in status["timeline"]] == ["started"]

    assert cli("rollout", "pause", "product-recognizer")[0] == 0
    code, out, _ = cli("rollout", "status")
    assert code == 0 and "pending (paused)" in out
    assert cli("rollout", "resume", "product-recognizer")[0] == 0
    code, out, _ = cli("rollout", "abort", "product-recognizer")
    assert code == 0 and "aborted by carol" in out
    code, out, _ = cli("events", "-o", "json")
    assert [e["kind"] for e in json.loads(out)] == ["rollout.aborted"]

    code, _, err = cli("rollback", "product-recognizer")
    assert code == 2 and "no earlier good version" in err
    code, _, err = cli("rollout", "status", "nowhere")
    assert code == 2 and "nowhere has had no rollout" in err
    code, out, _ = cli("get", "deployments")
    assert code == 0 and "canary" in out and "v1" in out


@pytest.mark.parametrize(
    "command",
    [
        ["review"],
        ["review", "list"],
        ["review", "next"],
        ["review", "label"],
        ["review", "export"],
        ["accuracy"],
    ],
    ids=" ".join,
)
def test_review_commands_have_help(cli, command: list[str]) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli(*command, "--help")
    assert code == 0 and "Usage: modelfleet" in out


def test_review_queue_and_accuracy_from_the_command_line(
    cli, fleet_file: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from modelfleet.review import ReviewController
    from modelfleet.store import open_store
    from tests.review.conftest import add_sample

    cli("apply", "-f", str(fleet_file))
    now = datetime.now(UTC)
    store = open_store(f"sqlite:///{tmp_path / 'home' / 'fleet.db'}")
    add_sample(store, "r1", at=now, predicted="a", confidence=0.3)
    add_sample(store, "r2", at=now, tenant="bolt", reason="sampled", predicted="b", confidence=0.9)
    ReviewController(store).tick(now)
    store.close()

    code, out, _ = cli("review", "list")
    assert code == 0 and "low_confidence" in out and "bolt" in out and "0.3" in out
    mine, theirs = json.loads(cli("review", "list", "-o", "json")[1])
    assert (mine["tenant"], mine["request_id"], mine["predicted"]) == ("acme", "r1", "a")
    assert theirs["tenant"] == "bolt"
    assert [i["id"] for i in json.loads(cli("review", "list", "-t", "bolt", "-o", "json")[1])] == [
        theirs["id"]
    ]

    code, out, _ = cli("review", "next", "--tenant", "acme")
    assert code == 0 and f"review label {mine['id']} LABEL" in out
    assert "a (confidence 0.300)" in out and "pixels: 64 values in [0, 63]" in out
    shown = json.loads(cli("review", "next", "-o", "json")[1])
    assert shown["id"] == mine["id"] and len(shown["inputs"]["pixels"]) == 64

    code, _, err = cli("review", "label", str(mine["id"]), "kiwi")
    assert code == 2 and "unknown label 'kiwi' for model 'digits'; valid labels: a, b, c" in err
    code, _, err = cli("review", "label", str(theirs["id"]), "a", "--tenant", "acme")
    assert code == 2 and f"no review item {theirs['id']}" in err
    code, out, _ = cli("review", "label", str(mine["id"]), "b", "--tenant", "acme")
    assert code == 0 and f"review item {mine['id']} labelled 'b' (request r1, row 0)" in out
    code, out, _ = cli("review", "list", "--status", "labelled")
    assert code == 0 and "labelled: b by carol" in out

    [row] = json.loads(cli("accuracy", "-o", "json")[1])
    assert (row["tenant"], row["version"], row["labelled"], row["accuracy"]) == (
        "acme",
        "v1",
        1,
        0.0,
    )
    assert row["confusion"] == [{"true": "b", "predicted": "a", "rows": 1}]
    code, out, _ = cli("accuracy", "--model", "digits")
    assert code == 0 and "acme" in out and "0.000" in out and "b 0.00 (1)" in out
    code, out, _ = cli("accuracy", "--tenant", "bolt")
    assert code == 0 and "no labels on logged predictions yet" in out

    tasks_file = tmp_path / "tasks.json"
    code, _, err = cli("review", "export", "--to", str(tasks_file))
    assert code == 0 and "1 Label Studio task(s) written" in err
    [task] = json.loads(tasks_file.read_text())
    assert task["data"]["request_id"] == "r2"
    assert task["predictions"][0]["result"][0]["value"] == {"choices": ["b"]}
    code, out, _ = cli("review", "export", "--status", "all", "--tenant", "acme")
    assert code == 0 and [t["data"]["tenant"] for t in json.loads(out)] == ["acme"]

    assert cli("review", "list", "--status", "done")[0] == 2
    assert cli("review", "label", "999", "a")[0] == 2
    assert cli("review", "next", "--tenant", "nobody")[1].strip() == "no open review items"
