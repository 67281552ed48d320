"""Declaring a region down or up: the operator's (or a runbook's) decision that moves tenants.

A region's status lives in the `region_status` table of every region's store, since each
region's gateways read only their own. Each change is written with an audit entry in the same
transaction: the audit entry moves the store's generation, so every gateway reloads its route
table at its next refresh (every 0.5 s) and routes by the new status. A gateway then sends the
down region's tenants to its failover region where their residency allows, and refuses the
others with a 503 that says why (see `modelfleet.gateway.residency`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from modelfleet.config.schema import Region
from modelfleet.errors import InvalidInput, StoreError
from modelfleet.regions.stores import open_other, other_stores
from modelfleet.registry.audit import record
from modelfleet.registry.declarations import declared
from modelfleet.store import Store
from modelfleet.store.tables import region_status
from modelfleet.store.upsert import upsert


@dataclass(frozen=True)
class RegionState:
    """A declared region and its status: up, or down and failed over to `failover_to`."""

    region: str
    jurisdiction: str
    url: str
    status: str  # up | down
    failover_to: str | None  # while down: where its tenants go (if their residency allows)
    reason: str | None
    updated_at: datetime | None


@dataclass(frozen=True)
class Written:
    """What declaring a status did in one region's store: changed it, found it so already, or
    could not reach the store (`error`)."""

    store_region: str
    changed: bool
    error: str | None = None


def region_states(conn: Connection) -> list[RegionState]:
    """Every declared region with its status (up unless declared down), by name."""
    rows = {r.region: r for r in conn.execute(select(region_status))}
    out = []
    for region in declared(conn, Region):
        row = rows.get(region.name)
        down = row is not None and row.status == "down"
        out.append(
            RegionState(
                region.name,
                region.spec.jurisdiction,
                region.spec.url,
                "down" if down else "up",
                (row.failover_to or region.spec.failover_to) if row is not None and down else None,
                row.reason if row is not None else None,
                row.updated_at if row is not None else None,
            )
        )
    return out


def set_status(
    conn: Connection,
    region: str,
    *,
    down: bool,
    failover_to: str | None = None,
    reason: str,
    actor: str,
    now: datetime,
) -> bool:
    """Declare `region` down (its tenants failed over to `failover_to`, else to its declared
    failover region) or up, with an audit entry; False when it was so already.

    Raises InvalidInput when the region or the failover region is not declared, or when a
    region would fail over to itself.
    """
    regions = {r.name: r.spec for r in declared(conn, Region)}
    if region not in regions:
        raise InvalidInput(f"region {region!r} is not declared; declare it in fleet.yaml first")
    target = (failover_to or regions[region].failover_to) if down else None
    if target is not None and target not in regions:
        raise InvalidInput(f"failover region {target!r} is not declared")
    if target == region:
        raise InvalidInput(f"region {region!r} cannot fail over to itself")
    old = conn.execute(select(region_status).where(region_status.c.region == region)).first()
    status = "down" if down else "up"
    if old is not None and (old.status, old.failover_to) == (status, target):
        return False
    if old is None and not down:
        return False  # a region is up until declared down
    upsert(
        conn,
        region_status,
        [
            {
                "region": region,
                "status": status,
                "failover_to": target,
                "reason": reason,
                "updated_at": now,
            }
        ],
        unique=["region"],
        update=["status", "failover_to", "reason", "updated_at"],
    )
    before = None if old is None else {"status": old.status, "failover_to": old.failover_to}
    record(
        conn,
        at=now,
        actor=actor,
        action=status,
        kind="Region",
        name=region,
        old=before,
        new={"status": status, "failover_to": target, "reason": reason},
    )
    return True


def set_status_everywhere(
    home: Store,
    home_region: str,
    secrets: Mapping[str, str],
    region: str,
    *,
    down: bool,
    failover_to: str | None = None,
    reason: str,
    actor: str,
    now: datetime,
) -> list[Written]:
    """Declare the status in `home` (this process's store, standing for `home_region`) and in
    the store of every other declared region whose store variable is set.

    `home` is written first, and its refusal (an undeclared region) is raised before any other
    store is touched. A store that cannot be reached (the region that is down, often) is
    reported in its `Written` and does not stop the others.
    """
    with home.begin(immediate=True) as conn:
        changed = set_status(
            conn, region, down=down, failover_to=failover_to, reason=reason, actor=actor, now=now
        )
        others = other_stores(conn, home_region, home.url, secrets)
    out = [Written(home_region, changed)]
    for other in others:
        if other.url is None:
            out.append(Written(other.region, False, f"${other.variable} is not set"))
            continue
        try:
            store = open_other(other)
        except StoreError as exc:
            out.append(Written(other.region, False, str(exc)))
            continue
        try:
            with store.begin(immediate=True) as conn:
                changed = set_status(
                    conn,
                    region,
                    down=down,
                    failover_to=failover_to,
                    reason=reason,
                    actor=actor,
                    now=now,
                )
            out.append(Written(other.region, changed))
        except (StoreError, InvalidInput) as exc:
            out.append(Written(other.region, False, str(exc)))
        finally:
            store.close()
    return out
