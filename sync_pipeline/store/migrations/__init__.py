"""Alembic migrations of the sync_pipeline database, shipped in the package and applied by `store._migrate`."""
