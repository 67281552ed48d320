"""The global view across two regions' stores: exact totals, from rollups only.

Two stores (eu-west, us-east) hold the same fleet. Each holds its own region's traffic: rollups
and raw samples of the tenants homed there. `stats --global` and `sla status --global` run
from the US side must count every region's requests, and leave every store as it was: no raw
record of the EU tenant is read into, or written to, the US store.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import func, insert, select

from modelfleet.cli import main
from modelfleet.clock import VirtualClock
from modelfleet.config import load_fleet
from modelfleet.registry import apply_fleet
from modelfleet.registry.keys import verify_key
from modelfleet.sim.history import StreamLoad, synthetic_rollups
from modelfleet.store import Store, open_store
from modelfleet.store.tables import api_keys, samples
from modelfleet.store.tables import rollups as rollups_table
from modelfleet.telemetry.writer import write_rollups
from modelfleet.web.ui.overview import fleet_overview
from tests.regions.runner import run_cli

NOW = datetime(2026, 11, 16, 12, 0, tzinfo=UTC)  # 30 minutes of traffic end here
REGIONS = """
---
kind: Region
metadata: {name: eu-west}
spec: {jurisdiction: eu, url: "https://eu.fleet.example", store: MODELFLEET_SECRET_EU_STORE}
---
kind: Region
metadata: {name: us-east}
spec: {jurisdiction: us, url: "https://us.fleet.example", store: MODELFLEET_SECRET_US_STORE}
---
kind: Region
metadata: {name: us-west}
spec: {jurisdiction: us, url: "https://us-west.fleet.example"}
---
kind: Region
metadata: {name: ap-south}
spec: {jurisdiction: in, url: "https://ap.fleet.example"}
"""
RESIDENCY = "  home_region: eu-west\n"


def _sample(tenant: str, region: str) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "model": "product-recognizer",
        "version": "v1",
        "region": region,
        "at": NOW - timedelta(minutes=5),
        "reason": "sampled",
        "inputs": {"pixels": [0.0] * 64},
        "outputs": {"label": "apple"},
        "request_id": None,
    }


def _traffic(store: Store, tenant: str, region: str, per_minute: float) -> int:
    load = StreamLoad(tenant, "product-recognizer", "v1", region, per_minute)
    minutes = list(
        synthetic_rollups(
            [load], NOW - timedelta(minutes=30), 30, confidences=np.array([0.9]), seed=len(tenant)
        )
    )
    with store.begin() as conn:
        write_rollups(conn, minutes, now=NOW)
        conn.execute(insert(samples), [_sample(tenant, region) for _ in range(3)])
    return sum(r.requests for r in minutes)


def _held(store: Store) -> dict[str, dict[str, int]]:
    """Per table (rollups, samples), the rows each tenant has in `store`."""
    out: dict[str, dict[str, int]] = {}
    with store.begin() as conn:
        for table in (rollups_table, samples):
            rows = conn.execute(select(table.c.tenant, func.count()).group_by(table.c.tenant))
            out[table.name] = {tenant: n for tenant, n in rows}
    return out


@pytest.fixture
def regions(
    trained_example: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Store, Store, dict[str, int]]]:
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    (fleet / "artifacts").symlink_to(trained_example / "artifacts")
    for name in ("v4.py", "sla.yaml"):  # the SLAs: enterprise (acme) and premium (bayside)
        (fleet / name).write_text((trained_example / name).read_text())
    text = (trained_example / "fleet.yaml").read_text()
    assert RESIDENCY in text
    (fleet / "fleet.yaml").write_text(
        text.replace(RESIDENCY, RESIDENCY + "  residency: eu\n", 1) + REGIONS
    )
    eu = open_store(f"sqlite:///{tmp_path / 'eu.db'}")
    us = open_store(f"sqlite:///{tmp_path / 'us.db'}")
    for store in (eu, us):
        declared = load_fleet([fleet / "fleet.yaml", fleet / "sla.yaml"])
        apply_fleet(store, declared, actor="test", now=NOW)
    sent = {
        "acme-grocers": _traffic(eu, "acme-grocers", "eu-west", 40),
        "bayside-market": _traffic(us, "bayside-market", "us-east", 25),
    }
    monkeypatch.setenv("MODELFLEET_SECRET_EU_STORE", eu.url)
    monkeypatch.setenv("MODELFLEET_SECRET_US_STORE", us.url)
    monkeypatch.setenv("MODELFLEET_DATABASE_URL", us.url)  # the operator works from the US
    monkeypatch.setenv("MODELFLEET_REGION", "us-east")
    monkeypatch.setattr("modelfleet.cli.clock", VirtualClock(NOW))
    monkeypatch.setenv("COLUMNS", "200")
    yield eu, us, sent
    eu.close()
    us.close()


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    return json.loads(run_cli(capsys, *args))


def test_global_stats_count_every_regions_requests_from_rollups_alone(
    regions: tuple[Store, Store, dict[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    eu, us, sent = regions
    before = {"eu": _held(eu), "us": _held(us)}
    local = _run(capsys, "stats", "--minutes", "60", "-o", "json")
    assert {row["tenant"] for row in local} == {"bayside-market"}  # the US store alone
    everywhere = _run(capsys, "stats", "--minutes", "60", "--global", "-o", "json")
    assert {row["tenant"]: row["requests"] for row in everywhere} == sent
    # Nothing moved: the EU tenant's raw samples are in the EU store only, and no store
    # gained or lost a row.
    assert {"eu": _held(eu), "us": _held(us)} == before
    assert "acme-grocers" not in before["us"]["samples"]
    assert before["eu"]["samples"] == {"acme-grocers": 3}


def test_global_sla_status_counts_a_tenants_minutes_in_every_region(
    regions: tuple[Store, Store, dict[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    eu, us, _ = regions
    before = {"eu": _held(eu), "us": _held(us)}
    local = {s["tenant"]: s for s in _run(capsys, "sla", "status", "-o", "json")}
    everywhere = {s["tenant"]: s for s in _run(capsys, "sla", "status", "--global", "-o", "json")}
    assert set(local) == set(everywhere) == {"acme-grocers", "bayside-market"}
    # The US store knows nothing of the EU tenant's traffic; the global view does.
    assert local["acme-grocers"] != everywhere["acme-grocers"]
    assert local["bayside-market"] == everywhere["bayside-market"]
    assert {"eu": _held(eu), "us": _held(us)} == before


def test_a_region_whose_store_variable_is_unset_is_a_clear_error(
    regions: tuple[Store, Store, dict[str, int]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MODELFLEET_SECRET_EU_STORE")
    with pytest.raises(SystemExit) as info:
        main(["stats", "--global"])
    assert info.value.code == 2
    assert "MODELFLEET_SECRET_EU_STORE" in capsys.readouterr().err


def test_a_global_capacity_plan_sizes_for_every_regions_demand(
    regions: tuple[Store, Store, dict[str, int]],
    trained_example: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    eu, us, _ = regions
    for store, tenant, region in (
        (eu, "acme-grocers", "eu-west"),
        (us, "bayside-market", "us-east"),
    ):
        apply_fleet(store, load_fleet([trained_example / "capacity.yaml"]), actor="test", now=NOW)
        hours = list(
            synthetic_rollups(
                [StreamLoad(tenant, "product-recognizer", "v1", region, 600, daily_swing=0.5)],
                NOW - timedelta(hours=50),  # planning needs 48 hours of history
                50 * 60,
                confidences=np.array([0.9]),
                seed=3,
            )
        )
        with store.begin() as conn:
            write_rollups(conn, hours, now=NOW)
    args = ("capacity", "plan", "--model", "product-recognizer", "--days", "1")
    args += ("--per-replica-rps", "2", "-o", "json")
    local = _run(capsys, *args)
    everywhere = _run(capsys, *args, "--global")
    # Twice the demand (600 a minute in each region): more replicas every hour of the plan.
    assert all(
        g["replicas"] > h["replicas"]
        for g, h in zip(everywhere["hours"], local["hours"], strict=True)
    )


def test_the_dashboards_overview_shows_every_regions_traffic(
    regions: tuple[Store, Store, dict[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelfleet.settings import Settings
    from modelfleet.web.ui.app import build_ui

    eu, us, sent = regions
    before = {"eu": _held(eu), "us": _held(us)}
    monkeypatch.setenv("MODELFLEET_ADMIN_TOKEN", "operator-secret")
    # Five minutes after the traffic's first minutes: the overview's window holds 5 of them.
    clock = VirtualClock(NOW - timedelta(minutes=25))
    ui = build_ui(us, clock, Settings.from_env())

    async def browse() -> str:
        transport = httpx.ASGITransport(app=ui)
        async with httpx.AsyncClient(
            transport=transport, base_url="https://fleet.example", follow_redirects=True
        ) as client:
            signed_in = await client.post("/ui/login", data={"token": "operator-secret"})
            assert signed_in.status_code == 200, signed_in.text
            return (await client.get("/ui/")).text

    page = asyncio.run(browse())
    assert "Figures of every region (us-east, eu-west), from their rollups." in page
    with us.begin() as conn:
        local = fleet_overview(conn, clock.now())
    (deployment,) = local
    (v1,) = [v for v in deployment.versions if v.name == "v1"]
    with eu.begin() as conn:  # what the EU side alone serves in that window
        eu_only = fleet_overview(conn, clock.now())
    (eu_v1,) = [v for v in eu_only[0].versions if v.name == "v1"]
    everywhere = f"<td>{v1.requests_per_s + eu_v1.requests_per_s:.2f}</td>"
    assert v1.requests_per_s > 0 and eu_v1.requests_per_s > 0
    assert everywhere in page, page
    assert {"eu": _held(eu), "us": _held(us)} == before


def test_a_key_is_issued_and_revoked_in_every_region(
    regions: tuple[Store, Store, dict[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    eu, us, _ = regions
    with pytest.raises(SystemExit) as info:
        main(["keys", "create", "acme-grocers"])
    assert info.value.code in (0, None)
    plaintext = capsys.readouterr().out.strip()

    def stored(store: Store) -> Any:
        with store.begin() as conn:
            return conn.execute(
                select(api_keys.c.prefix, api_keys.c.key_hash, api_keys.c.revoked_at)
            ).all()

    (us_key,) = stored(us)
    assert stored(eu) == [us_key]  # the same salted hash: the key works in either region
    with eu.begin() as conn:
        assert verify_key(conn, plaintext) is not None
    with pytest.raises(SystemExit) as info:
        main(["keys", "revoke", us_key.prefix])
    assert info.value.code in (0, None)
    for store in (eu, us):
        with store.begin() as conn:
            assert verify_key(conn, plaintext) is None  # refused everywhere
