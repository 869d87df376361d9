"""Alembic environment: migrations always run from code on a connection that blotter opened."""

from __future__ import annotations

from alembic import context

from blotter.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
