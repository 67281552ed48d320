"""The `Backend` contract: where model versions run, on how many replicas.

A backend deploys a version from a `VersionSpec` (everything needed to load it) and is then
addressed by the version's `VersionRef`. `LocalBackend` runs versions in this process; a Ray
Serve backend runs one deployment per version. The control plane calls `deploy`, `scale` and
`undeploy` from its ticks; the gateway awaits `infer` on the hot path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from modelfleet.config.schema import Feature, ModelFormat, ReplicaAutoscaling, ReplicaResources
from modelfleet.runtime.model import Batch, Outputs


@dataclass(frozen=True)
class VersionRef:
    """A model version's name within its model, as in `/v2/models/{model}/versions/{version}`."""

    model: str
    version: str

    def __str__(self) -> str:
        return f"{self.model}/{self.version}"


@dataclass(frozen=True, eq=False)
class VersionSpec:
    """What a backend needs to load a version: its artifact, verified hash and schema.

    `artifact` is an absolute path (for `python`, `path/to/file.py:function`); `labels` is
    None for a regressor.
    """

    model: str
    version: str
    format: ModelFormat
    artifact: str
    sha256: str
    features: Sequence[Feature]
    labels: Sequence[str] | None = None
    reference_data: str | None = None  # absolute path of the version's reference .npz
    low_confidence: float = 0.5  # the model's: a prediction under it is kept for review
    resources: ReplicaResources = ReplicaResources()  # what each replica reserves (Ray)
    autoscaling: ReplicaAutoscaling | None = None  # bounds for Ray Serve's autoscaler

    @property
    def ref(self) -> VersionRef:
        return VersionRef(self.model, self.version)

    @property
    def categorical(self) -> bool:
        """Whether any input is a string (categorical) feature."""
        return any(f.dtype == "string" for f in self.features)


@dataclass(frozen=True)
class Health:
    """How a version stands on a backend.

    `loaded`: serving on `replicas` replicas. `failed`: its last deploy failed, for `reason`,
    and it serves nothing. `absent`: never deployed, or undeployed.
    """

    state: Literal["loaded", "failed", "absent"]
    replicas: int = 0
    reason: str | None = None

    @property
    def serving(self) -> bool:
        return self.state == "loaded"


class Backend(Protocol):
    """Runs model versions on replicas and answers inference for them."""

    def deploy(self, version: VersionSpec, replicas: int) -> None:
        """Load the version and serve it on `replicas` replicas; raises ModelLoadError.

        Deploying a version that is already serving replaces it only once the new load has
        succeeded; a failure leaves every serving version, that one included, as it was.
        """
        ...

    def scale(self, version: VersionRef, replicas: int) -> None:
        """Serve a deployed version on `replicas` replicas; raises NotDeployed."""
        ...

    async def infer(self, version: VersionRef, batch: Batch) -> Outputs:
        """The version's outputs for `batch`; raises NotDeployed, InvalidBatch, PredictionError."""
        ...

    def health(self, version: VersionRef) -> Health:
        """How the version stands on this backend; never raises for an unknown version."""
        ...

    def undeploy(self, version: VersionRef) -> None:
        """Stop serving the version; requests already running finish. Undeploying twice is fine."""
        ...
