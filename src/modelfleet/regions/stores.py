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

from sqlalchemy import Connection

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


@dataclass(frozen=True)
class DeclaredStore:
    """Another region's store as fleet.yaml declares it: the variable naming its URL, and the
    URL (None when the variable is not set)."""

    region: str
    jurisdiction: str
    variable: str
    url: str | None


def other_stores(
    conn: Connection, home_region: str, home_url: str, secrets: Mapping[str, str]
) -> list[DeclaredStore]:
    """Every declared region but `home_region` that names a store, once per URL (two regions
    declaring one URL, or `home_url`, share it)."""
    out: list[DeclaredStore] = []
    seen = {home_url}
    for region in declared(conn, Region):
        if region.name == home_region or region.spec.store is None:
            continue
        url = secrets.get(region.spec.store) or None
        if url is not None and url in seen:
            continue
        if url is not None:
            seen.add(url)
        out.append(DeclaredStore(region.name, region.spec.jurisdiction, region.spec.store, url))
    return out


def open_other(store: DeclaredStore) -> Store:
    """Open another region's store; it is that region's to migrate, not ours."""
    if store.url is None:
        raise InvalidInput(
            f"region {store.region!r} keeps its store at ${store.variable}, which is not set"
        )
    return open_store(store.url, migrate=False)


@contextmanager
def region_stores(
    home: Store, home_region: str, secrets: Mapping[str, str]
) -> Iterator[list[RegionStore]]:
    """`home` (this process's store, standing for `home_region`) and the store of every other
    declared region, each opened once, closed after.

    Raises InvalidInput when a Region names a store variable that is not set.
    """
    with home.begin() as conn:
        jurisdiction = {r.name: r.spec.jurisdiction for r in declared(conn, Region)}
        others = other_stores(conn, home_region, home.url, secrets)
    out = [RegionStore(home_region, jurisdiction.get(home_region), home)]
    try:
        for other in others:
            out.append(RegionStore(other.region, other.jurisdiction, open_other(other)))
        yield out
    finally:
        for region in out[1:]:
            region.store.close()
