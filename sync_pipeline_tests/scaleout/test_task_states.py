"""Celery's task states (`celery_taskmeta`, a row a run) are forgotten by the deployment itself once finished more
than `result_expires` (a day) ago: the daemon does it when it launches runs, at most hourly; running tasks and
recent ones stay."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from celery.backends.database import DatabaseBackend, session_cleanup

from sync_pipeline.scaleout.instance import results_backend
from sync_pipeline.scaleout.launcher import SyncPipelineCeleryRunLauncher
from sync_pipeline.scaleout.task_states import forget_old_task_states
from sync_pipeline_tests.conftest import server_database
from sync_pipeline_tests.fakes.server import ServedApp
from sync_pipeline_tests.fakes.slack import SlackApi
from sync_pipeline_tests.scaleout.deployment import scaleout_deployment

pytestmark = pytest.mark.postgres_only

RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"
TWO_DAYS = timedelta(days=2)


def task_states(url: str) -> DatabaseBackend:
    """The results backend the deployment's run launcher uses, on `url`."""
    launcher = SyncPipelineCeleryRunLauncher(default_queue="unused", broker=RABBITMQ, backend=results_backend(url))
    return launcher.celery.backend


def record(backend: DatabaseBackend, task_id: str, state: str, ago: timedelta | None = None) -> None:
    """A task state as a worker stores it; finished `ago` in the past when given."""
    backend.store_result(task_id, None, state)
    if ago is not None:
        session = backend.ResultSession()
        with session_cleanup(session):
            done = datetime.now(timezone.utc) - ago
            session.query(backend.task_cls).filter_by(task_id=task_id).update({"date_done": done})
            session.commit()


def stored(backend: DatabaseBackend) -> dict[str, str]:
    """Every stored task state, by task id."""
    session = backend.ResultSession()
    with session_cleanup(session):
        return {task.task_id: task.status for task in session.query(backend.task_cls)}


@pytest.fixture
def slack():
    api = SlackApi()
    for index in range(3):
        api.put(f"U{index:03d}", f"Member{index}")
    with ServedApp(api) as served:
        api.url = served.url
        yield api


def test_the_daemon_forgets_task_states_finished_a_day_ago_and_keeps_running_and_recent_ones(tmp_path, slack):
    with scaleout_deployment(RABBITMQ, tmp_path / "home", workers=1) as deployment:
        backend = task_states(deployment.env["SYNC_PIPELINE_DATABASE_URL"])
        record(backend, "old-success", "SUCCESS", ago=TWO_DAYS)
        record(backend, "old-failure", "FAILURE", ago=TWO_DAYS)
        record(backend, "old-revoked", "REVOKED", ago=TWO_DAYS)
        record(backend, "recent-success", "SUCCESS", ago=timedelta(hours=23))
        record(backend, "long-running", "STARTED")  # a run started days ago still runs: monitoring asks about it

        deployment.create_slack_connection("acme", slack)  # the daemon launches its first run
        deployment.wait_for_webhooks({"acme"}, timeout=120)

        states = stored(backend)
        assert not {"old-success", "old-failure", "old-revoked"} & states.keys(), states
        assert states["recent-success"] == "SUCCESS" and states["long-running"] == "STARTED"

        # The next launches within the hour leave the table alone: one cleanup an hour keeps up with a day's runs.
        record(backend, "old-since", "SUCCESS", ago=TWO_DAYS)
        deployment.create_slack_connection("globex", slack)
        deployment.wait_for_webhooks({"acme", "globex"}, timeout=120)

        assert "old-since" in stored(backend)


def test_a_long_backlog_is_forgotten_in_bounded_calls_and_a_call_with_nothing_old_deletes_nothing():
    with server_database("sp_taskmeta") as url:
        backend = task_states(url)
        for index in range(25):
            record(backend, f"old-{index}", "SUCCESS", ago=TWO_DAYS)
        record(backend, "recent", "FAILURE", ago=timedelta(minutes=5))
        record(backend, "running", "STARTED")

        assert forget_old_task_states(backend, limit=20, batch=8) == 20  # three transactions, then it stops
        assert len([task_id for task_id in stored(backend) if task_id.startswith("old-")]) == 5
        assert forget_old_task_states(backend, limit=20, batch=8) == 5

        started = time.monotonic()
        assert forget_old_task_states(backend) == 0
        assert time.monotonic() - started < 1.0  # one indexed query that finds nothing
        assert stored(backend) == {"recent": "FAILURE", "running": "STARTED"}
