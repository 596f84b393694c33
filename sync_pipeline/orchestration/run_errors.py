"""A sync partition's last run error, kept with its connection so `GET /connections` can show it in `errors`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sync_pipeline.store import SYNC, Store


@contextmanager
def recording_run_errors(store: Store, integration: str, connection_id: str, subject: str, run_id: str) -> Iterator[None]:
    """Record why the run failed under `subject` (the partition's id), or forget the last error when it succeeds."""
    try:
        yield
    except Exception as error:
        store.connection_errors.record(integration, connection_id, SYNC, str(error) or type(error).__name__, subject=subject, log_id=run_id)
        raise
    store.connection_errors.clear(integration, connection_id, SYNC, subject=subject)
