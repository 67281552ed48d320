"""Blue-green, shadow, a slow canary, sticky splits and pinned tenants, through the real gateway."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import httpx
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from modelfleet.gateway.routing import BUCKETS, Route, bucket
from modelfleet.registry.splits import TrafficSplit, read_splits, serving_version, write_split
from modelfleet.rollouts import start_rollout
from modelfleet.runtime import VersionRef, VersionSpec
from modelfleet.sim.rollout import with_blank_frames
from modelfleet.telemetry.writer import read_rollups
from tests.rollouts.conftest import DEPLOYMENT, MODEL, Fleet

# Versions that behave on the evaluation images (so they pass the gate) and badly in production.
SLOW = """
import time
from pathlib import Path
import joblib
_V1 = joblib.load(Path(__file__).parent / "artifacts" / "v1.joblib")
def predict(batch):
    time.sleep(0.010)  # a new feature extractor: three times the stable version's latency
    return _V1.predict_proba(batch["pixels"])
"""
HANGS_ON_BLANK = """
import time
from pathlib import Path
import joblib
_V1 = joblib.load(Path(__file__).parent / "artifacts" / "v1.joblib")
def predict(batch):
    if (batch["pixels"].max(axis=1) <= 0).any():
        time.sleep(1.0)  # stuck on a blank frame
    return _V1.predict_proba(batch["pixels"])
"""


def add_version(fleet: Fleet, name: str, source: str) -> None:
    (fleet.directory / f"{name}.py").write_text(source)
    version = (
        f"---\nkind: ModelVersion\nmetadata: {{name: {name}}}\n"
        f"spec: {{model: {MODEL}, format: python, artifact: '{name}.py:predict', "
        "evaluation_data: artifacts/evaluation.npz}\n"
    )
    fleet.apply(lambda text: text + version)


def start(fleet: Fleet, version: str, strategy: str | None = None) -> None:
    with fleet.store.begin() as conn:
        start_rollout(
            conn, DEPLOYMENT, version, actor="test", now=fleet.clock.now(), strategy=strategy
        )


def test_a_three_times_slower_canary_is_rolled_back_for_latency(fleet: Fleet) -> None:
    fleet.apply(lambda text: text.replace("max_latency_ratio: 3.0", "max_latency_ratio: 1.5"))
    add_version(fleet, "slow", SLOW)
    start(fleet, "slow")

    fleet.until("rolled_back", "promoted", "refused", requests=300)

    rollout = fleet.rollout()
    assert rollout.state == "rolled_back", rollout.reason
    assert rollout.percent == 5
    failing = next(e for e in fleet.timeline() if e.kind == "analysis" and e.outcome == "fail")
    assert failing.evidence is not None
    latency = next(m for m in failing.evidence["metrics"] if m["name"] == "latency")
    assert latency["verdict"] == "fail" and latency["canary"] > 2 * latency["stable"]
    assert latency["p_value"] < 0.01
    # Rolled back at the first tick whose data showed it: within one analysis interval.
    assert rollout.ended_at is not None
    assert rollout.ended_at - rollout.phase_started_at <= timedelta(minutes=1)


def test_a_blue_green_switch_under_concurrent_load_fails_no_request(fleet: Fleet) -> None:
    codes: Counter[int] = Counter()
    # Each client's answers in the order it got them: a request routed to v1 just before the
    # switch may finish after another client's first v2 answer, but no client goes back.
    versions: dict[int, list[str]] = {}
    stop = threading.Event()

    def load(key: str) -> None:
        seen = versions.setdefault(threading.get_ident(), [])
        body = {
            "inputs": [
                {
                    "name": "pixels",
                    "shape": [1, 64],
                    "datatype": "FP32",
                    "data": fleet.drill.rows[0].tolist(),
                }
            ]
        }
        with httpx.Client(base_url=fleet.serving.url, timeout=30) as client:
            while not stop.is_set():
                r = client.post(
                    f"/v2/models/{MODEL}/infer",
                    json=body,
                    headers={"Authorization": f"Bearer {key}"},
                )
                codes[r.status_code] += 1
                if r.status_code == 200:
                    seen.append(r.json()["model_version"])

    # Under this load v2's one replica queues far behind v1: judge errors only, so the test is
    # about the switch itself.
    fleet.apply(
        lambda text: text.replace(
            "critical: [error_rate, latency]", "critical: [error_rate]"
        ).replace(
            "type: canary\n    steps: [5, 25, 50, 100]\n    interval: 1m",
            "type: bluegreen\n    warmup: 30s\n    rollback_window: 3m",
        )
    )
    threads = [threading.Thread(target=load, args=(k,)) for k in fleet.drill.keys * 2]
    for t in threads:
        t.start()
    try:
        start(fleet, "v2")
        fleet.until("promoted", "rolled_back", "refused", requests=100, advance_s=60, limit=20)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()

    assert fleet.rollout().state == "promoted", fleet.rollout().reason
    kinds = [e.kind for e in fleet.timeline()]
    assert kinds[:4] == ["started", "gate", "warming", "switched"] and kinds[-1] == "promoted"
    assert set(codes) == {200}, codes  # not one request failed through the switch
    assert any("v2" in seen for seen in versions.values())
    for seen in versions.values():
        first_v2 = seen.index("v2") if "v2" in seen else len(seen)
        assert set(seen[:first_v2]) <= {"v1"} and set(seen[first_v2:]) <= {"v2"}
    backend = fleet.serving.app.gateway.backend
    assert backend.health(VersionRef(MODEL, "v1")).state == "absent"  # stopped after the window


def test_shadow_failures_never_reach_clients(fleet: Fleet) -> None:
    add_version(fleet, "hangs", HANGS_ON_BLANK)
    gateway = fleet.serving.app.gateway
    gateway.settings = replace(gateway.settings, shadow_timeout_s=0.2)
    with fleet.store.begin() as conn:  # mirror every request to each bad version in turn
        write_split(
            conn,
            TrafficSplit(DEPLOYMENT, "hangs", shadow_percent=100),
            actor="t",
            now=fleet.clock.now(),
        )
    fleet.serving.refresh()
    fleet.drill.rows = with_blank_frames(fleet.drill.rows, 0.5, seed=2)

    started = time.perf_counter()
    hanging = fleet.drill.round(200, timedelta(seconds=30))
    elapsed = time.perf_counter() - started
    with fleet.store.begin() as conn:
        write_split(
            conn,
            TrafficSplit(DEPLOYMENT, "v4", shadow_percent=100),
            actor="t",
            now=fleet.clock.now(),
        )
    fleet.serving.refresh()
    raising = fleet.drill.round(200, timedelta(seconds=30))

    for result in (hanging, raising):
        assert result.codes == {200: 200}
        assert result.answered == {"v1": 200}  # shadows' answers are never returned
    # 100 blank frames hung the shadow for 1 s each; the clients did not wait for it.
    assert elapsed < 10
    fleet.serving.flush()
    with fleet.store.begin() as conn:
        shadows = read_rollups(
            conn,
            since=fleet.clock.now() - timedelta(hours=1),
            until=fleet.clock.now() + timedelta(hours=1),
            shadow=True,
        )
        served = read_rollups(
            conn,
            since=fleet.clock.now() - timedelta(hours=1),
            until=fleet.clock.now() + timedelta(hours=1),
        )
    by_version: dict[str, Counter[str]] = {}
    for key, rollup in shadows.items():
        by_version.setdefault(key.version, Counter()).update(rollup.status)
    assert by_version["v4"]["5xx"] > 50 and by_version["v4"]["2xx"] > 50
    assert by_version["hangs"]["5xx"] > 0  # timeouts
    assert {k.version for k in served} == {"v1"}  # tenants' own figures hold no shadow traffic
    metrics = httpx.get(f"{fleet.serving.url}/metrics").text
    assert (
        'modelfleet_shadow_requests_total{model="product-recognizer",outcome="timeout",version="hangs"}'
        in metrics
    )
    assert 'outcome="error",version="v4"' in metrics


def test_a_shadow_rollout_compares_and_completes_without_serving(fleet: Fleet) -> None:
    start(fleet, "v2", strategy="shadow")
    rounds = fleet.until("completed", "refused", requests=200, advance_s=300, limit=12)

    rollout = fleet.rollout()
    assert rollout.state == "completed" and rollout.reason.startswith("shadow passed"), (
        rollout.reason
    )
    assert all(set(r.answered) == {"v1"} for r in rounds)
    ended = fleet.timeline()[-1]
    assert ended.evidence is not None
    agreement = next(m for m in ended.evidence["metrics"] if m["name"] == "agreement")
    assert agreement["canary"] > 0.9
    with fleet.store.begin() as conn:
        assert serving_version(conn, DEPLOYMENT) == "v1"


def test_sticky_assignment_keeps_each_camera_on_one_side(fleet: Fleet) -> None:
    with fleet.store.begin() as conn:
        write_split(
            conn,
            TrafficSplit(DEPLOYMENT, "v2", canary_percent=50, seed=7),
            actor="t",
            now=fleet.clock.now(),
        )
    fleet.serving.refresh()
    body = {
        "inputs": [
            {
                "name": "pixels",
                "shape": [1, 64],
                "datatype": "FP32",
                "data": fleet.drill.rows[0].tolist(),
            }
        ]
    }
    seen: dict[str, set[str]] = {}
    with httpx.Client(base_url=fleet.serving.url, timeout=30) as client:
        for round_ in range(3):
            for camera in range(40):
                r = client.post(
                    f"/v2/models/{MODEL}/infer",
                    json=body,
                    headers={
                        "Authorization": f"Bearer {fleet.drill.keys[round_ % 2]}",
                        "x-camera-id": f"cam-{camera}",
                    },
                )
                seen.setdefault(f"cam-{camera}", set()).add(r.json()["model_version"])
    assert all(len(versions) == 1 for versions in seen.values())
    sides = Counter(next(iter(v)) for v in seen.values())
    assert sides["v1"] > 5 and sides["v2"] > 5


@given(
    st.integers(0, 2**31), st.binary(min_size=1, max_size=40), st.floats(0, 100), st.floats(0, 100)
)
def test_a_growing_canary_only_ever_moves_requests_to_the_candidate(
    seed: int, value: bytes, low: float, high: float
) -> None:
    low, high = sorted((low, high))
    b = bucket(seed, value)
    assert 0 <= b < BUCKETS
    assert b == bucket(seed, value)  # sticky: the same value, the same bucket
    # Through the route itself: a request on the candidate's side stays there as it grows.
    stable, candidate = _spec("v1"), _spec("v2")
    route = Route("acme", "enterprise", "d", stable, canary=candidate, seed=seed)
    at_low = replace(route, canary_percent=low).assign(value)
    at_high = replace(route, canary_percent=high).assign(value)
    if at_low is candidate:
        assert at_high is candidate
    assert replace(route, canary_percent=0.0).assign(value) is stable
    assert replace(route, canary_percent=100.0).assign(value) is candidate


def _spec(version: str) -> VersionSpec:
    return VersionSpec(MODEL, version, "sklearn", "/nowhere", "0" * 64, ())


def test_a_pinned_tenant_keeps_its_own_version_through_a_rollout(fleet: Fleet) -> None:
    fleet.apply(
        lambda text: text.replace(
            "  sticky_key: x-camera-id", "  sticky_key: x-camera-id\n  pins: {bayside-market: v2}"
        )
    )
    with fleet.store.begin() as conn:
        write_split(
            conn,
            TrafficSplit(DEPLOYMENT, "v4", canary_percent=100, seed=1),
            actor="t",
            now=fleet.clock.now(),
        )
    fleet.serving.refresh()
    acme, bayside = fleet.drill.keys
    fleet.drill.keys = [bayside]
    pinned = fleet.drill.round(50, timedelta(seconds=30))
    fleet.drill.keys = [acme]
    others = fleet.drill.round(50, timedelta(seconds=30))
    assert pinned.answered == {"v2": 50}
    assert others.answered == {"v4": 50}
    with fleet.store.begin() as conn:
        assert set(read_splits(conn)) == {DEPLOYMENT}


def test_hashing_spreads_values_evenly() -> None:
    values = [f"camera-{i}".encode() for i in range(20_000)]
    share = np.mean([bucket(3, v) < 25 * (BUCKETS // 100) for v in values])
    assert 0.23 < share < 0.27
