"""A sync partition's last run error, kept with its connection so `GET /connections` can show it in `errors`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sync_pipeline.sdk.deadline import RunCanceled
from sync_pipeline.sdk.errors import describe_error
from sync_pipeline.store import SYNC, Store


@contextmanager
def recording_run_errors(store: Store, integration: str, connection_id: str, subject: str, run_id: str) -> Iterator[None]:
    """Record why the run failed under `subject` (the partition's id), or forget the last error when it succeeds."""
    try:
        yield
    except RunCanceled:
        raise  # replaced by a reset trigger (or canceled by hand): not an error of the connection
    except Exception as error:
        # Its type and message (provider status, URL without secrets, cause), as the failure webhook says it.
        store.connection_errors.record(integration, connection_id, SYNC, describe_error(error), subject=subject, log_id=run_id)
        raise
    store.connection_errors.clear(integration, connection_id, SYNC, subject=subject)
