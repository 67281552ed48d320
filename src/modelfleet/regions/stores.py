"""Every region's store, for what must read or change all of them: the global view (rollups
only), a tenant's export and its erasure.

Each region is a deployment of its own with its own store; the fleet's `Region` documents name
the environment variable (a MODELFLEET_SECRET_* one) that holds each store's URL, so URLs with
passwords never sit in fleet.yaml. The store this process runs on stands for its own region.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from modelfleet.config.schema import Region
from modelfleet.errors import InvalidInput
from modelfleet.registry.declarations import declared
from modelfleet.store import Store, open_store


@dataclass(frozen=True)
class RegionStore:
    """A region's name, its jurisdiction (None: no Region declares it) and its store."""

    region: str
    jurisdiction: str | None
    store: Store


@contextmanager
def region_stores(
    home: Store, home_region: str, secrets: Mapping[str, str]
) -> Iterator[list[RegionStore]]:
    """`home` (this process's store, standing for `home_region`) and the store of every other
    declared region, each opened once (two regions declaring one URL share it), closed after.

    Raises InvalidInput when a Region names a store variable that is not set.
    """
    with home.begin() as conn:
        regions = declared(conn, Region)
    jurisdictions = {r.name: r.spec.jurisdiction for r in regions}
    out = [RegionStore(home_region, jurisdictions.get(home_region), home)]
    opened: dict[str, Store] = {home.url: home}
    try:
        for region in regions:
            if region.name == home_region or region.spec.store is None:
                continue
            url = secrets.get(region.spec.store)
            if not url:
                raise InvalidInput(
                    f"region {region.name!r} keeps its store at ${region.spec.store}, "
                    "which is not set"
                )
            if url not in opened:
                # Another region's store is that region's to migrate, not ours.
                opened[url] = open_store(url, migrate=False)
                out.append(RegionStore(region.name, region.spec.jurisdiction, opened[url]))
        yield out
    finally:
        for store in opened.values():
            if store is not home:
                store.close()
