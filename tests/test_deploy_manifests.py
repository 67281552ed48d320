"""The Kubernetes manifests in deploy/kubernetes/ fit the gateway they deploy.

No cluster here: each claim a manifest makes about modelfleet is checked against modelfleet
itself. The probes ask paths a real gateway answers 200 on, at the port the command listens
on; the command parses as `modelfleet up`; every variable set is one settings.py reads; the
grace period outlasts a graceful shutdown.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.main import get_command
from typer.testing import CliRunner

from modelfleet.cli import app
from modelfleet.clock import SystemClock
from modelfleet.gateway.server import ServingThread, _uvicorn_config
from modelfleet.settings import Settings
from modelfleet.web.app import build_app

MANIFESTS = Path(__file__).resolve().parents[1] / "deploy" / "kubernetes"
API_VERSIONS = {
    "Kustomization": "kustomize.config.k8s.io/v1beta1",
    "ConfigMap": "v1",
    "Secret": "v1",
    "Deployment": "apps/v1",
    "Service": "v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
}
Manifest = dict[str, Any]


def _manifests() -> dict[str, Manifest]:
    """Every manifest by kind (one of each kind here), each file holding one document."""
    found: dict[str, Manifest] = {}
    for path in sorted(MANIFESTS.glob("*.yaml")):
        docs = list(yaml.safe_load_all(path.read_text()))
        assert len(docs) == 1 and isinstance(docs[0], dict), path.name
        found[docs[0]["kind"]] = docs[0] | {"_file": path.name}
    return found


@pytest.fixture(scope="module")
def manifests() -> dict[str, Manifest]:
    return _manifests()


@pytest.fixture(scope="module")
def container(manifests: dict[str, Manifest]) -> Manifest:
    containers = manifests["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    found: Manifest = containers[0]
    return found


def _probes(container: Manifest) -> dict[str, Manifest]:
    return {
        kind: container[kind]["httpGet"]
        for kind in ("startupProbe", "readinessProbe", "livenessProbe")
    }


def _port(container: Manifest, port: int | str) -> int:
    """A container port by number or by name."""
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container["ports"] if p.get("name") == port]
    return int(number)


def test_each_manifest_is_one_of_the_expected_kinds_at_its_api_version(
    manifests: dict[str, Manifest],
) -> None:
    assert {kind: m["apiVersion"] for kind, m in manifests.items()} == API_VERSIONS


def test_the_kustomization_lists_every_other_manifest(manifests: dict[str, Manifest]) -> None:
    listed = manifests["Kustomization"]["resources"]
    files = {m["_file"] for kind, m in manifests.items() if kind != "Kustomization"}
    assert sorted(listed) == sorted(files)
    (image,) = manifests["Kustomization"]["images"]
    (container,) = manifests["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert image["name"] == container["image"]  # so kustomize replaces the placeholder


def test_the_objects_refer_to_each_other_by_their_names(
    manifests: dict[str, Manifest], container: Manifest
) -> None:
    deployment = manifests["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert manifests["Service"]["spec"]["selector"].items() <= pod_labels.items()
    (service_port,) = manifests["Service"]["spec"]["ports"]
    assert _port(container, service_port["targetPort"]) == 8080
    target = manifests["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        "apps/v1",
        "Deployment",
        deployment["metadata"]["name"],
    )
    sources = {
        ("configMapRef", manifests["ConfigMap"]["metadata"]["name"]),
        ("secretRef", manifests["Secret"]["metadata"]["name"]),
    }
    assert {(k, ref["name"]) for source in container["envFrom"] for k, ref in source.items()} == (
        sources
    )
    assert container["resources"]["requests"]["cpu"]  # the HPA's utilisation is against this


def test_the_command_is_modelfleet_up_listening_on_the_probed_port(container: Manifest) -> None:
    program, command, *options = container["command"]
    assert (program, command) == ("modelfleet", "up")
    up = get_command(app).commands["up"]  # type: ignore[attr-defined]
    params = up.make_context("up", list(options)).params  # refuses what `up` does not take
    assert params["host"] == "0.0.0.0"  # every interface: the kubelet probes the pod's IP
    assert {_port(container, p["port"]) for p in _probes(container).values()} == {params["port"]}
    shown = CliRunner().invoke(app, ["up", "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0
    assert all(o in shown.output for o in options if o.startswith("--"))


def test_the_grace_period_outlasts_pre_stop_and_a_graceful_shutdown(
    manifests: dict[str, Manifest], container: Manifest
) -> None:
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    program, seconds = container["lifecycle"]["preStop"]["exec"]["command"]
    assert program == "sleep"
    graceful = _uvicorn_config("info").timeout_graceful_shutdown
    assert graceful is not None
    # A few seconds more for the last telemetry flush, after the requests in flight finish.
    assert pod["terminationGracePeriodSeconds"] >= float(seconds) + graceful + 5


def _env(manifests: dict[str, Manifest], container: Manifest) -> dict[str, str]:
    values = dict(manifests["ConfigMap"]["data"])
    values.update(manifests["Secret"]["stringData"])
    values.update({e["name"]: e.get("value", "") for e in container.get("env", [])})
    return values


def test_every_variable_set_is_one_the_settings_read(
    manifests: dict[str, Manifest], container: Manifest
) -> None:
    read = set(re.findall(r'"(MODELFLEET_[A-Z_]+)"', inspect.getsource(Settings.from_env)))
    assert "MODELFLEET_DATABASE_URL" in read and "MODELFLEET_SECRET_" in read
    set_here = _env(manifests, container)
    unread = [
        name for name in set_here if name not in read and not name.startswith("MODELFLEET_SECRET_")
    ]
    assert not unread
    settings = Settings.from_env(set_here)  # and their values are ones the settings accept
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.redis_url and settings.admin_token_sha256


def test_home_and_spool_are_on_writable_volumes(
    manifests: dict[str, Manifest], container: Manifest
) -> None:
    settings = Settings.from_env(_env(manifests, container))
    volumes = {v["name"]: v for v in manifests["Deployment"]["spec"]["template"]["spec"]["volumes"]}
    mounts = {Path(m["mountPath"]): volumes[m["name"]] for m in container["volumeMounts"]}
    assert settings.spool_dir is not None
    for path in (settings.home, settings.spool_dir):
        assert "emptyDir" in mounts[path], path


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[str]:
    """What `modelfleet up` serves, on its own empty store."""
    fleet = build_app(
        Settings.from_env({"MODELFLEET_HOME": str(tmp_path)}), SystemClock(), refresh_s=0.1
    )
    thread = ServingThread(fleet.gateway, asgi=fleet)
    url = thread.start()
    try:
        yield url
    finally:
        thread.stop(timeout=30)


def test_a_real_gateway_answers_200_on_every_probe_path(serving: str, container: Manifest) -> None:
    for kind, probe in _probes(container).items():
        assert probe.get("scheme", "HTTP") == "HTTP"
        assert httpx.get(serving + probe["path"], timeout=5).status_code == 200, kind
