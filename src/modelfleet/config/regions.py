"""fleet.yaml's data-governance kinds: regions with their jurisdiction, and retention by tier.

A `Region` is where gateways serve and a store keeps data; its `jurisdiction` (eu, us, ...) is
what a tenant's `residency` names. A `RetentionPolicy` says, for the tenants of one tier, how
long raw records, minute rollups and hourly rollups are kept.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import StringConstraints, model_validator

from modelfleet.config.base import Duration, Name, Strict

# The variable that holds a region's store URL: a secret, so it never sits in fleet.yaml.
SecretName = Annotated[str, StringConstraints(pattern=r"^MODELFLEET_SECRET_[A-Z0-9_]+$")]


class RegionSpec(Strict):
    """A region: its jurisdiction, the URL its gateways answer on, and where its store is.

    `url` is what a tenant homed here is redirected or forwarded to from other regions.
    `store` names the environment variable holding the region's store URL, for what reads
    every region (the global view, export and erasure); None: this region's store is the one
    the process runs on. `failover_to` is where its tenants go when it is declared down, if
    their residency allows.
    """

    jurisdiction: Name
    url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s/]+(/\S*)?$")]
    store: SecretName | None = None
    failover_to: Name | None = None


class RetentionPolicySpec(Strict):
    """How long a tier's data is kept: raw records (samples, the prediction log, feedback,
    review items), then rollups at minute resolution, then at hourly resolution. Before raw
    records and rollups are deleted they can be archived as Parquet under `archive`."""

    tier: Literal["free", "standard", "premium", "enterprise"]
    raw: Duration = timedelta(days=7)
    # Past a month: SLOs counted per minute (uptime) read a whole SLA period of minutes.
    minute_rollups: Duration = timedelta(days=35)
    hourly_rollups: Duration = timedelta(days=365)
    archive: Annotated[str, StringConstraints(min_length=1)] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> RetentionPolicySpec:
        if self.raw <= timedelta(0):
            raise ValueError("raw must be positive")
        if not self.minute_rollups <= self.hourly_rollups:
            raise ValueError("hourly_rollups must be at least minute_rollups")
        if self.minute_rollups < timedelta(hours=2):
            raise ValueError("minute_rollups must be at least 2h: hours are compacted whole")
        return self
