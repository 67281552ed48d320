"""`RayBackend`: model versions served by Ray Serve, one application per version.

The gateway stays the one front door (auth, quotas, routing, telemetry, micro-batching); Ray
Serve only runs replicas. Each version becomes a Serve application named
`mf-<model>-<version>` holding one deployment of `VersionReplica`, and the gateway calls it
through a deployment handle once per *batch*: a Ray call costs about a millisecond, so one
per request would throw the batcher's gain away.

- **Artifacts travel with the deployment.** The gateway reads the artifact, checks its
  sha256 and ships the bytes as the replica's init argument; the replica checks them again
  and loads from memory. Nodes need modelfleet installed, not the gateway's files.
- **Several gateways share one application.** A gateway deploying a version that already
  runs on the cluster (another gateway deployed it) takes a handle to it instead of
  redeploying; `scale` sets an absolute replica count, so any gateway may apply it.
  Undeploying waits `undeploy_grace_s`, since other gateways may route to the version until
  they have read the same route change.
- **Replica counts come from the capacity controller**, set through Serve's external-scaler
  API (the same controller call as the dashboard's `POST .../deployments/{d}/scale`), which
  changes the count without restarting running replicas. A deployment that declares
  `autoscaling` is handed to Ray Serve's own autoscaler with those bounds instead.
- **A replica that dies is replaced by Serve**, and a batch that was running on it is
  retried on another replica: inference has no side effects, so a retry is safe and the
  client sees no error.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import ray
from ray import serve
from ray.exceptions import (
    ActorAlreadyExistsError,
    ActorDiedError,
    ActorUnavailableError,
    RayActorError,
    RayTaskError,
)

from modelfleet.config.schema import Feature, ReplicaAutoscaling, ReplicaResources
from modelfleet.errors import (
    ArtifactMismatch,
    ModelfleetError,
    ModelLoadError,
    NotDeployed,
    PredictionError,
    ServingError,
)
from modelfleet.runtime.backend import Health, VersionRef, VersionSpec
from modelfleet.runtime.loader import load_model_bytes, read_artifact
from modelfleet.runtime.model import Batch, Model, Outputs

log = logging.getLogger(__name__)

APP_PREFIX = "mf"
_DEPLOYMENT = "replica"
# A replica's death, not the model's failure: the batch can go to another replica.
_RETRYABLE = (ActorDiedError, ActorUnavailableError, RayActorError)


class VersionReplica:
    """One replica of a version: the model loaded from the shipped artifact bytes."""

    def __init__(
        self,
        format: str,
        artifact: str,
        data: bytes,
        sha256: str,
        features: Sequence[Feature],
        labels: Sequence[str] | None,
    ) -> None:
        self.model = load_model_bytes(format, artifact, data, sha256, features, labels)
        _warm(self.model, features)

    async def ready(self) -> bool:
        """Answered once loaded: what a gateway calls before it sends the version traffic."""
        return True

    async def predict(self, batch: Mapping[str, Any]) -> Outputs:
        # The event loop is the replica's: a model call would block it, and with it Serve's
        # health checks, so it runs on a thread like the local backend's.
        return await asyncio.to_thread(self.model.predict, batch)


# Up to 4 batches at once on a replica: one computing while the next ones arrive.
REPLICA: Any = serve.deployment(name=_DEPLOYMENT, max_ongoing_requests=4)(VersionReplica)


def join_cluster(address: str | None) -> str:
    """Join the Ray cluster at `address`, or start one on this machine when it is None; returns
    the address other processes join it by. Raises ServingError when it cannot be reached."""
    if not ray.is_initialized():
        try:
            ray.init(
                address=address or "local",
                namespace="modelfleet",
                log_to_driver=False,
                include_dashboard=False if address is None else None,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ServingError(f"cannot join the Ray cluster at {address}: {exc}") from exc
    return str(ray.get_runtime_context().gcs_address)


def start_serve() -> None:
    """Start Ray Serve on the joined cluster, or connect to it if it runs already."""
    for attempt in range(3):
        try:
            # No Serve proxies: requests reach replicas only through the gateways' handles.
            serve.start(proxy_location="Disabled")
            return
        except ActorAlreadyExistsError:
            # Another process (a sibling gateway worker) started Serve at the same moment.
            if attempt == 2:
                raise
            time.sleep(0.5)


def app_name(version: VersionRef) -> str:
    """The Serve application of a version."""
    return f"{APP_PREFIX}-{version.model}-{version.version}"


@dataclass
class _Deployed:
    spec: VersionSpec
    handle: Any  # ray.serve.handle.DeploymentHandle


class RayBackend:
    """Serves model versions on a Ray cluster; see the module docstring.

    `address`: the cluster to join (`auto`, or its GCS `host:port`); None joins the cluster
    this process already joined, or starts one on this machine.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        retries: int = 3,
        undeploy_grace_s: float = 30.0,
        health_cache_s: float = 1.0,
    ) -> None:
        join_cluster(address)
        start_serve()
        self.retries = retries
        self.undeploy_grace_s = undeploy_grace_s
        self.health_cache_s = health_cache_s
        self._lock = threading.Lock()
        self._deployed: dict[VersionRef, _Deployed] = {}
        self._failures: dict[VersionRef, str] = {}
        self._leaving: dict[VersionRef, threading.Timer] = {}
        self._status: tuple[float, Mapping[str, Any]] = (0.0, {})

    # -- control: called from the gateway's refresher thread ---------------------------------

    def deploy(self, version: VersionSpec, replicas: int) -> None:
        """Serve the version on `replicas` replicas; raises ModelLoadError.

        A version already running on the cluster with the same artifact is joined, not
        redeployed; deploying a version this backend already serves again restarts its
        replicas (what remediation's restart asks for).
        """
        _check_replicas(replicas)
        ref = version.ref
        self._cancel_leaving(ref)
        data = read_artifact(version.format, version.artifact)
        actual = hashlib.sha256(data).hexdigest()
        if actual != version.sha256.lower():
            raise ArtifactMismatch(version.artifact, version.sha256, actual)
        with self._lock:
            restart = ref in self._deployed
        name = app_name(ref)
        if not restart and self._deployed_elsewhere(name, _code_name(version)):
            handle = serve.get_app_handle(name)
        else:
            try:
                handle = serve.run(
                    _application(version, data, replicas),
                    name=name,
                    route_prefix=None,
                    external_scaler_enabled=version.autoscaling is None,
                )
            except Exception as exc:  # Serve reports a replica's failure to start as its own
                reason = _first_line(exc)
                with self._lock:
                    if ref not in self._deployed:
                        self._failures[ref] = reason
                raise ModelLoadError(version.artifact, reason) from exc
        # A new handle learns of the replicas asynchronously, and the first requests would
        # wait for it (about 0.1 s): learn now, before any route sends the version traffic.
        handle.ready.remote().result(timeout_s=120)
        with self._lock:
            self._deployed[ref] = _Deployed(version, handle)
            self._failures.pop(ref, None)
        self._status = (0.0, {})

    def scale(self, version: VersionRef, replicas: int) -> None:
        """Set the version's replica count; Serve starts or stops replicas to match, without
        restarting those running. A version under Ray Serve's autoscaler keeps its bounds."""
        _check_replicas(replicas)
        with self._lock:
            deployed = self._deployed.get(version)
        if deployed is None:
            raise NotDeployed(version.model, version.version)
        if deployed.spec.autoscaling is not None:
            return
        from ray.serve._private.common import DeploymentID
        from ray.serve._private.constants import SERVE_CONTROLLER_NAME, SERVE_NAMESPACE

        controller = ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
        target = DeploymentID(name=_code_name(deployed.spec), app_name=app_name(version))
        ray.get(controller.update_deployment_replicas.remote(target, replicas))
        self._status = (0.0, {})

    def health(self, version: VersionRef) -> Health:
        """`loaded` with the replicas running now, `failed` with the reason, or `absent`."""
        with self._lock:
            deployed = self._deployed.get(version)
            reason = self._failures.get(version)
        if deployed is None:
            return Health("absent") if reason is None else Health("failed", reason=reason)
        app = self._statuses().get(app_name(version))
        if app is None:
            return Health("failed", reason="its Ray Serve application is gone")
        if app.status in ("DEPLOY_FAILED", "UNHEALTHY"):
            return Health("failed", reason=app.message or str(app.status))
        running = sum(d.replica_states.get("RUNNING", 0) for d in app.deployments.values())
        if running == 0:
            return Health("failed", reason=f"no replica is running ({app.status})")
        return Health("loaded", replicas=running)

    def undeploy(self, version: VersionRef) -> None:
        """Stop routing to the version now, and delete its application after the grace period
        unless it is deployed again meanwhile. Undeploying twice is fine."""
        with self._lock:
            deployed = self._deployed.pop(version, None)
            self._failures.pop(version, None)
            if deployed is None or version in self._leaving:
                return
            timer = threading.Timer(self.undeploy_grace_s, self._delete, (version,))
            timer.daemon = True
            self._leaving[version] = timer
        timer.start()

    def close(self) -> None:
        """Forget the cluster's handles; the applications keep running for other gateways."""
        with self._lock:
            self._deployed.clear()
            for timer in self._leaving.values():
                timer.cancel()
            self._leaving.clear()

    # -- data: called on the gateway's event loop --------------------------------------------

    async def infer(self, version: VersionRef, batch: Batch) -> Outputs:
        """One Ray call for the whole batch; a batch whose replica died is retried on another.

        Raises NotDeployed, and what the model raised (InvalidBatch, PredictionError).
        """
        deployed = self._deployed.get(version)
        if deployed is None:
            raise NotDeployed(version.model, version.version)
        for attempt in range(self.retries + 1):
            try:
                outputs: Outputs = await deployed.handle.predict.remote(dict(batch))
                return outputs
            except RayTaskError as exc:
                cause = exc.cause
                if isinstance(cause, ModelfleetError):
                    raise cause from None
                raise PredictionError(f"{version}: {_first_line(exc)}") from exc
            except _RETRYABLE as exc:
                if attempt == self.retries:
                    raise ServingError(
                        f"{version}: no replica answered: {_first_line(exc)}"
                    ) from exc
                log.warning("%s: a replica died mid-batch, retrying: %s", version, exc)
                await asyncio.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    # -- helpers -----------------------------------------------------------------------------

    def _statuses(self) -> Mapping[str, Any]:
        at, statuses = self._status
        if time.monotonic() - at > self.health_cache_s:
            statuses = {
                name: _Overview.of(app) for name, app in serve.status().applications.items()
            }
            self._status = (time.monotonic(), statuses)
        return statuses

    def _deployed_elsewhere(self, name: str, deployment: str, timeout_s: float = 120.0) -> bool:
        """Whether another gateway serves this artifact on the cluster already: running, or
        being deployed (then wait for it rather than deploy it a second time)."""
        deadline = time.monotonic() + timeout_s
        while True:
            self._status = (0.0, {})
            app = self._statuses().get(name)
            if app is None or deployment not in app.deployments:
                return False
            if app.status == "RUNNING":
                return True
            if app.status != "DEPLOYING" or time.monotonic() > deadline:
                return False
            time.sleep(0.2)

    def _cancel_leaving(self, version: VersionRef) -> None:
        with self._lock:
            timer = self._leaving.pop(version, None)
        if timer is not None:
            timer.cancel()

    def _delete(self, version: VersionRef) -> None:
        with self._lock:
            if self._leaving.pop(version, None) is None or version in self._deployed:
                return
        try:
            serve.delete(app_name(version), _blocking=False)
        except Exception as exc:  # the cluster may be gone; nothing else is left to do
            log.warning("could not delete %s from Ray Serve: %s", app_name(version), exc)
        self._status = (0.0, {})


@dataclass(frozen=True)
class _Overview:
    status: str
    message: str
    deployments: Mapping[str, Any]

    @classmethod
    def of(cls, app: Any) -> _Overview:
        return cls(str(app.status.value), app.message, dict(app.deployments))


def _code_name(spec: VersionSpec) -> str:
    # The deployment is named after the artifact, so a gateway can tell whether what runs on
    # the cluster is the version it means to serve.
    return f"{_DEPLOYMENT}-{spec.sha256[:12]}"


def _application(spec: VersionSpec, data: bytes, replicas: int) -> Any:
    options: dict[str, Any] = {
        "name": _code_name(spec),
        "ray_actor_options": _actor_options(spec.resources),
    }
    if spec.autoscaling is None:
        options["num_replicas"] = replicas
    else:
        options["autoscaling_config"] = _autoscaling_config(spec.autoscaling)
    return REPLICA.options(**options).bind(
        spec.format, spec.artifact, data, spec.sha256, tuple(spec.features), spec.labels
    )


def _actor_options(resources: ReplicaResources) -> dict[str, Any]:
    options: dict[str, Any] = {"num_cpus": resources.cpus, "num_gpus": resources.gpus}
    if resources.memory_gib is not None:
        options["memory"] = int(resources.memory_gib * 2**30)
    return options


def _autoscaling_config(autoscaling: ReplicaAutoscaling) -> dict[str, Any]:
    return {
        "min_replicas": autoscaling.min_replicas,
        "max_replicas": autoscaling.max_replicas,
        "target_ongoing_requests": autoscaling.target_ongoing_requests,
    }


def _check_replicas(replicas: int) -> None:
    if replicas < 1:
        raise ValueError(f"replicas must be at least 1, got {replicas}")


def _warm(model: Model, features: Sequence[Feature]) -> None:
    """Predict once on a row of zeros, so that what a model loads lazily on its first call
    (libraries' modules, caches) is loaded before the replica gets traffic, not on a
    client's request. Best effort: a model may refuse such a row, and that is fine."""
    row = {
        f.name: np.zeros((1, *f.shape), dtype=object if f.dtype == "string" else f.dtype)
        for f in features
    }
    try:
        model.predict(row)
    except Exception:  # noqa: BLE001 - the model's own business; serving decides later
        log.debug("warming a replica failed; its first request may be slower")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:500]
