"""Alembic environment: the records store hands over its open connection (no alembic.ini)."""

from alembic import context

from facemask.records.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
