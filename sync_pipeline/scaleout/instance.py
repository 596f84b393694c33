"""The instance's `run_launcher:` and `compute_logs:` blocks for scale-out mode, rendered when a broker is set."""

from __future__ import annotations

import os
import re

from sqlalchemy.engine import make_url

BROKER_VARIABLE = "SYNC_PIPELINE_BROKER_URL"
QUEUE_VARIABLE = "SYNC_PIPELINE_QUEUE"
DEFAULT_QUEUE = "sync_pipeline"  # our own queue, apart from dagster-celery's default "dagster" on a shared broker
BROKER_SCHEMES = ("amqp", "pyamqp", "amqps", "redis", "rediss")
MAX_RUNS_VARIABLE = "SYNC_PIPELINE_MAX_CONCURRENT_RUNS"
# Slots of Dagster's run queue with workers: a small run holds its slot about a second, so the slots, not the
# workers, bound syncs a minute (8 carried 351-424 a minute on 2 workers x 2, 64 carried 607-762).
DEFAULT_MAX_RUNS = 64
# Runs beyond the workers' pool processes wait in the broker, STARTING, and run monitoring fails a run that
# has not started within start_timeout_seconds: with workers it allows an hour of waiting behind long syncs.
# (A run whose message is lost -- a worker killed between taking it and starting it -- waits that long too.)
START_TIMEOUT_SECONDS = 3600


class ScaleOutError(ValueError):
    """Scale-out mode is misconfigured (a broker we cannot use, or storage workers cannot share)."""


def broker_url() -> str | None:
    """SYNC_PIPELINE_BROKER_URL, checked; None when unset (the embedded default: runs in subprocesses)."""
    url = os.environ.get(BROKER_VARIABLE, "").strip()
    if not url:
        return None
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in BROKER_SCHEMES:
        raise ScaleOutError(
            f"{BROKER_VARIABLE} must be a RabbitMQ (amqp://user:pass@host:5672//) or Redis (redis://host:6379/0) URL, "
            f"not {scheme + '://...' if scheme else 'this value'}"
        )
    return url


def queue_name() -> str:
    return os.environ.get(QUEUE_VARIABLE, "").strip() or DEFAULT_QUEUE


def results_backend(database_url: str) -> str:
    """Celery's task states (STARTED, SUCCESS, FAILURE: what run monitoring asks about) in the shared PostgreSQL."""
    return "db+" + database_url


def check_shared_storage(database_url: str | None) -> str:
    """Workers on other machines share Dagster's storage and the records cache: only PostgreSQL can be shared."""
    if not database_url or make_url(database_url).get_backend_name() != "postgresql":
        raise ScaleOutError(
            f"{BROKER_VARIABLE} is set, but the database is SQLite: Celery workers share Dagster's storage and the "
            "records cache with the daemon and the API, which needs PostgreSQL. Set SYNC_PIPELINE_DATABASE_URL="
            f"postgresql://user:pass@host:5432/db, or unset {BROKER_VARIABLE} to run everything on this machine."
        )
    return database_url


def render_scaleout_yaml(instance_yaml: str, database_url: str | None) -> str:
    """The instance's dagster.yaml in scale-out mode: the run queue's slots and start timeout for workers, and
    the run launcher's blocks appended (unchanged without a broker). Values stay `env:` references where they
    are secrets (the broker and database URLs carry passwords), so dagster.yaml never holds them."""
    if broker_url() is None:
        return instance_yaml
    check_shared_storage(database_url)
    for key, value in (("max_concurrent_runs", max_concurrent_runs()), ("start_timeout_seconds", START_TIMEOUT_SECONDS)):
        instance_yaml = _replace_setting(instance_yaml, key, value)
    return instance_yaml + RUN_LAUNCHER.format(queue=queue_name(), broker_variable=BROKER_VARIABLE)


def max_concurrent_runs() -> int:
    """SYNC_PIPELINE_MAX_CONCURRENT_RUNS, checked, else DEFAULT_MAX_RUNS."""
    text = os.environ.get(MAX_RUNS_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MAX_RUNS
    if not text.isdigit() or int(text) < 1:
        raise ScaleOutError(f"{MAX_RUNS_VARIABLE} must be a whole number of runs of at least 1, not {text!r}")
    return int(text)


def _replace_setting(instance_yaml: str, key: str, value: int) -> str:
    """dagster.yaml's one `key: <number>` line with `value`, the file's other lines and comments as they are (it is
    the documentation); the line's own comment becomes a note that scale-out mode set it."""
    line = re.compile(rf"^( +{key}: )\d+( *#.*)?$", re.MULTILINE)
    replaced, count = line.subn(rf"\g<1>{value}  # set for scale-out mode (docs/deploy.md)", instance_yaml)
    if count != 1:
        raise ScaleOutError(f"dagster.yaml must set {key} on one line of its own to run with workers")
    return replaced


# dagster-celery's CeleryRunLauncher, subclassed (sync_pipeline.scaleout.launcher) for two things: its results
# backend is built from SYNC_PIPELINE_DATABASE_URL (an `env:` reference cannot add the "db+" Celery needs), and
# its health check also notices a worker that died as a whole, which never reports its task's end.
RUN_LAUNCHER = """
# Scale-out mode (SYNC_PIPELINE_BROKER_URL is set): runs go through the broker to `sync-pipeline worker`
# processes, which keep sync_pipeline's code loaded instead of starting a Python process per run.
run_launcher:
  module: sync_pipeline.scaleout.launcher
  class: SyncPipelineCeleryRunLauncher
  config:
    broker:
      env: {broker_variable}
    default_queue: {queue}

# A run's stdout and stderr would be captured into files on the worker's own disk, out of the webserver's reach
# on another machine, by a `tail` and a Python watcher process started per run step: a fifth of a small run's
# time. The run's logs stay in the event log (the UI's run page); only the raw stdout/stderr tab is empty.
compute_logs:
  module: dagster._core.storage.noop_compute_log_manager
  class: NoOpComputeLogManager
"""
