"""A tenant's erasure: every raw record and aggregate of the tenant deleted in every region,
what the contract or the law requires kept, and a report that can be verified later.

Each region's store is erased in one transaction: the tenant's API keys are revoked (the
revocations are audited) and deleted, its sessions signed out, and the rows of every table
that `holdings.HOLDINGS` marks as erased deleted: samples, the prediction log, feedback,
review items, rollups (they carry per-feature histograms of the tenant's inputs), monitor
verdicts and detector states. The tables marked as kept (SLA history, the registry entries
fleet.yaml declares, operational records, the audit log) are counted, not touched.

Then every erased table is counted again for the tenant in every region, and the report is
written: tenant, time, actor, per region what was deleted, kept and left (all zero when the
erasure is complete), why each kept table is kept, and the report's own SHA-256, which is also
recorded in every region's audit log. Erasing again deletes nothing more and reports zeros.

A region that fails leaves the regions erased before it erased: run the erasure again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from modelfleet.errors import InvalidInput
from modelfleet.regions.export import require_tenant
from modelfleet.regions.holdings import HOLDINGS
from modelfleet.regions.stores import RegionStore
from modelfleet.registry import audit
from modelfleet.registry.keys import list_keys, revoke_key
from modelfleet.store import Store

FORMAT: Final = "modelfleet-erasure-report"
FORMAT_VERSION: Final = 1


@dataclass(frozen=True)
class RegionErasure:
    """What one region's transaction did, and what its store held of the tenant after."""

    deleted: dict[str, int]
    revoked_keys: list[str]
    kept: dict[str, int]
    remaining: dict[str, int]

    @property
    def complete(self) -> bool:
        return not any(self.remaining.values())


def erase_region(store: Store, tenant: str, *, actor: str, now: datetime) -> RegionErasure:
    """Erase `tenant` from one region's store in one transaction, then count what is left."""
    with store.begin(immediate=True) as conn:
        revoked = [k.prefix for k in list_keys(conn, tenant) if k.active]
        for prefix in revoked:
            revoke_key(conn, prefix, actor=actor, now=now)
        deleted = {h.name: h.delete(conn, tenant) for h in HOLDINGS if h.erased}
        kept = {h.name: h.count(conn, tenant) for h in HOLDINGS if not h.erased}
    # Counted in a transaction of its own, after the commit: what any reader now finds.
    with store.begin() as conn:
        remaining = {h.name: h.count(conn, tenant) for h in HOLDINGS if h.erased}
    return RegionErasure(deleted, revoked, kept, remaining)


def erase_tenant(
    regions: Sequence[RegionStore],
    tenant: str,
    *,
    actor: str,
    now: datetime,
    version: str,
) -> dict[str, Any]:
    """Erase `tenant` in every region; returns the erasure report (see the module), whose
    SHA-256 every region's audit log records."""
    if not regions:
        raise InvalidInput("no region to erase in")
    with regions[0].store.begin() as conn:
        require_tenant(conn, tenant)
    done = {r.region: erase_region(r.store, tenant, actor=actor, now=now) for r in regions}
    report: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tenant": tenant,
        "erased_at": now.isoformat(),
        "erased_by": actor,
        "modelfleet_version": version,
        "complete": all(e.complete for e in done.values()),
        "regions": {
            r.region: {
                "jurisdiction": r.jurisdiction,
                "deleted": done[r.region].deleted,
                "revoked_keys": done[r.region].revoked_keys,
                "kept": done[r.region].kept,
                "remaining": done[r.region].remaining,
            }
            for r in regions
        },
        "erased": {h.name: h.category for h in HOLDINGS if h.erased},
        "kept": {
            h.name: {"category": h.category, "why": h.kept_because}
            for h in HOLDINGS
            if not h.erased
        },
    }
    report["sha256"] = report_sha256(report)
    for region in regions:
        with region.store.begin() as conn:
            audit.record(
                conn,
                at=now,
                actor=actor,
                action="erase",
                kind="Tenant",
                name=tenant,
                old=None,
                new={
                    "report_sha256": report["sha256"],
                    "deleted": sum(done[region.region].deleted.values()),
                    "complete": report["complete"],
                },
            )
    return report


def report_sha256(report: Mapping[str, Any]) -> str:
    """The SHA-256 of a report: of its canonical JSON (keys sorted, no spaces, UTF-8) without
    its own `sha256` field."""
    body = {k: v for k, v in report.items() if k != "sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def verify_report(report: Mapping[str, Any]) -> bool:
    """Whether a report is unchanged since it was written (its `sha256` still matches)."""
    return report.get("sha256") == report_sha256(report)
