"""Regional failover between two real regions: `modelfleet region down eu-west --to us-east`.

The command writes the status, with an audit entry, to both regions' stores; each gateway
reloads at its next refresh. bolt (no residency) is then served by us-east, from either
gateway; acme (residency eu) is refused by both with a 503 that names the home region, the
failover region and the residency. `region up` brings both back home.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelfleet.cli import main
from tests.gateway.conftest import digits_models, infer_body  # noqa: F401 (a fixture)
from tests.gateway.test_residency import DIGITS, NOTHING, TwoRegions, held, two_regions
from tests.regions.runner import run_cli


@pytest.fixture
def regions(
    tmp_path: Path,
    digits_models: Path,  # noqa: F811 (the fixture imported above)
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[TwoRegions]:
    with two_regions(tmp_path, digits_models) as regions:
        monkeypatch.setenv("MODELFLEET_SECRET_EU_STORE", regions.eu.store.url)
        monkeypatch.setenv("MODELFLEET_SECRET_US_STORE", regions.us.store.url)
        monkeypatch.setenv("MODELFLEET_DATABASE_URL", regions.us.store.url)  # run from the US
        monkeypatch.setenv("MODELFLEET_REGION", "us-east")
        monkeypatch.setenv("MODELFLEET_ACTOR", "oncall")
        monkeypatch.setenv("COLUMNS", "200")
        yield regions


def _status(regions: TwoRegions, tenant: str) -> dict[str, int]:
    out = {}
    for region in (regions.eu, regions.us):
        with regions.client(region, tenant) as client:
            out[region.name] = client.post(
                "/v2/models/digits/infer", json=infer_body(DIGITS[:1])
            ).status_code
    return out


def test_a_region_declared_down_fails_over_allowed_tenants_and_refuses_resident_ones(
    regions: TwoRegions, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _status(regions, "acme") == {"eu-west": 200, "us-east": 307}
    written = run_cli(capsys, "region", "down", "eu-west", "--to", "us-east", "--reason", "fire")
    declared = time.monotonic()
    assert "us-east: written" in written and "eu-west: written" in written
    regions.reloaded()
    assert time.monotonic() - declared < 1.0  # the next refresh (every 0.1 s here)
    listed = json.loads(run_cli(capsys, "region", "list", "-o", "json"))
    eu = next(r for r in listed if r["region"] == "eu-west")
    assert (eu["status"], eu["failover_to"], eu["reason"]) == ("down", "us-east", "fire")

    # bolt has no residency: us-east serves it, and the EU gateway forwards it there.
    assert _status(regions, "bolt") == {"eu-west": 200, "us-east": 200}
    # acme's residency (eu) forbids us-east: both gateways refuse, saying why.
    for region in (regions.eu, regions.us):
        with regions.client(region, "acme") as client:
            refused = client.post("/v2/models/digits/infer", json=infer_body(DIGITS[:1]))
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["retry-after"]) > 0
        reason: Any = refused.json()["error"]
        for words in ("'eu-west' is down", "residency (eu)", "'us-east'"):
            assert words in reason
    for region in (regions.eu, regions.us):
        assert region.serving.flush()
    assert held(regions.us.store, "acme") == NOTHING  # refused: no trace in the US
    assert held(regions.us.store, "bolt")["samples"] == 2  # failed over: served in the US

    assert "written" in run_cli(capsys, "region", "up", "eu-west")
    regions.reloaded()
    assert _status(regions, "acme") == {"eu-west": 200, "us-east": 307}
    assert _status(regions, "bolt") == {"eu-west": 200, "us-east": 200}
    for region in (regions.eu, regions.us):
        assert region.serving.flush()
    assert held(regions.eu.store, "bolt")["samples"] == 2  # back home, through either gateway
    assert held(regions.us.store, "acme") == NOTHING

    # A global report from the US side counts acme's EU traffic from the EU's rollups, and
    # moves none of acme's raw records: after traffic, failover and the report, they are in
    # the EU store only.
    eu_before = held(regions.eu.store, "acme")
    report = json.loads(run_cli(capsys, "stats", "--minutes", "60", "--global", "-o", "json"))
    acme = [row for row in report if row["tenant"] == "acme"]
    assert acme and sum(row["requests"] for row in acme) > 0
    assert held(regions.us.store, "acme") == NOTHING
    assert held(regions.eu.store, "acme") == eu_before and eu_before["samples"] > 0


def test_declaring_an_undeclared_region_down_is_refused(
    regions: TwoRegions, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["region", "down", "mars"])
    assert exit_.value.code == 2
    assert "region 'mars' is not declared" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["region", "down", "eu-west", "--to", "eu-west"])
    assert "cannot fail over to itself" in capsys.readouterr().err
