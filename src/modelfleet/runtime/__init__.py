"""The model runtime of the data plane: formats that load versions, backends that serve them.

`load_model` turns a registered artifact into a `Model`; a `Backend` (`LocalBackend`, or
`modelfleet.runtime.ray.RayBackend` on a Ray cluster) deploys versions on replicas and answers
`infer`; `MicroBatcher` coalesces concurrent requests into batches in front of it.
"""

from modelfleet.runtime.backend import Backend, Health, VersionRef, VersionSpec
from modelfleet.runtime.batching import MicroBatcher
from modelfleet.runtime.loader import load_model
from modelfleet.runtime.local import LocalBackend
from modelfleet.runtime.model import Array, Batch, Model, Outputs


def open_backend(name: str, ray_address: str | None = None) -> Backend:
    """The backend a gateway serves with: "local", or "ray" (Ray is imported only then)."""
    if name == "local":
        return LocalBackend()
    if name == "ray":
        from modelfleet.runtime.ray import RayBackend

        return RayBackend(ray_address)
    raise ValueError(f"unknown backend {name!r}; known: local, ray")


__all__ = [
    "Array",
    "Backend",
    "Batch",
    "Health",
    "LocalBackend",
    "MicroBatcher",
    "Model",
    "Outputs",
    "VersionRef",
    "VersionSpec",
    "load_model",
    "open_backend",
]
