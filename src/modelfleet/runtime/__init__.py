"""The model runtime of the data plane: formats that load versions, backends that serve them.

`load_model` turns a registered artifact into a `Model`; a `Backend` (here `LocalBackend`)
deploys versions on replicas and answers `infer`; `MicroBatcher` coalesces concurrent
requests into batches in front of it.
"""

from modelfleet.runtime.backend import Backend, Health, VersionRef, VersionSpec
from modelfleet.runtime.batching import MicroBatcher
from modelfleet.runtime.loader import load_model
from modelfleet.runtime.local import LocalBackend
from modelfleet.runtime.model import Array, Batch, Model, Outputs

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
]
