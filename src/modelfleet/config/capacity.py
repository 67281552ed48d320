"""The kinds of fleet.yaml that size and price capacity: `InstanceType` and `CapacityPolicy`.

An instance type is what a replica runs on and what it costs by purchase option; a capacity
policy says, per model, how its replicas are scaled (predictive, reactive or static) within
which bounds, and on which instance type.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field, model_validator

from modelfleet.config.base import Duration, Name, Strict

Price = Annotated[float, Field(ge=0.0)]  # per instance-hour, in `currency`


class InstanceTypeSpec(Strict):
    cpus: Annotated[float, Field(gt=0.0)]
    memory_gib: Annotated[float, Field(gt=0.0)]
    gpus: Annotated[int, Field(ge=0)] = 0
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "USD"
    on_demand_hourly: Price
    reserved_hourly: Price | None = None  # effective hourly price over the term
    reserved_term: Duration = timedelta(days=365)
    spot_hourly: Price | None = None
    spot_interruption_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.05  # per hour

    @model_validator(mode="after")
    def _cheaper_options(self) -> InstanceTypeSpec:
        for name in ("reserved_hourly", "spot_hourly"):
            price = getattr(self, name)
            if price is not None and price > self.on_demand_hourly:
                raise ValueError(f"{name} is above on_demand_hourly: nobody would buy it")
        return self


class CapacityPolicySpec(Strict):
    model: Name
    instance_type: Name
    replicas_per_instance: Annotated[int, Field(ge=1)] = 1
    mode: Literal["predictive", "reactive", "static"] = "predictive"
    min_replicas: Annotated[int, Field(ge=1)] = 1
    max_replicas: Annotated[int, Field(ge=1)] = 16
    static_replicas: Annotated[int, Field(ge=1)] | None = None
    target_utilization: Annotated[float, Field(gt=0.0, le=1.0)] = 0.75  # HPA's, on observed load
    # Predictive: the forecast's upper bound (the `forecast_level` quantile of its own recent
    # errors) may fill replicas to `forecast_utilization`.
    forecast_level: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.9
    forecast_utilization: Annotated[float, Field(gt=0.0, le=1.0)] = 0.9
    startup_lead: Duration = timedelta(minutes=5)  # a new replica serves this long after asked
    scale_down_stabilization: Duration = timedelta(minutes=5)  # Kubernetes HPA's default
    tolerance: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1  # HPA's
    # Per-replica capacity is measured as the throughput a replica sustains with its p99
    # latency under this objective; until measured, scaling is reactive only.
    latency_objective: Duration = timedelta(milliseconds=250)
    interruptible: bool = False  # its peaks may run on spot instances
    forecast_every: Duration = timedelta(hours=1)

    @model_validator(mode="after")
    def _bounds(self) -> CapacityPolicySpec:
        if self.max_replicas < self.min_replicas:
            raise ValueError("max_replicas must be at least min_replicas")
        if self.static_replicas is not None and not (
            self.min_replicas <= self.static_replicas <= self.max_replicas
        ):
            raise ValueError("static_replicas must lie within min_replicas and max_replicas")
        return self
