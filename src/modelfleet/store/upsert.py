"""Writes that meet a row already there: insert-or-ignore and upsert, on SQLite and PostgreSQL.

Both engines speak `INSERT ... ON CONFLICT` on a unique constraint, but SQLAlchemy Core builds it
only through each dialect's own `insert`, so the choice is made here, by the connection's
dialect, and nowhere else. A conflict is settled inside the statement: two writers racing on
the same key never fail each other's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

from modelfleet.errors import StoreError


def insert_or_ignore(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], unique: Sequence[str]
) -> None:
    """Insert `rows`, skipping any whose `unique` columns match a row already stored."""
    if rows:
        statement = _insert(conn, table).on_conflict_do_nothing(index_elements=list(unique))
        conn.execute(statement, list(rows))


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    unique: Sequence[str],
    update: Sequence[str],
) -> None:
    """Insert `rows`; where one matches a stored row on `unique`, overwrite its `update` columns.

    The rows must not repeat a key among themselves: PostgreSQL refuses to update one row twice
    in a statement.
    """
    if not rows:
        return
    statement = _insert(conn, table)
    statement = statement.on_conflict_do_update(
        index_elements=list(unique), set_={name: statement.excluded[name] for name in update}
    )
    conn.execute(statement, list(rows))


def _insert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise StoreError(f"unsupported database {name!r}: use SQLite or PostgreSQL")
