"""Alembic's environment: runs on the connection `sync_pipeline.store._migrate` hands over (already locked)."""

from alembic import context

from sync_pipeline.store._migrate import VERSION_TABLE
from sync_pipeline.store._schema import metadata

if context.is_offline_mode():
    raise SystemExit("sync_pipeline migrations run online only: `sync-pipeline migrate`")

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=metadata,
    version_table=VERSION_TABLE,  # Dagster keeps its own `alembic_version` in the same PostgreSQL database
)
with context.begin_transaction():
    context.run_migrations()
