"""The store: SQLAlchemy Core tables on SQLite (default) or PostgreSQL, migrated by Alembic."""

from modelfleet.store.engine import Store, open_store
from modelfleet.store.migrate import current_revision, head_revision, upgrade

__all__ = ["Store", "current_revision", "head_revision", "open_store", "upgrade"]
