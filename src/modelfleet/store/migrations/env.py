"""Alembic environment: always run with a connection handed in by `modelfleet.store.migrate`."""

from alembic import context

from modelfleet.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `modelfleet db upgrade`, not the alembic command")

# render_as_batch lets later migrations alter tables on SQLite, which cannot ALTER much.
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
