"""`sync-pipeline worker`: executes runs from the broker in scale-out mode (SYNC_PIPELINE_BROKER_URL)."""

from __future__ import annotations

import os

import click

from sync_pipeline.cli.processes import configured_broker, prepare_environment

# Imported before the pool forks, so each run finds its job's code loaded instead of importing it (about 1.3 s).
CODE_MODULES = ["sync_pipeline.definitions"]


@click.command()
@click.option("--concurrency", default=None, type=click.IntRange(min=1),
              help="Runs at once in this worker (default: the machine's CPU count).")
@click.option("--queue", default=None, help="The queue to take runs from (default: the run launcher's, sync_pipeline).")
@click.option("--name", default=None, help="The worker's name in Celery (default: sync_pipeline-<pid>@<host>).")
def worker(concurrency: int | None, queue: str | None, name: str | None) -> None:
    """Execute runs taken from the broker: start as many as needed, on any machine with the package, the same
    environment (SYNC_PIPELINE_BROKER_URL, SYNC_PIPELINE_DATABASE_URL, keys) and access to both."""
    from sync_pipeline.scaleout import BROKER_VARIABLE

    if not configured_broker():
        raise click.UsageError(f"a worker needs a broker: set {BROKER_VARIABLE} (amqp://... or redis://...)")
    prepare_environment()  # renders the Dagster home (the launcher's settings) and migrates, under the lock
    from sync_pipeline.scaleout.instance import ScaleOutError
    from sync_pipeline.scaleout.worker import start_worker

    try:
        start_worker(concurrency or os.cpu_count() or 1, queue, name, CODE_MODULES)
    except ScaleOutError as error:
        raise click.ClickException(str(error)) from None
