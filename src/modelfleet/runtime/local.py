"""`LocalBackend`: model versions loaded in this process, each with its own thread pool.

A version's replicas are the threads of its pool: `infer` hands `Model.predict` to the pool
with `loop.run_in_executor`, so the event loop never blocks on a model, and up to `replicas`
predictions of that version run at once (numpy, scikit-learn and onnxruntime release the GIL
for most of their work). Scaling swaps in a pool of the new size; requests already handed to
the old pool finish there.

The control plane may call `deploy`, `scale` and `undeploy` from another thread than the
event loop's: one lock guards the table of deployments, and `infer` submits its work to the
pool while holding it, so a pool is never shut down between being looked up and being used.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from modelfleet.errors import ModelLoadError, NotDeployed
from modelfleet.runtime.backend import Health, VersionRef, VersionSpec
from modelfleet.runtime.loader import load_model
from modelfleet.runtime.model import Batch, Model, Outputs


@dataclass(frozen=True)
class _Deployment:
    spec: VersionSpec
    model: Model
    pool: ThreadPoolExecutor
    replicas: int


class LocalBackend:
    """Serves model versions from this process; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deployments: dict[VersionRef, _Deployment] = {}
        self._failures: dict[VersionRef, str] = {}

    def deploy(self, version: VersionSpec, replicas: int) -> None:
        """Load the version and serve it on `replicas` threads; raises ModelLoadError.

        Loading happens outside the lock, so other versions keep serving meanwhile; a failure
        is remembered for `health` unless an earlier deployment of the version still serves.
        """
        _check_replicas(replicas)
        ref = version.ref
        try:
            model = load_model(
                version.format, version.artifact, version.sha256, version.features, version.labels
            )
        except ModelLoadError as exc:
            with self._lock:
                if ref not in self._deployments:
                    self._failures[ref] = exc.reason
            raise
        deployment = _Deployment(version, model, _pool(ref, replicas), replicas)
        with self._lock:
            previous = self._deployments.get(ref)
            self._deployments[ref] = deployment
            self._failures.pop(ref, None)
        if previous is not None:
            previous.pool.shutdown(wait=False)

    def scale(self, version: VersionRef, replicas: int) -> None:
        """Serve a deployed version on `replicas` threads; raises NotDeployed."""
        _check_replicas(replicas)
        with self._lock:
            current = self._deployments.get(version)
            if current is None:
                raise NotDeployed(version.model, version.version)
            if current.replicas == replicas:
                return
            scaled = _Deployment(current.spec, current.model, _pool(version, replicas), replicas)
            self._deployments[version] = scaled
        current.pool.shutdown(wait=False)

    async def infer(self, version: VersionRef, batch: Batch) -> Outputs:
        """Run the version's `predict` on one of its replicas; raises NotDeployed."""
        loop = asyncio.get_running_loop()
        with self._lock:
            deployment = self._deployments.get(version)
            if deployment is None:
                raise NotDeployed(version.model, version.version)
            pending = loop.run_in_executor(deployment.pool, deployment.model.predict, batch)
        return await pending

    def health(self, version: VersionRef) -> Health:
        """`loaded` with its replicas, `failed` with the reason, or `absent`."""
        with self._lock:
            deployment = self._deployments.get(version)
            if deployment is not None:
                return Health("loaded", replicas=deployment.replicas)
            reason = self._failures.get(version)
        return Health("absent") if reason is None else Health("failed", reason=reason)

    def undeploy(self, version: VersionRef) -> None:
        """Stop serving the version and shut its pool down; requests already running finish."""
        with self._lock:
            deployment = self._deployments.pop(version, None)
            self._failures.pop(version, None)
        if deployment is not None:
            deployment.pool.shutdown(wait=False)

    def close(self) -> None:
        """Undeploy every version and wait for their running requests to finish."""
        with self._lock:
            deployments = list(self._deployments.values())
            self._deployments.clear()
            self._failures.clear()
        for deployment in deployments:
            deployment.pool.shutdown(wait=True)


def _check_replicas(replicas: int) -> None:
    if replicas < 1:
        raise ValueError(f"replicas must be at least 1, got {replicas}")


def _pool(ref: VersionRef, replicas: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=replicas, thread_name_prefix=f"modelfleet-{ref}")
