"""`sync-pipeline worker`: a Celery worker with dagster-celery's run tasks and sync_pipeline's code loaded once."""

from __future__ import annotations

import os
import socket
from functools import cache

from celery import Celery
from dagster import DagsterInstance
from dagster._cli.api import _execute_run_command_body, _resume_run_command_body
from dagster._grpc.types import ExecuteRunArgs, ResumeRunArgs
from dagster._serdes import unpack_value
from dagster_celery.config import TASK_EXECUTE_JOB_NAME, TASK_RESUME_JOB_NAME
from dagster_celery.make_app import make_app

from sync_pipeline.scaleout.instance import ScaleOutError
from sync_pipeline.scaleout.launcher import SyncPipelineCeleryRunLauncher
from sync_pipeline.sdk.http import shared_ssl_context


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
    _register_run_tasks(app)
    return app, launcher.default_queue


@cache
def _process_instance() -> DagsterInstance:
    """One instance per pool process, kept across its runs (with its pooled connections), where dagster-celery's
    tasks open and dispose of one per run."""
    return DagsterInstance.get()


def _register_run_tasks(app: Celery) -> None:
    """dagster-celery's execute_job and resume_job tasks (same names and arguments, as its launcher sends them),
    run on the pool process's instance."""

    @app.task(name=TASK_EXECUTE_JOB_NAME, track_started=True)
    def execute_job(execute_job_args_packed) -> int:
        args = unpack_value(execute_job_args_packed, as_type=ExecuteRunArgs)
        return _execute_run_command_body(
            instance=_process_instance(), run_id=args.run_id, write_stream_fn=_discard,
            set_exit_code_on_failure=args.set_exit_code_on_failure is not False,
        )  # fmt: skip

    @app.task(name=TASK_RESUME_JOB_NAME, track_started=True)
    def resume_job(execute_job_args_packed) -> int:
        args = unpack_value(execute_job_args_packed, as_type=ResumeRunArgs)
        return _resume_run_command_body(
            instance=_process_instance(), run_id=args.run_id, write_stream_fn=_discard,
            set_exit_code_on_failure=args.set_exit_code_on_failure is not False,
        )  # fmt: skip


def _discard(_event) -> None:
    pass


def start_worker(concurrency: int, queue: str | None, name: str | None, code_modules: list[str]) -> None:
    """Import the code every run needs once, in the worker's main process (its pool processes inherit it through
    fork), then consume the queue. Does not return."""
    import importlib

    for module in code_modules:
        importlib.import_module(module)
    # Loading certifi's CA bundle took each pool process half a second in its first run (py-spy); loaded here,
    # it is inherited through fork, as the code is. A context holds no connection, so sharing it is safe.
    shared_ssl_context()
    instance = DagsterInstance.get()
    try:
        app, default_queue = worker_app(instance)
    finally:
        instance.dispose()  # its pooled connections must not be shared with the forked pool processes
    hostname = f"{name or 'sync_pipeline'}-{os.getpid()}@{socket.gethostname()}"
    app.worker_main([
        "worker", "--queues", queue or default_queue, "--concurrency", str(concurrency), "--hostname", hostname,
        "--loglevel", "INFO", "--without-gossip", "--without-mingle",
    ])  # fmt: skip
