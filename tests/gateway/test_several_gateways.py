"""Two `modelfleet up` processes on one PostgreSQL store and one Redis, as in production.

Whichever gateway a load balancer picks, a tenant meets one quota, an applied change is served
by both within a second or two, and the rollups both flush add up to exactly the requests
clients were answered. Both processes start once for the module, in parallel; a ledger counts
every answer, so the last test can hold the store to it whatever ran before.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis
from sklearn.datasets import load_digits
from sqlalchemy import create_engine, text

from modelfleet.clock import SystemClock
from modelfleet.config import load_fleet
from modelfleet.registry import apply_fleet, create_key
from modelfleet.store import open_store
from modelfleet.telemetry.writer import read_rollups
from tests.gateway.conftest import FLEET, _free_port, infer_body

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

REDIS_URL = os.environ.get("MODELFLEET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REGIONS = ("eu-west", "us-east")  # one per gateway, so the rollups tell them apart
BURST = 5
# dana's own quota: a burst of 5 and a refill so slow (one token in ~17 minutes) that no
# token comes back while the module runs: exactly BURST requests may pass, over both gateways.
DANA = (
    "---\nkind: Tenant\nmetadata: {name: dana}\n"
    "spec: {display_name: Dana, tier: standard, home_region: eu-west,"
    " contact_email: ml@dana.example,"
    f" quota: {{requests_per_second: 0.001, burst: {BURST}, max_in_flight: 64}}}}\n"
)
FLEET_YAML = FLEET.replace("tenants: [acme, bolt]", "tenants: [acme, bolt, dana]") + DANA


@dataclass
class Gateway:
    region: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class Fleet:
    """Two gateways on one store and one Redis, and a ledger of every answer they gave."""

    database_url: str
    fleet_dir: Path
    gateways: list[Gateway]
    keys: dict[str, str]
    rows: np.ndarray
    ledger: Counter[tuple[str, str, int]] = field(default_factory=Counter)

    def infer(self, gateway: Gateway, tenant: str) -> httpx.Response:
        """One request for `tenant` through `gateway`, counted as (tenant, region, status)."""
        response = httpx.post(
            f"{gateway.url}/v2/models/digits/infer",
            json=infer_body(self.rows[:1]),
            headers={"Authorization": f"Bearer {self.keys[tenant]}"},
            timeout=30,
        )
        self.ledger[tenant, gateway.region, response.status_code] += 1
        return response

    def apply(self, fleet_yaml: str) -> None:
        """What `modelfleet apply -f` does, from a third process's point of view: the store."""
        path = self.fleet_dir / "change.yaml"
        path.write_text(fleet_yaml)
        store = open_store(self.database_url)
        try:
            apply_fleet(store, load_fleet([path]), actor="test", now=SystemClock().now())
        finally:
            store.close()

    def stop(self) -> None:
        """SIGTERM both, as a rolling update does, and wait: each flushes its telemetry."""
        for g in self.gateways:
            if g.process.poll() is None:
                g.process.send_signal(signal.SIGTERM)
        for g in self.gateways:
            try:
                g.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                g.process.kill()
                g.process.wait()


def _start(env: dict[str, str], region: str, home: Path) -> Gateway:
    port = _free_port()
    home.mkdir(parents=True)
    log = home / "up.log"
    with log.open("wb") as out:  # a file, not a pipe nobody reads while the test runs
        process = subprocess.Popen(
            [sys.executable, "-m", "modelfleet", "up", "--port", str(port), "--no-control"],
            env={**env, "MODELFLEET_HOME": str(home), "MODELFLEET_REGION": region},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Gateway(region, f"http://127.0.0.1:{port}", process, log)


def _wait_ready(gateway: Gateway, deadline: float) -> None:
    while time.monotonic() < deadline and gateway.process.poll() is None:
        try:
            if httpx.get(f"{gateway.url}/v2/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"gateway {gateway.region} not ready: {gateway.log.read_text()}")


def _empty_schema(database_url: str) -> None:
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory, digits_models: Path, postgres_url: str
) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("several-gateways")
    for name in ("v1.joblib", "v2.joblib", "reference.npz"):
        (root / name).write_bytes((digits_models / name).read_bytes())
    (root / "fleet.yaml").write_text(FLEET_YAML)
    _empty_schema(postgres_url)  # the worker's database is shared with other files' tests
    # Applied before either gateway starts, so both find the fleet and keys at their first read.
    store = open_store(postgres_url)
    now = SystemClock().now()
    apply_fleet(store, load_fleet([root / "fleet.yaml"]), actor="test", now=now)
    with store.begin() as conn:
        keys = {
            t: create_key(conn, t, actor="test", now=now).plaintext
            for t in ("acme", "bolt", "dana")
        }
    store.close()
    prefix = f"mf-test-{secrets.token_hex(4)}"
    env = {
        **os.environ,
        "MODELFLEET_DATABASE_URL": postgres_url,
        "MODELFLEET_REDIS_URL": REDIS_URL,
        "MODELFLEET_REDIS_PREFIX": prefix,
        "MODELFLEET_ACTOR": "test",
    }
    gateways = [_start(env, region, root / region) for region in REGIONS]
    rows = load_digits().data.astype(np.float32)[:4]
    running = Fleet(postgres_url, root, gateways, keys, rows)
    try:
        deadline = time.monotonic() + 90
        for g in gateways:  # both started already: they load in parallel
            _wait_ready(g, deadline)
        yield running
    finally:
        running.stop()
        client = redis.Redis.from_url(REDIS_URL)
        stale = list(client.scan_iter(match=f"{prefix}:*"))
        if stale:
            client.delete(*stale)
        client.close()
        _empty_schema(postgres_url)


def test_a_tenant_gets_exactly_its_burst_however_requests_spread_over_gateways(
    fleet: Fleet,
) -> None:
    sent = 4 * BURST
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda i: fleet.infer(fleet.gateways[i % 2], "dana").status_code, range(sent))
        )
    # Per-process buckets would have let 2 * BURST through, BURST on each gateway.
    assert answers.count(200) == BURST
    assert answers.count(429) == sent - BURST
    for g in fleet.gateways:  # each gateway refused: both enforce the one shared bucket
        assert fleet.ledger["dana", g.region, 429] >= sent // 2 - BURST


def test_an_applied_version_is_served_by_both_gateways_within_two_seconds(fleet: Fleet) -> None:
    for g in fleet.gateways:
        assert fleet.infer(g, "acme").json()["model_version"] == "v1"
    fleet.apply(FLEET_YAML.replace("version: v1}", "version: v2}"))
    applied = time.monotonic()
    waiting = list(fleet.gateways)
    while waiting and time.monotonic() - applied < 10:
        waiting = [g for g in waiting if fleet.infer(g, "acme").json()["model_version"] != "v2"]
        time.sleep(0.05)
    took = time.monotonic() - applied
    assert not waiting, f"still on v1 after {took:.1f} s: {[g.region for g in waiting]}"
    assert took < 2.5, f"{took:.2f} s"  # each refreshes every 0.5 s; loading v2 takes the rest
    for g in fleet.gateways:  # and neither goes back
        assert {fleet.infer(g, "acme").json()["model_version"] for _ in range(3)} == {"v2"}


def test_rollups_of_both_gateways_sum_to_exactly_the_requests_answered(fleet: Fleet) -> None:
    calls = [(g, tenant) for g in fleet.gateways for tenant in ("acme", "bolt") for _ in range(15)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda call: fleet.infer(*call).status_code, calls))
    assert 429 in answers  # bolt's free tier (burst 10, shared) refused some: they count too
    fleet.stop()
    assert [g.process.returncode for g in fleet.gateways] == [0, 0], [
        g.log.read_text() for g in fleet.gateways
    ]
    store = open_store(fleet.database_url)
    now = datetime.now(UTC)
    with store.begin() as conn:
        rollups = read_rollups(conn, since=now - timedelta(hours=1), until=now + timedelta(hours=1))
    store.close()
    stored: Counter[tuple[str, str, int]] = Counter()
    for key, rollup in rollups.items():
        stored[key.tenant, key.region, 200] += rollup.status["2xx"]
        stored[key.tenant, key.region, 429] += rollup.status["rejected"]
        assert rollup.status["4xx"] == rollup.status["5xx"] == 0
    assert {status for _, _, status in fleet.ledger} <= {200, 429}
    assert +stored == +fleet.ledger
