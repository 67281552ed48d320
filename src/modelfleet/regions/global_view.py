"""The global view: every region's rollups, merged, and nothing else.

Operators want one picture of the fleet; customers' contracts want their raw records to stay
in their jurisdiction. Rollups are aggregates (counts, latency sketches, histograms per
minute and key) that merge exactly by addition, so reading each region's rollups and merging
them gives the fleet-wide figures without any raw record (a sample, a prediction, feedback,
a review item) leaving its region's store: this module reads the `rollups` table and no other.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from modelfleet.regions.stores import RegionStore
from modelfleet.telemetry.rollup import Rollup, RollupKey, merge_all
from modelfleet.telemetry.writer import read_rollups


def global_rollups(
    stores: Iterable[RegionStore],
    *,
    since: datetime,
    until: datetime,
    tenant: str | None = None,
    model: str | None = None,
) -> dict[RollupKey, Rollup]:
    """The rollups of every region's store with since <= minute < until, merged per key."""
    found: list[Rollup] = []
    for region in stores:
        with region.store.begin() as conn:
            found += read_rollups(
                conn, since=since, until=until, tenant=tenant, model=model
            ).values()
    return merge_all(found)
