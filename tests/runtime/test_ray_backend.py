"""The example fleet served through the gateway with its replicas on a Ray cluster of two nodes.

One local cluster (`ray.cluster_utils.Cluster`: a head and a second node, each a raylet of its
own) and one real gateway (uvicorn, real HTTP) with a `RayBackend` serve the tests of this
module, which run in order: the canary rollout, which moves the fleet to v2, comes last.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelfleet.clock import VirtualClock
from modelfleet.config import load_fleet
from modelfleet.config.schema import ReplicaAutoscaling
from modelfleet.control import ControlLoop
from modelfleet.gateway.app import Gateway, GatewaySettings
from modelfleet.gateway.quotas import LocalQuotas
from modelfleet.gateway.routing import load_route_table, version_spec
from modelfleet.gateway.server import GatewayServer, ServingThread
from modelfleet.registry import apply_fleet, create_key, load_state
from modelfleet.registry.replicas import ReplicaTarget, set_replica_target
from modelfleet.rollouts import RolloutController, latest_rollout
from modelfleet.runtime import VersionRef, load_model
from modelfleet.sim.capacity import run_capacity_drill
from modelfleet.sim.rollout import RolloutDrill, rounds_until
from modelfleet.store import Store, open_store
from modelfleet.telemetry.writer import read_rollups
from tests.gateway.conftest import _free_port, infer_body
from tests.gateway.test_up import _cli

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")
from ray.cluster_utils import Cluster  # noqa: E402
from ray.util.state import list_actors  # noqa: E402

from modelfleet.runtime.ray import RayBackend, app_name  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::ResourceWarning")

MODEL = "product-recognizer"
NODE_CPUS = 4  # logical CPUs: Ray schedules by them; the example's replicas ask for 1 each


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A head node and one worker node, each with its own raylet and object store."""
    # Ray starts its workers at nice 15 by default, which on a machine shared with the other
    # tests hands the replicas' CPU to everything else.
    os.environ.setdefault("RAY_worker_niceness", "0")
    nodes = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": NODE_CPUS, "object_store_memory": 100 * 2**20},
    )
    nodes.add_node(num_cpus=NODE_CPUS, object_store_memory=100 * 2**20)
    nodes.wait_for_nodes()
    ray.init(address=nodes.address, namespace="modelfleet", log_to_driver=False)
    yield nodes
    serve.shutdown()
    ray.shutdown()
    nodes.shutdown()


@dataclass
class RayFleet:
    store: Store
    clock: VirtualClock
    serving: ServingThread
    backend: RayBackend
    keys: list[str]
    rows: np.ndarray
    directory: Path

    def apply(self, edit: Callable[[str], str] = lambda text: text) -> None:
        path = self.directory / "fleet.yaml"
        path.write_text(edit(path.read_text()))
        apply_fleet(self.store, load_fleet([path]), actor="test", now=self.clock.now())
        self.serving.refresh()

    def infer(self, client: httpx.Client, rows: np.ndarray, key: str) -> httpx.Response:
        body = {
            "inputs": [
                {
                    "name": "pixels",
                    "shape": list(rows.shape),
                    "datatype": "FP32",
                    "data": rows.ravel().tolist(),
                }
            ]
        }
        return client.post(
            f"{self.serving.url}/v2/models/{MODEL}/infer",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
        )


def _replicas(version: str) -> list[Any]:
    name = f"ServeReplica:{app_name(VersionRef(MODEL, version))}:"
    return [
        a
        for a in list_actors(filters=[("state", "=", "ALIVE")], detail=True)
        if a.class_name.startswith(name)
    ]


def _requests_stored(fleet: RayFleet) -> int:
    """Every request the gateway answered, as its rollups in the store say, after a flush."""
    assert fleet.serving.flush()
    with fleet.store.begin() as conn:
        rollups = read_rollups(
            conn,
            since=fleet.clock.now() - timedelta(hours=1),
            until=fleet.clock.now() + timedelta(hours=1),
        )
    return sum(r.requests for r in rollups.values())


def _wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _example_copy(trained_example: Path, directory: Path, extra: str = "") -> Path:
    directory.mkdir()
    for name in ("fleet.yaml", "v4.py"):
        (directory / name).write_text((trained_example / name).read_text())
    (directory / "artifacts").symlink_to(trained_example / "artifacts")
    if extra:
        with (directory / "fleet.yaml").open("a") as out:
            out.write(extra)
    return directory


RESOURCES = "  resources: {cpus: 0.5, memory_gib: 0.25}\n"


@pytest.fixture(scope="module")
def fleet(
    cluster: Cluster, trained_example: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RayFleet]:
    """The example fleet, v1 declaring what each of its replicas reserves, served on Ray."""
    workdir = tmp_path_factory.mktemp("ray-fleet")
    clock = VirtualClock(datetime(2026, 11, 2, 9, 30, tzinfo=UTC))
    directory = _example_copy(trained_example, workdir / "retail-vision")
    path = directory / "fleet.yaml"
    notes = "  notes: Baseline, logistic regression on standardized pixels.\n"
    assert notes in path.read_text()
    path.write_text(path.read_text().replace(notes, notes + RESOURCES))
    store = open_store(f"sqlite:///{workdir / 'fleet.db'}")
    apply_fleet(store, load_fleet([path]), actor="test", now=clock.now())
    with store.begin() as conn:
        keys = [
            create_key(conn, tenant, actor="test", now=clock.now()).plaintext
            for tenant in ("acme-grocers", "bayside-market")
        ]
    backend = RayBackend(undeploy_grace_s=0.5)
    gateway = Gateway(backend, LocalQuotas(), clock, GatewaySettings(region="eu-west", replicas=2))
    server = GatewayServer(
        gateway, open_store(f"sqlite:///{workdir / 'fleet.db'}"), clock, flush_s=3600
    )
    serving = ServingThread(server)
    serving.start()
    with np.load(directory / "artifacts" / "reference.npz") as data:
        rows = np.asarray(data["pixels"], dtype=np.float32)
    yield RayFleet(store, clock, serving, backend, keys, rows, directory)
    serving.stop()
    store.close()
    for name in list(serve.status().applications):
        serve.delete(name)


def test_the_example_fleet_is_served_through_the_gateway_by_replicas_on_two_nodes(
    fleet: RayFleet, trained_example: Path
) -> None:
    with httpx.Client(timeout=30) as client:
        answered = fleet.infer(client, fleet.rows[:40], fleet.keys[0])
    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert body["model_version"] == "v1"
    classes = next(o for o in body["outputs"] if o["name"] == "class")["data"]
    # The replicas on the cluster answer exactly what the artifact answers loaded here.
    route = fleet.serving.app.gateway.table.route("acme-grocers", MODEL)
    assert route is not None
    local = load_model(
        "sklearn",
        str(trained_example / "artifacts" / "v1.joblib"),
        route.version.sha256,
        route.version.features,
        route.version.labels,
    ).predict({"pixels": fleet.rows[:40]})
    assert classes == local.predictions.tolist()
    # Two replicas, as the gateway was told, spread over both nodes of the cluster.
    _wait_for(lambda: len(_replicas("v1")) == 2)
    assert len({a.node_id for a in _replicas("v1")}) == 2
    # Each reserves what fleet.yaml declares for the version (RESOURCES).
    assert {a.required_resources["CPU"] for a in _replicas("v1")} == {0.5}
    assert {a.required_resources["memory"] for a in _replicas("v1")} == {0.25 * 2**30}
    assert fleet.backend.health(VersionRef(MODEL, "v1")).replicas == 2
    with httpx.Client(timeout=10) as client:
        ready = client.get(
            f"{fleet.serving.url}/v2/models/{MODEL}/ready",
            headers={"Authorization": f"Bearer {fleet.keys[0]}"},
        )
    assert ready.status_code == 200, ready.text


def test_the_capacity_controllers_replica_counts_scale_ray_without_restarting_replicas(
    fleet: RayFleet, trained_example: Path, tmp_path: Path
) -> None:
    v1 = VersionRef(MODEL, "v1")
    _wait_for(lambda: len(_replicas("v1")) == 2)
    before = {a.pid for a in _replicas("v1")}
    # The real capacity controller, through a load spike: what it asks for is what Ray runs.
    drill = run_capacity_drill(trained_example, tmp_path / "drill", minutes=6, spike_from=3)
    assert drill.timeline[-1].replicas > 2
    asked = drill.timeline[-1].replicas
    with fleet.store.begin() as conn:
        set_replica_target(
            conn,
            MODEL,
            "v1",
            ReplicaTarget(replicas=asked, restarts=0),
            actor="capacity",
            action="scale",
            now=fleet.clock.now(),
        )
    fleet.serving.refresh()
    _wait_for(lambda: len(_replicas("v1")) == asked)
    assert before <= {a.pid for a in _replicas("v1")}  # the replicas running kept running
    _wait_for(lambda: fleet.backend.health(v1).replicas == asked)  # Serve says RUNNING
    with httpx.Client(timeout=30) as client:
        assert fleet.infer(client, fleet.rows[:8], fleet.keys[0]).status_code == 200
    with fleet.store.begin() as conn:
        set_replica_target(
            conn,
            MODEL,
            "v1",
            ReplicaTarget(replicas=2, restarts=0),
            actor="capacity",
            action="scale",
            now=fleet.clock.now(),
        )
    fleet.serving.refresh()
    _wait_for(lambda: len(_replicas("v1")) == 2)


def test_a_replica_killed_under_load_loses_no_request_and_no_telemetry(fleet: RayFleet) -> None:
    _wait_for(lambda: len(_replicas("v1")) == 2)
    before = _requests_stored(fleet)
    codes: Counter[int] = Counter()
    stop = threading.Event()
    lock = threading.Lock()

    def client_thread(n: int) -> None:
        with httpx.Client(timeout=60) as client:
            i = n
            while not stop.is_set():
                rows = fleet.rows[i % len(fleet.rows) : i % len(fleet.rows) + 1]
                code = fleet.infer(client, rows, fleet.keys[0]).status_code
                with lock:
                    codes[code] += 1
                i += 7

    threads = [threading.Thread(target=client_thread, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)
    victim = _replicas("v1")[0]
    os.kill(victim.pid, signal.SIGKILL)
    time.sleep(4.0)
    stop.set()
    for thread in threads:
        thread.join()
    assert codes[200] > 100
    assert set(codes) == {200}, codes
    # Serve replaced the dead replica.
    _wait_for(
        lambda: len(_replicas("v1")) == 2 and victim.pid not in {a.pid for a in _replicas("v1")}
    )
    # Every answered request is in the rollups.
    assert _requests_stored(fleet) == before + codes[200]


def test_a_deployment_can_hand_its_replicas_to_ray_serves_autoscaler(
    fleet: RayFleet, tmp_path: Path
) -> None:
    # What fleet.yaml declares reaches the versions' specs in the route table...
    path = fleet.directory.parent / "autoscaled.yaml"
    marker = "kind: Deployment\nmetadata:\n  name: product-recognizer\nspec:\n"
    text = (fleet.directory / "fleet.yaml").read_text()
    assert marker in text
    bounds = "  autoscaling: {min_replicas: 1, max_replicas: 3, target_ongoing_requests: 1}\n"
    path.write_text(text.replace(marker, marker + bounds))
    (fleet.directory.parent / "artifacts").symlink_to(fleet.directory / "artifacts")
    (fleet.directory.parent / "v4.py").write_text((fleet.directory / "v4.py").read_text())
    store = open_store(f"sqlite:///{tmp_path / 'autoscaled.db'}")
    apply_fleet(store, load_fleet([path]), actor="test", now=fleet.clock.now())
    with store.begin() as conn:
        v3 = version_spec(
            load_state(conn),
            MODEL,
            "v3",
            ReplicaAutoscaling.model_validate(
                {"min_replicas": 1, "max_replicas": 3, "target_ongoing_requests": 1}
            ),
        )
        table = load_route_table(conn)
    store.close()
    (spec,) = table.versions().values()
    assert spec.autoscaling == ReplicaAutoscaling(
        min_replicas=1, max_replicas=3, target_ongoing_requests=1
    )
    # ... and Ray Serve gets them as its autoscaling config; the gateway's counts don't apply.
    assert v3 is not None
    fleet.backend.deploy(v3, 1)
    try:
        details = serve.context._get_global_client().get_serve_details()
        (deployment,) = details["applications"][app_name(v3.ref)]["deployments"].values()
        config = deployment["deployment_config"]["autoscaling_config"]
        assert (config["min_replicas"], config["max_replicas"]) == (1, 3)
        assert config["target_ongoing_requests"] == 1
        fleet.backend.scale(v3.ref, 3)  # Ray Serve sizes it, not the gateway
        time.sleep(1.0)
        assert len(_replicas("v3")) == 1
    finally:
        fleet.backend.undeploy(v3.ref)
    _wait_for(lambda: app_name(v3.ref) not in serve.status().applications)


def test_modelfleet_up_joins_the_cluster_and_serves_the_replicas_already_running_there(
    fleet: RayFleet, cluster: Cluster, tmp_path: Path
) -> None:
    """A second gateway, a real `modelfleet up --backend ray --ray-address`, on a store of its
    own with the same fleet: it serves through the replicas the first gateway deployed."""
    env = {**os.environ, "MODELFLEET_HOME": str(tmp_path / "home"), "MODELFLEET_ACTOR": "test"}
    for name in ("MODELFLEET_DATABASE_URL", "MODELFLEET_BACKEND", "MODELFLEET_RAY_ADDRESS"):
        env.pop(name, None)
    _cli(env, "apply", "-f", str(fleet.directory / "fleet.yaml"))
    key = re.search(r"mf_\S+", _cli(env, "keys", "create", "acme-grocers"))
    assert key is not None
    running = {a.pid for a in _replicas("v1")}
    port = _free_port()
    log = (tmp_path / "up.log").open("w")
    up = subprocess.Popen(
        [sys.executable, "-m", "modelfleet", "up", "--port", str(port), "--no-control"]
        + ["--backend", "ray", "--ray-address", cluster.address],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_for(lambda: _ready(url) or up.poll() is not None, timeout=90)
        assert up.poll() is None, (tmp_path / "up.log").read_text()
        with httpx.Client(timeout=30) as client:
            answered = client.post(
                f"{url}/v2/models/{MODEL}/infer",
                json=infer_body(fleet.rows[:3]),
                headers={"Authorization": f"Bearer {key.group(0)}"},
            )
        assert answered.status_code == 200, answered.text
        assert {a.pid for a in _replicas("v1")} == running  # joined, not redeployed
    finally:
        up.send_signal(signal.SIGTERM)
        code = up.wait(60)
        log.close()
    assert code == 0, (tmp_path / "up.log").read_text()
    assert "model replicas run on the Ray cluster at" in (tmp_path / "up.log").read_text()
    # The first gateway still serves: leaving, the second deleted nothing.
    with httpx.Client(timeout=30) as client:
        assert fleet.infer(client, fleet.rows[:2], fleet.keys[0]).status_code == 200


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_a_canary_rollout_on_ray_is_promoted_step_by_step_as_on_the_local_backend(
    fleet: RayFleet,
) -> None:
    loop = ControlLoop([RolloutController(fleet.store)], fleet.clock)
    drill = RolloutDrill(
        fleet.serving, fleet.clock, loop, model=MODEL, keys=fleet.keys, rows=fleet.rows
    )
    # Judged on errors only, as the local blue-green test is: on this 2-core machine, shared
    # with the other tests, the Ray cluster's processes and the gateway, a canary of single
    # requests queues behind the batched stable version; the latency analysis has its own tests.
    fleet.apply(
        lambda text: text.replace("  version: v1\n", "  version: v2\n").replace(
            "critical: [error_rate, latency]", "critical: [error_rate]"
        )
    )

    def state() -> str:
        with fleet.store.begin() as conn:
            found = latest_rollout(conn, MODEL)
        assert found is not None
        return found.state

    rounds = rounds_until(
        drill,
        lambda _: state() in ("promoted", "rolled_back", "refused"),
        requests=300,
        advance=timedelta(seconds=30),
        limit=40,
    )
    assert state() == "promoted"
    assert sum(r.failed for r in rounds) == 0
    shares = [r.answered["v2"] / max(1, sum(r.answered.values())) for r in rounds]
    assert shares[0] < 0.2 and shares[-2] == 1.0
    # The stable version's application is deleted once no route uses it.
    _wait_for(lambda: app_name(VersionRef(MODEL, "v1")) not in serve.status().applications)
