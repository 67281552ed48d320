"""The kinds a fleet file may declare, as pydantic v2 models.

Every document is Kubernetes-shaped: `kind`, `metadata.name` and a `spec`. Unknown kinds
and unknown fields are errors, so a typo is refused instead of silently ignored.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, model_validator

API_VERSION: Final = "modelfleet/v1"

# DNS-label-like names: safe in URLs, file names, metric labels and table keys.
Name = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$"),
]
Tier = Literal["free", "standard", "premium", "enterprise"]
DType = Literal["bool", "int32", "int64", "float32", "float64", "string"]
ModelFormat = Literal["sklearn", "onnx", "python"]


class Strict(BaseModel):
    """Base for every fleet model: unknown fields are errors, values are not coerced loosely."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Metadata(Strict):
    name: Name
    labels: dict[str, str] = Field(default_factory=dict)


class QuotaSpec(Strict):
    """A tenant's own limits, in place of its tier's."""

    requests_per_second: Annotated[float, Field(gt=0)]
    burst: Annotated[float, Field(ge=1)]
    max_in_flight: Annotated[int, Field(ge=1)]


class TenantSpec(Strict):
    display_name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    tier: Tier
    home_region: Name
    contact_email: EmailStr
    quota: QuotaSpec | None = None


class Feature(Strict):
    """One named input of a model; `shape` excludes the batch dimension ([] is a scalar)."""

    name: Name
    dtype: DType
    shape: list[Annotated[int, Field(gt=0)]] = Field(default_factory=list)


class InputSchema(Strict):
    features: Annotated[list[Feature], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique_names(self) -> InputSchema:
        names = [f.name for f in self.features]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"feature names must be unique; repeated: {', '.join(duplicated)}")
        return self


class OutputSchema(Strict):
    """What a model returns: class labels for a classifier (index i is class i)."""

    labels: list[Annotated[str, StringConstraints(min_length=1)]] | None = None

    @model_validator(mode="after")
    def _unique_labels(self) -> OutputSchema:
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            raise ValueError("labels must be unique")
        return self


class ModelSpec(Strict):
    description: str = ""
    input: InputSchema
    output: OutputSchema = Field(default_factory=OutputSchema)


class ModelVersionSpec(Strict):
    """A trained artifact of a model. Paths are relative to the fleet file."""

    model: Name
    artifact: Annotated[str, StringConstraints(min_length=1)]
    format: ModelFormat
    reference_data: str | None = None
    evaluation_data: str | None = None
    notes: str = ""


class DeploymentSpec(Strict):
    """Which version of a model serves which tenants."""

    model: Name
    tenants: Literal["all"] | Annotated[list[Name], Field(min_length=1)]
    stable_version: Name

    @model_validator(mode="after")
    def _unique_tenants(self) -> DeploymentSpec:
        if isinstance(self.tenants, list) and len(set(self.tenants)) != len(self.tenants):
            raise ValueError("tenants must not repeat")
        return self


class _Document(Strict):
    api_version: Literal["modelfleet/v1"] = Field(default=API_VERSION, alias="apiVersion")
    metadata: Metadata

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def name(self) -> str:
        return self.metadata.name


class Tenant(_Document):
    kind: Literal["Tenant"]
    spec: TenantSpec


class Model(_Document):
    kind: Literal["Model"]
    spec: ModelSpec


class ModelVersion(_Document):
    kind: Literal["ModelVersion"]
    spec: ModelVersionSpec

    @property
    def key(self) -> tuple[str, str]:
        """A version's name is unique within its model, as in `/v2/models/{m}/versions/{v}`."""
        return (self.spec.model, self.metadata.name)


class Deployment(_Document):
    kind: Literal["Deployment"]
    spec: DeploymentSpec


Resource = Tenant | Model | ModelVersion | Deployment

KINDS: dict[str, type[Tenant] | type[Model] | type[ModelVersion] | type[Deployment]] = {
    "Tenant": Tenant,
    "Model": Model,
    "ModelVersion": ModelVersion,
    "Deployment": Deployment,
}
