"""The kinds a fleet file may declare, as pydantic v2 models.

Every document is Kubernetes-shaped: `kind`, `metadata.name` and a `spec`. Unknown kinds
and unknown fields are errors, so a typo is refused instead of silently ignored.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Final, Literal

from pydantic import ConfigDict, EmailStr, Field, StringConstraints, model_validator

from modelfleet.config.alerting import (
    AlertRoutingSpec,
    AlertRuleSpec,
    EscalationPolicySpec,
    OnCallScheduleSpec,
    ReceiverSpec,
    RunbookSpec,
)
from modelfleet.config.base import Duration, Name, Strict
from modelfleet.config.capacity import CapacityPolicySpec, InstanceTypeSpec
from modelfleet.config.regions import RegionSpec, RetentionPolicySpec
from modelfleet.config.sla import SLASpec

API_VERSION: Final = "modelfleet/v1"

Tier = Literal["free", "standard", "premium", "enterprise"]
DType = Literal["bool", "int32", "int64", "float32", "float64", "string"]
ModelFormat = Literal["sklearn", "onnx", "python"]


Share = Annotated[float, Field(ge=0.0, le=1.0)]
Percent = Annotated[float, Field(gt=0.0, le=100.0)]
Metric = Literal["error_rate", "latency", "confidence", "agreement"]
# What a sticky split hashes: the tenant, or the value of a request header (a user, a store).
StickyKey = Annotated[str, StringConstraints(pattern=r"^(tenant|[A-Za-z0-9-]{1,64})$")]


_CRITICAL_BY_DEFAULT: list[Metric] = ["error_rate", "latency"]


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
    # A jurisdiction (a Region's): the tenant's raw data is stored and processed only there.
    residency: Name | None = None
    # A request reaching another region's gateway: answered 307 to the home region's URL, or
    # forwarded there by the gateway.
    cross_region: Literal["redirect", "forward"] = "redirect"


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


class DriftSpec(Strict):
    """When a window's inputs or predictions count as drifted from the reference profile."""

    thresholds: Literal["fixed", "learned"] = "fixed"  # learned: reference chunks' mean + 3 sd
    psi_warning: Annotated[float, Field(gt=0)] = 0.1  # the usual bands of the PSI
    psi_alert: Annotated[float, Field(gt=0)] = 0.25
    ks: Share = 0.2  # Kolmogorov-Smirnov distance, also drifted above this
    js: Share = 0.2  # Jensen-Shannon distance (base 2)
    wasserstein: Annotated[float, Field(gt=0)] | None = None  # in the feature's units, if asked
    drifted_share: Share = 0.3  # of the features: above it, the whole input has drifted
    prediction_psi: Annotated[float, Field(gt=0)] = 0.25  # on the predicted class distribution

    @model_validator(mode="after")
    def _bands(self) -> DriftSpec:
        if self.psi_alert < self.psi_warning:
            raise ValueError("psi_alert must be at least psi_warning")
        return self


class QualitySpec(Strict):
    """Limits on the data and on the outputs, as rates over the window."""

    max_out_of_range: Share = 0.05  # of a feature's values outside the reference's range
    max_rejected: Share = 0.05  # of requests refused as malformed (4xx)
    low_confidence: Share = 0.5  # a prediction under this is low-confidence (and reviewed)
    max_low_confidence: Share = 0.2  # share of low-confidence predictions
    min_confidence: Share = 0.0  # mean confidence
    min_accuracy: Share = 0.0  # from feedback labels, once there are min_labels
    min_labels: Annotated[int, Field(ge=1)] = 50


class AnomalySpec(Strict):
    """Streaming anomaly detection on the model's metric streams (see monitors/anomaly.py)."""

    enabled: bool = True
    # Per point. A fleet judges ~10,000 points a week per stream: at 1e-6 a stream false-alarms
    # about once in two years, while real faults show p-values far below it.
    significance: Annotated[float, Field(gt=0.0, lt=0.01)] = 1e-6
    min_requests: Annotated[int, Field(ge=1)] = 10  # a minute with fewer: ratios not judged
    # Ratios over fewer requests are noisier; their deviation is shrunk by sqrt(n / this).
    full_minute_requests: Annotated[int, Field(ge=1)] = 50
    # Errors, slow answers (p99) and traffic that stops harm tenants: `severity`. More demand,
    # a slower median, less confidence and drift are worth knowing, not waking anyone for.
    severity: Literal["info", "warning", "critical"] = "critical"
    minor_severity: Literal["info", "warning", "critical"] = "warning"


class MonitoringSpec(Strict):
    """How each (tenant, version) of the model is watched: over a sliding window of rollups."""

    window: Duration = timedelta(hours=1)
    every: Duration = timedelta(minutes=1)  # how often a window is judged
    min_rows: Annotated[int, Field(ge=1)] = 200  # fewer rows in a window: not judged
    drift: DriftSpec = Field(default_factory=DriftSpec)
    quality: QualitySpec = Field(default_factory=QualitySpec)
    anomaly: AnomalySpec = Field(default_factory=AnomalySpec)


class ModelSpec(Strict):
    description: str = ""
    input: InputSchema
    output: OutputSchema = Field(default_factory=OutputSchema)
    monitoring: MonitoringSpec = Field(default_factory=lambda: MonitoringSpec())


class ReplicaResources(Strict):
    """What one replica of a version reserves on a Ray cluster: the scheduler places replicas
    only where these are free. The local backend runs replicas as threads and ignores them."""

    cpus: Annotated[float, Field(gt=0.0)] = 1.0
    gpus: Annotated[float, Field(ge=0.0)] = 0.0
    memory_gib: Annotated[float, Field(gt=0.0)] | None = None


class ModelVersionSpec(Strict):
    """A trained artifact of a model. Paths are relative to the fleet file."""

    model: Name
    artifact: Annotated[str, StringConstraints(min_length=1)]
    format: ModelFormat
    reference_data: str | None = None
    evaluation_data: str | None = None
    notes: str = ""
    resources: ReplicaResources = Field(default_factory=ReplicaResources)


class GateSpec(Strict):
    """What a candidate version must show on its evaluation set before it gets any traffic."""

    min_accuracy: Share = 0.0
    max_accuracy_drop: Share = 0.01  # below the stable version's accuracy, on the same rows
    max_recall_drop: Share = 0.05  # for every class, and every segment if declared
    segment_field: Name | None = None  # an array of the evaluation data naming each row's segment
    max_load_s: Annotated[float, Field(gt=0)] = 30.0
    max_latency_ms: Annotated[float, Field(gt=0)] = 100.0  # single-row p95


class AnalysisSpec(Strict):
    """How canary and stable are compared on the same window of real traffic."""

    min_requests: Annotated[int, Field(ge=1)] = 50  # on each side, before anything is judged
    significance: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.01
    max_error_increase: Share = 0.01  # canary's 5xx rate minus stable's
    max_latency_ratio: Annotated[float, Field(ge=1.0)] = 1.25  # canary median over stable's
    max_confidence_drop: Share = 0.05  # mean confidence, stable's minus canary's
    min_agreement: Share = 0.9  # share of shadowed requests where both predict the same
    critical: list[Metric] = Field(default_factory=lambda: _CRITICAL_BY_DEFAULT.copy())


class CanaryStrategy(Strict):
    """Weighted steps, each held for `interval` and judged against stable before the next."""

    type: Literal["canary"]
    steps: Annotated[list[Percent], Field(min_length=1)] = Field(
        default_factory=lambda: [5.0, 25.0, 50.0, 100.0]
    )
    interval: Duration = timedelta(minutes=5)
    shadow: Annotated[float, Field(ge=0.0, le=100.0)] = 0.0  # % of stable's requests mirrored
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)

    @model_validator(mode="after")
    def _rising_to_100(self) -> CanaryStrategy:
        if any(a >= b for a, b in zip(self.steps, self.steps[1:], strict=False)):
            raise ValueError("steps must rise strictly, e.g. [5, 25, 50, 100]")
        if self.steps[-1] != 100:
            raise ValueError("the last step must be 100: a canary ends with all traffic")
        if self.interval <= timedelta(0):
            raise ValueError("interval must be positive")
        return self


class BlueGreenStrategy(Strict):
    """Warm the candidate beside stable, switch all traffic at once, keep stable warm a while."""

    type: Literal["bluegreen"]
    warmup: Duration = timedelta(seconds=30)
    rollback_window: Duration = timedelta(minutes=10)
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)


class ShadowStrategy(Strict):
    """Mirror a share of requests to the candidate; its answers are compared, never returned."""

    type: Literal["shadow"]
    percent: Percent = 10.0
    duration: Duration = timedelta(minutes=30)
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)


Strategy = Annotated[
    CanaryStrategy | BlueGreenStrategy | ShadowStrategy, Field(discriminator="type")
]


class ReplicaAutoscaling(Strict):
    """Bounds handed to Ray Serve's own autoscaler, which then sizes the deployment's versions
    by requests in flight per replica instead of the capacity controller's forecast."""

    min_replicas: Annotated[int, Field(ge=1)] = 1
    max_replicas: Annotated[int, Field(ge=1)] = 4
    target_ongoing_requests: Annotated[float, Field(gt=0.0)] = 2.0

    @model_validator(mode="after")
    def _ordered(self) -> ReplicaAutoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must not exceed max_replicas")
        return self


class DeploymentSpec(Strict):
    """Which version of a model serves which tenants, and how a new version reaches them."""

    model: Name
    tenants: Literal["all"] | Annotated[list[Name], Field(min_length=1)]
    version: Name
    strategy: Strategy | None = None  # none: a new version takes all traffic at once
    gate: GateSpec = Field(default_factory=GateSpec)
    sticky_key: StickyKey = "tenant"
    pins: dict[Name, Name] = Field(default_factory=dict)  # tenant -> its own version
    autoscaling: ReplicaAutoscaling | None = None  # None: replicas as the capacity policy says

    @model_validator(mode="after")
    def _unique_tenants(self) -> DeploymentSpec:
        if isinstance(self.tenants, list) and len(set(self.tenants)) != len(self.tenants):
            raise ValueError("tenants must not repeat")
        if isinstance(self.tenants, list):
            strangers = sorted(set(self.pins) - set(self.tenants))
            if strangers:
                raise ValueError(
                    f"pins name tenants the deployment does not serve: {', '.join(strangers)}"
                )
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


class AlertRule(_Document):
    kind: Literal["AlertRule"]
    spec: AlertRuleSpec


class Receiver(_Document):
    kind: Literal["Receiver"]
    spec: ReceiverSpec


class AlertRouting(_Document):
    kind: Literal["AlertRouting"]
    spec: AlertRoutingSpec


class OnCallSchedule(_Document):
    kind: Literal["OnCallSchedule"]
    spec: OnCallScheduleSpec


class EscalationPolicy(_Document):
    kind: Literal["EscalationPolicy"]
    spec: EscalationPolicySpec


class Runbook(_Document):
    kind: Literal["Runbook"]
    spec: RunbookSpec


class SLA(_Document):
    kind: Literal["SLA"]
    spec: SLASpec


class InstanceType(_Document):
    kind: Literal["InstanceType"]
    spec: InstanceTypeSpec


class CapacityPolicy(_Document):
    kind: Literal["CapacityPolicy"]
    spec: CapacityPolicySpec


class Region(_Document):
    kind: Literal["Region"]
    spec: RegionSpec


class RetentionPolicy(_Document):
    kind: Literal["RetentionPolicy"]
    spec: RetentionPolicySpec


# Kinds of the control plane, stored whole as declarations (see registry/declarations.py).
Declared = (
    AlertRule
    | Receiver
    | AlertRouting
    | OnCallSchedule
    | EscalationPolicy
    | Runbook
    | SLA
    | InstanceType
    | CapacityPolicy
    | Region
    | RetentionPolicy
)
DECLARED_KINDS: dict[str, type[Declared]] = {
    "AlertRule": AlertRule,
    "Receiver": Receiver,
    "AlertRouting": AlertRouting,
    "OnCallSchedule": OnCallSchedule,
    "EscalationPolicy": EscalationPolicy,
    "Runbook": Runbook,
    "SLA": SLA,
    "InstanceType": InstanceType,
    "CapacityPolicy": CapacityPolicy,
    "Region": Region,
    "RetentionPolicy": RetentionPolicy,
}

Resource = Tenant | Model | ModelVersion | Deployment | Declared

KINDS: dict[str, type[Resource]] = {
    "Tenant": Tenant,
    "Model": Model,
    "ModelVersion": ModelVersion,
    "Deployment": Deployment,
    **DECLARED_KINDS,
}
