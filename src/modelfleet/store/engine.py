"""Opening the store: one engine per process, SQLite tuned for safety, PostgreSQL as given."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import ConnectionPoolEntry

from modelfleet.errors import StoreError
from modelfleet.store.migrate import upgrade


class Store:
    """A handle on the store. `begin()` yields a connection inside one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def url(self) -> str:
        """The store's URL with any password hidden, safe to print."""
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def begin(self, *, immediate: bool = False) -> Iterator[Connection]:
        """One transaction: committed when the block ends, rolled back if it raises.

        `immediate`: on SQLite, take the write lock at the start (``BEGIN IMMEDIATE``),
        waiting for it up to the busy timeout. A transaction that reads and then writes
        needs it: a deferred one that read before another writer committed cannot upgrade,
        and SQLite refuses it at once ("database is locked") without waiting.
        """
        try:
            with self.engine.connect() as conn:
                if immediate:
                    conn = conn.execution_options(sqlite_begin="IMMEDIATE")
                with conn.begin():
                    yield conn
        except OperationalError as exc:
            raise StoreError(f"store {self.url} failed: {exc.orig}") from exc

    def close(self) -> None:
        self.engine.dispose()


def open_store(url: str, *, migrate: bool = True) -> Store:
    """Open the store at `url`, creating and migrating it on first use unless told not to."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"invalid database URL: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(url, parsed.database)
    elif parsed.get_backend_name() == "postgresql":
        # A server that hangs rather than refuses must not hold a gateway's refresh or flush
        # for the kernel's TCP timeout: give up connecting after a few seconds and retry.
        engine = create_engine(
            url, pool_pre_ping=True, json_serializer=_json, connect_args={"connect_timeout": 5}
        )
    else:
        raise StoreError(
            f"unsupported database {parsed.get_backend_name()!r}: use sqlite:/// or postgresql+psycopg://"
        )
    store = Store(engine)
    if migrate:
        try:
            upgrade(engine)
        except OperationalError as exc:
            engine.dispose()
            raise StoreError(f"cannot reach the store at {store.url}: {exc.orig}") from exc
    return store


def _json(value: Any) -> str:
    """JSON columns through orjson: telemetry flushes write thousands of values at a time."""
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30}, json_serializer=_json)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin, so that
        # DDL in migrations is transactional too (SQLAlchemy's documented pysqlite recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin")
        conn.exec_driver_sql(f"BEGIN {mode}" if mode else "BEGIN")

    return engine
