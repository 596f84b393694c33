"""`sync-pipeline worker`: a Celery worker with dagster-celery's run tasks and sync_pipeline's code loaded once."""

from __future__ import annotations

import os
import socket

from celery import Celery
from dagster import DagsterInstance
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_execute_job_task, create_resume_job_task

from sync_pipeline.scaleout.instance import ScaleOutError
from sync_pipeline.scaleout.launcher import SyncPipelineCeleryRunLauncher


def worker_app(instance: DagsterInstance) -> tuple[Celery, str]:
    """The Celery app of the instance's run launcher (same broker, backend and settings) with the tasks it sends,
    and the launcher's queue."""
    launcher = instance.run_launcher
    if not isinstance(launcher, SyncPipelineCeleryRunLauncher):
        raise ScaleOutError(
            "this deployment launches runs without a broker: set SYNC_PIPELINE_BROKER_URL (and a PostgreSQL "
            "SYNC_PIPELINE_DATABASE_URL) for the daemon, the API and every worker"
        )
    app = make_app(launcher.app_args())
    create_execute_job_task(app)
    create_resume_job_task(app)
    return app, launcher.default_queue


def start_worker(concurrency: int, queue: str | None, name: str | None, code_modules: list[str]) -> None:
    """Import the code every run needs once, in the worker's main process (its pool processes inherit it through
    fork), then consume the queue. Does not return."""
    import importlib

    for module in code_modules:
        importlib.import_module(module)
    instance = DagsterInstance.get()
    app, default_queue = worker_app(instance)
    hostname = f"{name or 'sync_pipeline'}-{os.getpid()}@{socket.gethostname()}"
    app.worker_main([
        "worker", "--queues", queue or default_queue, "--concurrency", str(concurrency), "--hostname", hostname,
        "--loglevel", "INFO", "--without-gossip", "--without-mingle",
    ])  # fmt: skip
