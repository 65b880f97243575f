"""Alembic environment: migrations always run on a connection handed in by store.migrate."""

from alembic import context

from sessionscope.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("run migrations through `sessionscope migrate`, which supplies the connection")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
context.run_migrations()
