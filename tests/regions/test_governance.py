"""A tenant's export and erasure across two regions' stores.

Two stores (eu-west, us-east) hold the same fleet, with Region kinds naming each store's
secret variable. Both hold traffic of acme (the tenant exported and erased) and of bolt
(another tenant, which must come out of it untouched), written by the real writers: rollups,
samples, the prediction log, feedback, review items, SLA credits, an API key, a web session.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, create_engine, func, select, text

from modelfleet import __version__
from modelfleet.cli import main
from modelfleet.clock import VirtualClock
from modelfleet.config import load_fleet_text
from modelfleet.regions.erasure import erase_tenant, verify_report
from modelfleet.regions.export import export_tenant, read_archive
from modelfleet.regions.stores import region_stores
from modelfleet.registry import apply_fleet, create_key, latest, list_keys
from modelfleet.review.queue import open_items
from modelfleet.sla.controller import SLAController
from modelfleet.store import Store, open_store
from modelfleet.store.tables import (
    api_keys,
    feedback,
    predictions,
    review_items,
    rollups,
    samples,
    sla_credits,
    web_sessions,
)
from modelfleet.telemetry.feedback import Feedback, write_feedback, write_predictions
from modelfleet.telemetry.rollup import Rollup, RollupKey
from modelfleet.telemetry.writer import write_rollups, write_samples
from modelfleet.web.ui.sessions import open_session

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
NOW = START + timedelta(hours=2)
FLEET = """
kind: Region
metadata: {name: eu-west}
spec: {jurisdiction: eu, url: "https://eu.fleet.example", store: MODELFLEET_SECRET_EU_STORE}
---
kind: Region
metadata: {name: us-east}
spec: {jurisdiction: us, url: "https://us.fleet.example", store: MODELFLEET_SECRET_US_STORE}
---
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
  tenants: [acme, bolt]
  time_zone: UTC
  monthly_fee: 1000
  currency: EUR
  slos:
    - {name: availability, type: availability, objective: 0.999}
  credits:
    - {slo: availability, below: 0.999, credit: 0.1}
"""
RAW = (samples, predictions, feedback, review_items)
TENANT_TABLES = (*RAW, rollups, sla_credits, api_keys, web_sessions)


def traffic(store: Store, tenant: str, region: str) -> None:
    """An hour of traffic with 2 % errors (a credit is owed), and three kept requests with
    their predictions, a customer's feedback on one, and their review items."""
    minutes = []
    for m in range(60):
        rollup = Rollup(RollupKey(tenant, "digits", "v1", region, START + timedelta(minutes=m)))
        for i in range(50):
            rollup.record(500 if i == 0 else 200, 0.02)
        minutes.append(rollup)
    kept = [f"{tenant}-{region}-{i}" for i in range(3)]
    at = START + timedelta(minutes=30)
    with store.begin() as conn:
        write_rollups(conn, minutes, now=START + timedelta(hours=1))
        write_samples(
            conn,
            [
                {
                    "tenant": tenant,
                    "model": "digits",
                    "version": "v1",
                    "region": region,
                    "at": at,
                    "reason": "low_confidence",
                    "inputs": {"pixels": [[float(i)] * 64]},
                    "outputs": {"predictions": ["a"], "confidences": [0.4]},
                    "request_id": request_id,
                }
                for i, request_id in enumerate(kept)
            ],
        )
        write_predictions(
            conn,
            [
                {
                    "tenant": tenant,
                    "model": "digits",
                    "version": "v1",
                    "request_id": request_id,
                    "at": at,
                    "predicted": ["a"],
                    "confidences": [0.4],
                }
                for request_id in kept
            ],
        )
        write_feedback(
            conn,
            [Feedback(tenant, "digits", kept[0], 0, "b", "customer", "key", at)],
        )
        open_items(conn, NOW, lookback=timedelta(days=1), limit=100, tenant=tenant)
        create_key(conn, tenant, actor="test", now=START)
        open_session(conn, "tenant", tenant=tenant, now=NOW)


def region_store(url: str, region: str) -> Store:
    store = open_store(url)
    apply_fleet(store, load_fleet_text(FLEET), actor="test", now=START)
    for tenant in ("acme", "bolt"):
        traffic(store, tenant, region)
    SLAController(store).tick(NOW)
    return store


def held(store: Store, tenant: str) -> dict[str, int]:
    """The tenant's rows per table, counted here rather than by the code under test."""
    with store.begin() as conn:
        return {
            t.name: int(
                conn.execute(
                    select(func.count()).select_from(t).where(t.c.tenant == tenant)
                ).scalar_one()
            )
            for t in TENANT_TABLES
        }


def ids(store: Store, table: Table, tenant: str) -> list[Any]:
    pk = next(iter(table.primary_key.columns))
    with store.begin() as conn:
        return sorted(conn.execute(select(pk).where(table.c.tenant == tenant)).scalars())


@pytest.fixture
def regions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Store, Store]]:
    """The EU and US stores, filled; the CLI runs in the EU region."""
    eu = region_store(f"sqlite:///{tmp_path / 'eu.db'}", "eu-west")
    us = region_store(f"sqlite:///{tmp_path / 'us.db'}", "us-east")
    monkeypatch.setenv("MODELFLEET_SECRET_EU_STORE", eu.url)
    monkeypatch.setenv("MODELFLEET_SECRET_US_STORE", us.url)
    monkeypatch.setenv("MODELFLEET_DATABASE_URL", eu.url)
    monkeypatch.setenv("MODELFLEET_REGION", "eu-west")
    monkeypatch.setenv("MODELFLEET_ACTOR", "dpo@fleet.example")
    monkeypatch.setattr("modelfleet.cli.clock", VirtualClock(NOW))
    yield eu, us
    eu.close()
    us.close()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(list(args))
    captured = capsys.readouterr()
    return int(info.value.code or 0), captured.out, captured.err


def test_the_export_lists_every_row_of_the_tenant_and_none_of_another(
    regions: tuple[Store, Store], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    eu, us = regions
    archive = tmp_path / "acme.tar.gz"
    code, out, _ = run(capsys, "tenant", "export", "acme", "--to", str(archive))
    assert code == 0
    sha256 = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert out.strip() == sha256
    manifest, files = read_archive(archive)
    assert manifest["tenant"] == "acme"
    assert manifest["exported_by"] == "dpo@fleet.example"
    assert manifest["modelfleet_version"] == __version__
    assert set(manifest["regions"]) == {"eu-west", "us-east"}
    for region, store in (("eu-west", eu), ("us-east", us)):
        tables = manifest["regions"][region]["tables"]
        for table in TENANT_TABLES:
            pk = next(iter(table.primary_key.columns)).name
            rows = files[f"{region}/{table.name}.jsonl"]
            assert sorted(r[pk] for r in rows) == ids(store, table, "acme"), (region, table.name)
            assert tables[table.name]["rows"] == len(rows) > 0
        for name, entry in tables.items():
            data = b"".join(
                json.dumps(r, sort_keys=True, ensure_ascii=False).encode() + b"\n"
                for r in files[entry["file"]]
            )
            assert hashlib.sha256(data).hexdigest() == entry["sha256"], name
        # Every row found is acme's, and secrets stay out.
        for member, rows in files.items():
            for row in rows:
                assert "bolt" not in json.dumps(row), member
        assert all("key_hash" not in r for r in files[f"{region}/api_keys.jsonl"])
        assert files[f"{region}/samples.jsonl"][0]["at"] == "2026-11-02T09:30:00+00:00"
        with store.begin() as conn:
            (entry,) = latest(conn, kind="Tenant", name="acme", limit=1)
        assert (entry.action, entry.new) == (
            "export",
            {
                "archive_sha256": sha256,
                "rows": sum(
                    t["rows"] for r in manifest["regions"].values() for t in r["tables"].values()
                ),
                "regions": ["eu-west", "us-east"],
            },
        )


def test_erasure_leaves_no_raw_row_keeps_the_sla_history_and_audits_its_report(
    regions: tuple[Store, Store], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    eu, us = regions
    bolt_before = {"eu": held(eu, "bolt"), "us": held(us, "bolt")}
    credits_before = {s: ids(s, sla_credits, "acme") for s in (eu, us)}
    assert all(credits_before.values())
    path = tmp_path / "erasure.json"
    code, _, err = run(capsys, "tenant", "erase", "acme", "--yes", "--report", str(path))
    assert code == 0, err
    report = json.loads(path.read_text())
    assert verify_report(report)
    assert report["complete"] is True
    assert report["tenant"] == "acme" and report["erased_by"] == "dpo@fleet.example"
    for store, region in ((eu, "eu-west"), (us, "us-east")):
        after = held(store, "acme")
        assert {t.name: after[t.name] for t in (*RAW, rollups, api_keys, web_sessions)} == {
            t.name: 0 for t in (*RAW, rollups, api_keys, web_sessions)
        }
        assert ids(store, sla_credits, "acme") == credits_before[store]
        done = report["regions"][region]
        assert done["deleted"]["samples"] == 3 and done["deleted"]["review_items"] == 3
        assert done["deleted"]["rollups"] == 60 and done["deleted"]["api_keys"] == 1
        assert set(done["remaining"].values()) == {0}
        assert done["kept"]["sla_credits"] == 1
        with store.begin() as conn:
            (entry,) = latest(conn, kind="Tenant", name="acme", limit=1)
            revoked = latest(conn, kind="ApiKey", limit=1)
        assert entry.action == "erase" and entry.new is not None
        assert entry.new["report_sha256"] == report["sha256"]
        assert revoked[0].action == "revoke" and revoked[0].new == {
            "tenant": "acme",
            "prefix": done["revoked_keys"][0],
            "revoked": True,
        }
    assert {"eu": held(eu, "bolt"), "us": held(us, "bolt")} == bolt_before
    assert "contract" in report["kept"]["sla_credits"]["category"]
    assert "audit" in report["kept"]["audit_log"]["why"]
    # Changing the report breaks its hash.
    report["regions"]["eu-west"]["deleted"]["samples"] = 2
    assert not verify_report(report)


def test_erasing_twice_deletes_nothing_more(
    regions: tuple[Store, Store], capsys: pytest.CaptureFixture[str]
) -> None:
    eu, _ = regions
    assert run(capsys, "tenant", "erase", "acme", "--yes")[0] == 0
    code, out, _ = run(capsys, "tenant", "erase", "acme", "--yes")
    assert code == 0
    again = json.loads(out)
    assert again["complete"] is True and verify_report(again)
    for done in again["regions"].values():
        assert set(done["deleted"].values()) == {0} and done["revoked_keys"] == []
    with eu.begin() as conn:
        erasures = [e for e in latest(conn, kind="Tenant", name="acme") if e.action == "erase"]
    assert len(erasures) == 2  # newest first
    assert erasures[0].new is not None and erasures[0].new["report_sha256"] == again["sha256"]


def test_erase_without_yes_and_no_terminal_is_refused(
    regions: tuple[Store, Store], capsys: pytest.CaptureFixture[str]
) -> None:
    eu, _ = regions
    code, _, err = run(capsys, "tenant", "erase", "acme")
    assert code == 2 and "--yes" in err
    assert held(eu, "acme")["samples"] == 3


@pytest.mark.parametrize("command", [["tenant"], ["tenant", "export"], ["tenant", "erase"]])
def test_the_tenant_commands_have_help(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0 and "Usage: modelfleet" in out


def test_an_unknown_tenant_is_refused(
    regions: tuple[Store, Store], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "tenant", "export", "nobody", "--to", str(tmp_path / "x.tar.gz"))
    assert code == 2 and "nobody" in err
    assert not (tmp_path / "x.tar.gz").exists()


@pytest.mark.postgres
def test_export_then_erase_with_one_region_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    eu = region_store(f"sqlite:///{tmp_path / 'eu.db'}", "eu-west")
    us = region_store(postgres_url, "us-east")
    secrets = {"MODELFLEET_SECRET_EU_STORE": eu.url, "MODELFLEET_SECRET_US_STORE": postgres_url}
    try:
        bolt_before = held(us, "bolt")
        with region_stores(eu, "eu-west", secrets) as stores:
            summary = export_tenant(
                stores, "acme", tmp_path / "a.tar.gz", actor="t", now=NOW, version="x"
            )
            _, files = read_archive(summary.path)
            assert sorted(r["id"] for r in files["us-east/samples.jsonl"]) == ids(
                us, samples, "acme"
            )
            report = erase_tenant(stores, "acme", actor="t", now=NOW, version="x")
        assert report["complete"] and verify_report(report)
        assert report["regions"]["us-east"]["deleted"]["predictions"] == 3
        assert {t.name: held(us, "acme")[t.name] for t in RAW} == {t.name: 0 for t in RAW}
        assert held(us, "acme")["sla_credits"] == 1
        assert held(us, "bolt") == bolt_before
        with us.begin() as conn:
            (entry,) = latest(conn, kind="Tenant", name="acme", limit=1)
            assert list_keys(conn, "acme") == []
        assert entry.new is not None and entry.new["report_sha256"] == report["sha256"]
    finally:
        eu.close()
        us.close()
        engine = create_engine(postgres_url)  # the session's database, empty for the next test
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
