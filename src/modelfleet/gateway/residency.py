"""Which region serves a request: the tenant's home region, or its failover region, as the
tenant's residency allows; and how a gateway of another region passes the request on.

Each region is a deployment of its own; a gateway serves the tenants whose effective region is
its own. For any other tenant it redirects the client (307) to the effective region's URL, or
forwards the request there when the tenant asked for forwarding and this gateway's
jurisdiction is one its residency allows. When the home region is declared down, its tenants
move to the failover region only if that region's jurisdiction is their residency; the others
are refused with a 503 that says why: residency is never given up silently.

`decide` is pure: the gateway calls it with the route table's `Regions` before it reads the
body or records anything, so a request passed on leaves nothing in this region.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

CrossRegion = Literal["redirect", "forward"]

# What a refused client is told to wait before trying again: a region's outage is declared by
# people or runbooks, and lifted the same way, so a minute is the useful grain.
RETRY_AFTER_S = 60


@dataclass(frozen=True)
class RegionInfo:
    """A declared region: its jurisdiction, its gateways' URL and its declared failover."""

    jurisdiction: str
    url: str
    failover_to: str | None = None


@dataclass(frozen=True)
class Placement:
    """Where a tenant lives: its home region, its residency (a jurisdiction, or None for
    anywhere) and what another region's gateway does with its requests."""

    home_region: str
    residency: str | None = None
    cross_region: CrossRegion = "redirect"


@dataclass(frozen=True)
class Regions:
    """What the decision needs, published with the route table: the declared regions, the
    regions declared down (each with the failover region its status names, if any) and each
    tenant's placement. No region declared: every gateway serves every tenant, as before."""

    declared: Mapping[str, RegionInfo] = field(default_factory=dict)
    down: Mapping[str, str | None] = field(default_factory=dict)
    tenants: Mapping[str, Placement] = field(default_factory=dict)


@dataclass(frozen=True)
class Serve:
    """This gateway answers the request."""

    region: str


@dataclass(frozen=True)
class PassOn:
    """Another region answers: this gateway forwards the request there, or redirects the
    client to `url` (the region's gateways)."""

    region: str
    url: str
    forward: bool


@dataclass(frozen=True)
class Refuse:
    """No region may answer now: a 503 with `reason` and a Retry-After."""

    reason: str
    retry_after: int = RETRY_AFTER_S


Decision = Serve | PassOn | Refuse


def decide(regions: Regions, here: str, tenant: str) -> Decision:
    """Where a request of `tenant` reaching a gateway of region `here` is answered."""
    placement = regions.tenants.get(tenant)
    if not regions.declared or placement is None:
        return Serve(here)
    target = effective_region(regions, placement)
    if isinstance(target, Refuse):
        return target
    if target == here:
        return Serve(here)
    info = regions.declared.get(target)
    if info is None:
        return Refuse(f"region {target!r} serves tenant {tenant!r} but is not declared")
    mine = regions.declared.get(here)
    allowed_here = placement.residency is None or (
        mine is not None and mine.jurisdiction == placement.residency
    )
    return PassOn(target, info.url, forward=placement.cross_region == "forward" and allowed_here)


def effective_region(regions: Regions, placement: Placement) -> str | Refuse:
    """The region that serves a tenant now: its home region while up, else the home region's
    failover region (the status's, else the Region's own) if the residency allows it there."""
    home = placement.home_region
    if home not in regions.down:
        return home
    declared = regions.declared.get(home)
    target = regions.down[home] or (declared.failover_to if declared else None)
    if target is None:
        return Refuse(f"the home region {home!r} is down and has no failover region")
    info = regions.declared.get(target)
    if info is None:
        return Refuse(
            f"the home region {home!r} is down and its failover region {target!r} is not declared"
        )
    if placement.residency is not None and info.jurisdiction != placement.residency:
        return Refuse(
            f"the home region {home!r} is down, and the tenant's residency "
            f"({placement.residency}) forbids serving it from the failover region {target!r} "
            f"(jurisdiction {info.jurisdiction})"
        )
    if target in regions.down:
        return Refuse(f"the home region {home!r} and its failover region {target!r} are down")
    return target
