"""fleet.yaml: the declarative description of a fleet, its schema and its loader."""

from modelfleet.config.loader import Fleet, load_fleet, load_fleet_text
from modelfleet.config.schema import (
    Deployment,
    Feature,
    Model,
    ModelVersion,
    Resource,
    Tenant,
)

__all__ = [
    "Deployment",
    "Feature",
    "Fleet",
    "Model",
    "ModelVersion",
    "Resource",
    "Tenant",
    "load_fleet",
    "load_fleet_text",
]
