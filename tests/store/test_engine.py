"""Opening the store: migrated on first use, SQLite made safe, bad URLs refused clearly."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from modelfleet.errors import StoreError
from modelfleet.store import current_revision, head_revision, open_store, upgrade
from modelfleet.store.tables import audit_log


def test_the_store_is_migrated_on_first_use(database_url: str) -> None:
    store = open_store(database_url)
    try:
        assert current_revision(store.engine) == head_revision()
        assert upgrade(store.engine) is False  # already at head: nothing to do
    finally:
        store.close()


def test_opening_without_migrating_leaves_an_empty_store(database_url: str) -> None:
    store = open_store(database_url, migrate=False)
    try:
        assert current_revision(store.engine) is None
        assert upgrade(store.engine) is True
        assert current_revision(store.engine) == head_revision()
    finally:
        store.close()


def test_timestamps_come_back_in_utc_and_aware(database_url: str) -> None:
    store = open_store(database_url)
    at = datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    with store.begin() as conn:
        conn.execute(insert(audit_log).values(at=at, actor="a", action="x", kind="k", name="n"))
        [stored] = conn.execute(select(audit_log.c.at)).scalars()
    store.close()
    assert stored == at and stored.tzinfo is not None and stored.utcoffset() == timedelta(0)


def test_naive_timestamps_are_refused(database_url: str) -> None:
    store = open_store(database_url)
    with pytest.raises(StatementError, match="timezone-aware"), store.begin() as conn:
        conn.execute(
            insert(audit_log).values(
                at=datetime(2026, 1, 1), actor="a", action="x", kind="k", name="n"
            )
        )
    store.close()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'deep' / 'dir' / 'fleet.db'}")
    with store.begin() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    store.close()
    assert (tmp_path / "deep" / "dir" / "fleet.db").exists()


def test_foreign_keys_are_enforced(database_url: str) -> None:
    store = open_store(database_url)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(IntegrityError, match="(?i)foreign key"), store.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO api_keys (prefix, tenant, salt, key_hash, created_at, created_by) "
                "VALUES ('abcd1234', 'nobody', 's', 'h', :now, 'x')"
            ),
            {"now": now},
        )
    store.close()


def test_unsupported_and_malformed_urls_are_refused() -> None:
    with pytest.raises(StoreError, match="unsupported database 'mysql'"):
        open_store("mysql://root@localhost/test")
    with pytest.raises(StoreError, match="invalid database URL"):
        open_store("not a url")


@pytest.mark.postgres
def test_an_unreachable_postgresql_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="cannot reach the store at postgresql"):
        open_store("postgresql+psycopg://postgres:secret@127.0.0.1:1/test")


@pytest.mark.postgres
def test_the_password_is_not_shown_in_errors() -> None:
    with pytest.raises(StoreError) as info:
        open_store("postgresql+psycopg://postgres:hunter2@127.0.0.1:1/test")
    assert "hunter2" not in str(info.value)


def test_migrations_create_exactly_the_tables_the_code_declares(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from modelfleet.store.tables import metadata

    store = open_store(database_url)
    with store.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    store.close()
    assert differences == []


def test_a_read_then_write_transaction_survives_a_concurrent_writer(tmp_path: Path) -> None:
    """Deferred, the first transaction's read would pin a snapshot that the other writer's
    commit makes stale, and its write would fail at once with "database is locked"."""
    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    first, second = open_store(url), open_store(url)
    with first.begin() as setup:
        setup.exec_driver_sql("CREATE TABLE counter (n INTEGER)")
        setup.exec_driver_sql("INSERT INTO counter VALUES (0)")
    has_read = threading.Event()

    def other_writer() -> None:
        has_read.wait(5)
        with second.begin(immediate=True) as conn:  # waits until the first one commits
            conn.exec_driver_sql("UPDATE counter SET n = n + 1")

    thread = threading.Thread(target=other_writer)
    thread.start()
    with first.begin(immediate=True) as conn:
        n = conn.exec_driver_sql("SELECT n FROM counter").scalar()
        has_read.set()
        time.sleep(0.3)
        conn.exec_driver_sql("UPDATE counter SET n = ?", (n + 1,))
    thread.join()
    with first.begin() as conn:
        assert conn.exec_driver_sql("SELECT n FROM counter").scalar() == 2
