"""Telemetry: what the gateway records per request, as per-minute rollups that merge by addition.

The gateway records each request into a worker's `RollupBuffer`; a writer drains it every few
seconds and stores the rollups; readers merge rollups from every worker, gateway and region.
"""

from modelfleet.telemetry.rollup import (
    CONFIDENCE_EDGES,
    DEFAULT_THRESHOLDS_S,
    STATUS_CLASSES,
    Rollup,
    RollupBuffer,
    RollupKey,
    merge_all,
    no_features,
)

__all__ = [
    "CONFIDENCE_EDGES",
    "DEFAULT_THRESHOLDS_S",
    "STATUS_CLASSES",
    "Rollup",
    "RollupBuffer",
    "RollupKey",
    "merge_all",
    "no_features",
]
