"""The store away for a while: the gateway serves on, spools telemetry and writes it back whole.

A real gateway (uvicorn, real HTTP) on the real PostgreSQL, reached through a TCP proxy that
the test cuts; the rollups in PostgreSQL must count exactly the requests the clients sent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from modelfleet.clock import SystemClock
from modelfleet.config import load_fleet
from modelfleet.gateway.app import Gateway, GatewaySettings
from modelfleet.gateway.quotas import LocalQuotas, Quota
from modelfleet.gateway.server import GatewayServer, ServingThread
from modelfleet.registry import apply_fleet, create_key
from modelfleet.runtime import LocalBackend
from modelfleet.store import open_store
from modelfleet.telemetry.spool import SUFFIX, Spool
from modelfleet.telemetry.writer import read_rollups
from tests.gateway.conftest import FLEET, infer_body, wait_for
from tests.netfaults import TcpProxy

pytestmark = pytest.mark.postgres

UNLIMITED = Quota(rate=100_000, burst=100_000, max_in_flight=1000)
QUOTAS = {tier: UNLIMITED for tier in ("free", "standard", "premium", "enterprise")}


@dataclass
class Fleet:
    url: str  # the store, directly
    proxy: TcpProxy  # the store, through a network the test can cut
    proxied_url: str
    keys: dict[str, str]
    spool: Path


@pytest.fixture
def fleet(postgres_url: str, tmp_path: Path, digits_models: Path) -> Iterator[Fleet]:
    for name in ("v1.joblib", "v2.joblib", "reference.npz"):
        (tmp_path / name).write_bytes((digits_models / name).read_bytes())
    (tmp_path / "fleet.yaml").write_text(FLEET)
    store = open_store(postgres_url)
    now = SystemClock().now()
    apply_fleet(store, load_fleet([tmp_path / "fleet.yaml"]), actor="test", now=now)
    with store.begin() as conn:
        keys = {t: create_key(conn, t, actor="test", now=now).plaintext for t in ("acme", "bolt")}
    store.close()
    url = make_url(postgres_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        yield Fleet(postgres_url, proxy, proxied, keys, tmp_path / "spool")
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


def serve(fleet: Fleet, *, flush_s: float) -> ServingThread:
    clock = SystemClock()
    settings = GatewaySettings(region="eu-west", tier_quotas=QUOTAS)
    gateway = Gateway(LocalBackend(), LocalQuotas(), clock, settings)
    app = GatewayServer(
        gateway,
        open_store(fleet.proxied_url),
        clock,
        refresh_s=0.2,
        flush_s=flush_s,
        spool=Spool(fleet.spool),
    )
    serving = ServingThread(app)
    serving.start()
    return serving


def metric(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def stored_requests(url: str) -> dict[str, int]:
    store = open_store(url)
    now = SystemClock().now()
    with store.begin() as conn:
        merged = read_rollups(conn, since=now - timedelta(hours=1), until=now + timedelta(hours=1))
    store.close()
    totals: Counter[str] = Counter()
    for key, rollup in merged.items():
        totals[key.tenant] += rollup.requests
    return dict(totals)


def spooled_files(root: Path) -> list[Path]:
    return [p for p in root.rglob(f"*{SUFFIX}")] if root.exists() else []


class Load:
    """Client threads sending requests until stopped, counting what each tenant was answered."""

    def __init__(self, url: str, keys: dict[str, str], tenants: list[str]) -> None:
        self.url, self.keys, self.tenants = url, keys, tenants
        self.sent: Counter[str] = Counter()
        self.answers: Counter[int] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(t,)) for t in tenants]
        self._rows = load_digits().data.astype(np.float32)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _run(self, tenant: str) -> None:
        headers = {"Authorization": f"Bearer {self.keys[tenant]}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=10) as client:
            i = 0
            while not self._stop.is_set():
                rows = self._rows[i % 1000 : i % 1000 + 1 + i % 3]
                status = client.post("/v2/models/digits/infer", json=infer_body(rows)).status_code
                with self._lock:
                    self.sent[tenant] += 1
                    self.answers[status] += 1
                i += 1
                time.sleep(0.01)


def test_cutting_the_store_for_30_s_loses_no_request_and_no_telemetry(
    fleet: Fleet, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="modelfleet.gateway.server")
    serving = serve(fleet, flush_s=0.5)
    url = serving.url
    try:
        with Load(url, fleet.keys, ["acme", "acme", "bolt"]) as load:
            time.sleep(1)
            fleet.proxy.cut()
            wait_for(lambda: metric(url, "modelfleet_store_reachable") == 0, timeout=5)
            cut_at = time.monotonic()
            wait_for(lambda: metric(url, "modelfleet_telemetry_spooled_batches") >= 3, timeout=10)
            assert spooled_files(fleet.spool)  # on disk, not in memory
            assert httpx.get(f"{url}/v2/health/ready").status_code == 200
            time.sleep(max(0.0, 30 - (time.monotonic() - cut_at)))
            assert metric(url, "modelfleet_store_reachable") == 0
            assert httpx.get(f"{url}/v2/health/ready").json() == {"ready": True}
            waiting = metric(url, "modelfleet_telemetry_spooled_batches")
            assert waiting >= 30  # a batch every half second

            fleet.proxy.restore()
            wait_for(lambda: metric(url, "modelfleet_store_reachable") == 1, timeout=10)
            wait_for(lambda: metric(url, "modelfleet_telemetry_spooled_batches") == 0, timeout=20)
            assert metric(url, "modelfleet_telemetry_batches_written_back_total") >= waiting
            time.sleep(0.5)
    finally:
        serving.stop(timeout=30)
    assert not serving.thread.is_alive()

    assert set(load.answers) == {200}, load.answers
    assert load.sent["bolt"] > 100 and load.sent["acme"] > 200
    assert stored_requests(fleet.url) == dict(load.sent)
    assert spooled_files(fleet.spool) == []
    outages = [r for r in caplog.records if r.getMessage().startswith("store unreachable")]
    assert len(outages) == 1  # once per outage, not once per attempt


def test_telemetry_spooled_at_shutdown_is_written_back_once_by_the_next_gateway(
    fleet: Fleet,
) -> None:
    first = serve(fleet, flush_s=3600)  # nothing flushes before the shutdown
    with httpx.Client(base_url=first.url, timeout=10) as client:
        rows = load_digits().data.astype(np.float32)[:2]
        for tenant, n in (("acme", 7), ("bolt", 4)):
            headers = {"Authorization": f"Bearer {fleet.keys[tenant]}"}
            for _ in range(n):
                answer = client.post(
                    "/v2/models/digits/infer", json=infer_body(rows), headers=headers
                )
                assert answer.status_code == 200
    fleet.proxy.cut()
    first.stop(timeout=30)
    assert not first.thread.is_alive()
    assert len(spooled_files(fleet.spool)) == 1
    assert stored_requests(fleet.url) == {}

    fleet.proxy.restore()
    second = serve(fleet, flush_s=3600)
    try:
        assert second.flush()
        assert stored_requests(fleet.url) == {"acme": 7, "bolt": 4}
        assert second.flush()
        assert metric(second.url, "modelfleet_telemetry_batches_written_back_total") == 1
    finally:
        second.stop(timeout=30)
    assert stored_requests(fleet.url) == {"acme": 7, "bolt": 4}
    assert spooled_files(fleet.spool) == []
    assert list(fleet.spool.iterdir()) == []
