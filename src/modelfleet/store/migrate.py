"""Alembic, driven from code: migrations run on first use and by `modelfleet db upgrade`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

MIGRATIONS = Path(__file__).parent / "migrations"

# Any constant works; it only has to be the same in every modelfleet process.
_PG_MIGRATION_LOCK = 0x6D666C74


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """The newest migration this version of modelfleet knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The migration the store is at, or None for an empty store."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> bool:
    """Bring the store to the newest schema; returns whether anything was migrated."""
    head = head_revision()
    if current_revision(engine) == head:
        return False
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Several gateways may start at once; one migrates while the others wait.
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            if MigrationContext.configure(conn).get_current_revision() == head:
                return False
        config = _config()
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    return True
