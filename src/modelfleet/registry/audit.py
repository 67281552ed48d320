"""The audit log: every change to the registry, with who made it, when, and the values before
and after. Rows are only ever appended."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from modelfleet.store.tables import audit_log


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    kind: str
    name: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None

    def changed_fields(self) -> list[str]:
        return changed_fields(self.old, self.new)


def changed_fields(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[str]:
    """Dotted names of the values that differ between two states (e.g. `spec.tier`)."""
    return sorted(_differences(old or {}, new or {}, ""))


def record(
    conn: Connection,
    *,
    at: datetime,
    actor: str,
    action: str,
    kind: str,
    name: str,
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
) -> None:
    """Append one change. Callers pass values that hold no secrets."""
    conn.execute(
        insert(audit_log).values(
            at=at, actor=actor, action=action, kind=kind, name=name, old=old, new=new
        )
    )


def latest(
    conn: Connection, *, limit: int = 50, kind: str | None = None, name: str | None = None
) -> list[AuditEntry]:
    """The newest changes first, optionally only those of one kind or one resource name."""
    query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if kind is not None:
        query = query.where(audit_log.c.kind == kind)
    if name is not None:
        query = query.where(audit_log.c.name == name)
    return [AuditEntry(**row._mapping) for row in conn.execute(query)]


def _differences(old: Any, new: Any, path: str) -> set[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: set[str] = set()
        for key in old.keys() | new.keys():
            out |= _differences(old.get(key), new.get(key), f"{path}.{key}" if path else key)
        return out
    return set() if old == new else {path}
