"""Reading the control plane's declared kinds (alert rules, receivers, runbooks, ...) back.

Apply stores each as its validated spec; a controller asks for the kind it needs and gets the
same pydantic objects fleet.yaml produced, so every consumer shares one schema.
"""

from __future__ import annotations

from typing import TypeVar, cast

from sqlalchemy import Connection, select

from modelfleet.config.schema import Declared
from modelfleet.store.tables import declarations

D = TypeVar("D", bound=Declared)


def declared(conn: Connection, kind: type[D]) -> list[D]:
    """Every stored resource of `kind`, by name."""
    rows = conn.execute(
        select(declarations)
        .where(declarations.c.kind == kind.__name__)  # each kind's class is named as the kind
        .order_by(declarations.c.name)
    )
    out: list[D] = []
    for r in rows:
        doc = {"kind": r.kind, "metadata": {"name": r.name, "labels": r.labels}, "spec": r.spec}
        out.append(cast(D, kind.model_validate(doc)))
    return out
