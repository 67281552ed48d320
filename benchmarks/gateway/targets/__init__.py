"""The servers under test, in the order a run visits them; `--only` picks by name."""

from benchmarks.gateway.target import Target
from benchmarks.gateway.targets import (
    bentoml_service,
    fastapi_floor,
    mlserver_sklearn,
    modelfleet_gateway,
    ray_serve,
)

TARGETS: tuple[Target, ...] = (
    modelfleet_gateway.TELEMETRY_ON,
    modelfleet_gateway.TELEMETRY_OFF,
    modelfleet_gateway.ON_RAY_1,
    modelfleet_gateway.ON_RAY_2,
    fastapi_floor.TARGET,
    bentoml_service.TARGET,
    mlserver_sklearn.TARGET,
    ray_serve.TARGET,
)
