"""Forgetting Celery's finished task states (`celery_taskmeta`) after `result_expires`, in bounded batches."""

from __future__ import annotations

from datetime import datetime, timezone

from celery import states
from celery.backends.database import DatabaseBackend, session_cleanup
from sqlalchemy import delete, select

BATCH = 5000  # rows a transaction deletes, through the date_done index
LIMIT = 50_000  # rows a call deletes at most (two hours of runs at 400 a minute); the rest at the next call


def forget_old_task_states(backend: DatabaseBackend, limit: int = LIMIT, batch: int = BATCH) -> int:
    """Delete the states of tasks that finished more than the backend's `expires` (`result_expires`) ago, as
    Celery's own `backend.cleanup()` does, but `batch` rows a transaction, at most `limit`: a first cleanup of a
    long table neither holds a long transaction nor the daemon. Returns how many were deleted.

    Only finished tasks: Celery writes date_done for SUCCESS, FAILURE and REVOKED and leaves it NULL while a task
    is STARTED, however long ago it started, so a run that takes longer than `expires` keeps the state run
    monitoring asks about. (dagster-celery never groups tasks: celery_tasksetmeta stays empty.)"""
    if backend.expires is None:  # result_expires=None: the operator keeps task states forever
        return 0
    task = backend.task_cls
    # Aware, as Celery stores date_done and compares it in its cleanup: PostgreSQL converts both alike.
    cutoff = datetime.now(timezone.utc) - backend.expires
    old = select(task.id).where(task.status.in_(states.READY_STATES), task.date_done < cutoff).limit(batch)
    removed = 0
    session = backend.ResultSession()
    with session_cleanup(session):
        while removed < limit:
            deleted = session.execute(
                delete(task).where(task.id.in_(old.limit(min(batch, limit - removed)).scalar_subquery())),
                execution_options={"synchronize_session": False},
            ).rowcount
            session.commit()
            removed += deleted
            if deleted < batch:
                break
    return removed
