"""Start-up: the sync_pipeline schema, then Dagster's storage, each created or migrated once under a lock.

Dagster creates a fresh home's SQLite tables when an instance first opens them, with no lock: `serve` and
`dagster-daemon` started at the same moment collide (`table ... already exists`). Every command of ours
that opens the instance goes through `prepare_storage` first, and `sync-pipeline daemon` starts the daemon
only after it, so they take turns.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import DagsterInstance
from sqlalchemy import Engine, text

from sync_pipeline.store import Store, file_lock, head_revision

DAGSTER_LOCK_KEY = int.from_bytes(b"sp_dagst", "big")  # apart from the schema lock: this one is held longer
LOCK_FILE = ".storage-lock"


def prepare_storage(database_url: str, home: Path) -> str:
    """Migrate the sync_pipeline database, then open (and so create) the Dagster instance in `home`.

    Returns the schema revision the database is at.
    """
    store = Store.from_url(database_url)  # migrates under the schema lock
    try:
        with _dagster_lock(store.engine, home):
            instance = DagsterInstance.from_config(str(home))
            try:
                instance.event_log_storage  # noqa: B018 (opening each storage creates its tables)
                instance.schedule_storage  # noqa: B018
                _create_task_state_tables(instance, store.engine)
            finally:
                instance.dispose()
    finally:
        store.engine.dispose()
    return head_revision()


def _create_task_state_tables(instance: DagsterInstance, engine: Engine) -> None:
    """Scale-out mode keeps Celery's task states in the database; Celery creates its tables on first use, without
    a lock, in each process: create them here, under ours, before the daemon and the workers start."""
    from sync_pipeline.scaleout.launcher import SyncPipelineCeleryRunLauncher

    if isinstance(instance.run_launcher, SyncPipelineCeleryRunLauncher):
        from celery.backends.database.models import ResultModelBase

        ResultModelBase.metadata.create_all(engine)


@contextmanager
def _dagster_lock(engine: Engine, home: Path) -> Iterator[None]:
    """The home's lock file (SQLite storage lives there), and on PostgreSQL an advisory lock as well."""
    with file_lock(home / LOCK_FILE):
        if engine.dialect.name != "postgresql":
            yield
            return
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": DAGSTER_LOCK_KEY})
            yield
