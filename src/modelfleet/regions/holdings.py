"""What the fleet holds about a tenant, table by table, and what erasure does with each.

Export and erasure share this one catalogue, so a table that names a tenant is either listed
here (exported, and deleted or kept for a stated reason) or a reviewer sees it missing. The
categories:

- raw: request content, or data derived from one request (samples, the prediction log,
  feedback, review items);
- aggregate: per-minute or per-window data computed from the tenant's requests (rollups carry
  per-feature histograms of its inputs; monitor verdicts and detector states their statistics);
- contract: the SLA history: each period's service level and the credit owed;
- registry: the tenant, its API keys and signed-in sessions;
- operational: what the service did about the tenant (events, alerts, incidents, throttles,
  the audit log).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, Table, delete, func, or_, select, tuple_

from modelfleet.store.tables import (
    alerts,
    api_keys,
    audit_log,
    deployment_tenants,
    detector_states,
    events,
    feedback,
    incidents,
    monitor_results,
    predictions,
    review_items,
    rollups,
    samples,
    sla_credits,
    tenant_throttles,
    tenants,
    web_sessions,
)

Category = Literal["raw", "aggregate", "contract", "registry", "operational"]

# Why erasure keeps a table's rows of the tenant; the erasure report quotes these.
CONTRACT = (
    "the SLA history: each period's service level (good and total request counts per SLO) and "
    "the service credit the contract owes the tenant, which is billed against its invoices; "
    "accounting law requires invoices and what they were computed from to be kept. It holds "
    "no request content."
)
DECLARED = (
    "declared in fleet.yaml: erasing it here would bring it back with the next apply. Remove "
    "the tenant from fleet.yaml and apply to delete it. It holds no request content."
)
RECORD = (
    "a record of what the service did and when (it names the tenant, and holds no request "
    "content); incidents and alerts are the evidence behind the SLA history."
)
AUDIT = (
    "the audit trail: who did what to the tenant and when, this erasure included; it holds "
    "no request content."
)


@dataclass(frozen=True)
class Holding:
    """One table's rows about a tenant.

    `where` selects them in SQL; `mentions`, when set, narrows them further in Python (for
    tenants named inside JSON columns, which SQLite and PostgreSQL query differently).
    `kept_because` is None for tables erasure deletes from. `withheld` columns are secrets
    (key hashes, CSRF tokens) that an export leaves out.
    """

    table: Table
    category: Category
    where: Callable[[str], ColumnElement[bool]]
    kept_because: str | None = None
    mentions: Callable[[Mapping[str, Any], str], bool] | None = None
    withheld: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def erased(self) -> bool:
        return self.kept_because is None

    def rows(self, conn: Connection, tenant: str) -> Iterator[dict[str, Any]]:
        """The tenant's rows as stored, in primary-key order, less the withheld columns."""
        order = list(self.table.primary_key.columns)
        for row in conn.execute(select(self.table).where(self.where(tenant)).order_by(*order)):
            values = dict(row._mapping)
            if self.mentions is None or self.mentions(values, tenant):
                yield {k: v for k, v in values.items() if k not in self.withheld}

    def count(self, conn: Connection, tenant: str) -> int:
        """How many rows the tenant has here."""
        if self.mentions is None:
            query = select(func.count()).select_from(self.table).where(self.where(tenant))
            return int(conn.execute(query).scalar_one())
        return sum(1 for _ in self.rows(conn, tenant))

    def delete(self, conn: Connection, tenant: str) -> int:
        """Delete the tenant's rows; returns how many."""
        if self.mentions is None:
            return int(conn.execute(delete(self.table).where(self.where(tenant))).rowcount)
        pk = list(self.table.primary_key.columns)
        keys = [tuple(row[c.name] for c in pk) for row in self.rows(conn, tenant)]
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            conn.execute(delete(self.table).where(tuple_(*pk).in_(chunk)))
        return len(keys)


def _labels_name(values: Mapping[str, Any], tenant: str) -> bool:
    return (values.get("labels") or {}).get("tenant") == tenant


def _about(values: Mapping[str, Any], tenant: str) -> bool:
    """An audit entry about the tenant: on the tenant itself, or naming it (its API keys)."""
    if values["kind"] == "Tenant" and values["name"] == tenant:
        return True
    return any((values.get(side) or {}).get("tenant") == tenant for side in ("old", "new"))


# In deletion order: review items before the samples they point at.
HOLDINGS: tuple[Holding, ...] = (
    Holding(review_items, "raw", lambda t: review_items.c.tenant == t),
    Holding(samples, "raw", lambda t: samples.c.tenant == t),
    Holding(predictions, "raw", lambda t: predictions.c.tenant == t),
    Holding(feedback, "raw", lambda t: feedback.c.tenant == t),
    Holding(rollups, "aggregate", lambda t: rollups.c.tenant == t),
    Holding(monitor_results, "aggregate", lambda t: monitor_results.c.tenant == t),
    Holding(
        detector_states,
        "aggregate",
        lambda t: detector_states.c.stream.contains(t, autoescape=True),
        mentions=_labels_name,
    ),
    Holding(api_keys, "registry", lambda t: api_keys.c.tenant == t, withheld=("salt", "key_hash")),
    Holding(
        web_sessions, "registry", lambda t: web_sessions.c.tenant == t, withheld=("csrf_token",)
    ),
    Holding(tenant_throttles, "operational", lambda t: tenant_throttles.c.tenant == t),
    Holding(sla_credits, "contract", lambda t: sla_credits.c.tenant == t, kept_because=CONTRACT),
    Holding(tenants, "registry", lambda t: tenants.c.name == t, kept_because=DECLARED),
    Holding(
        deployment_tenants,
        "registry",
        lambda t: deployment_tenants.c.tenant == t,
        kept_because=DECLARED,
    ),
    Holding(events, "operational", lambda t: events.c.tenant == t, kept_because=RECORD),
    Holding(
        alerts,
        "operational",
        lambda t: alerts.c.labels.is_not(None),
        kept_because=RECORD,
        mentions=_labels_name,
    ),
    Holding(
        incidents,
        "operational",
        lambda t: incidents.c.tenants.is_not(None),
        kept_because=RECORD,
        mentions=lambda values, t: t in (values.get("tenants") or []),
    ),
    Holding(
        audit_log,
        "operational",
        lambda t: or_(audit_log.c.name == t, audit_log.c.kind == "ApiKey"),
        kept_because=AUDIT,
        mentions=_about,
    ),
)

RAW: tuple[str, ...] = tuple(h.name for h in HOLDINGS if h.category == "raw")
