"""dagster-celery's CeleryRunLauncher: task states in our PostgreSQL (old ones forgotten), dead workers noticed."""

from __future__ import annotations

import logging
import time
from threading import Lock

from dagster import DagsterRun
from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, WorkerStatus
from dagster_celery.launcher import CeleryRunLauncher
from dagster_celery.tags import DAGSTER_CELERY_TASK_ID_TAG

from sync_pipeline.scaleout.instance import results_backend
from sync_pipeline.scaleout.task_states import LIMIT, forget_old_task_states
from sync_pipeline.settings import database_url
from sync_pipeline.vocabulary import WORKER_LOST_TAG

PING_SECONDS = 2.0  # how long the workers get to answer a ping
PING_TTL = 5.0  # one ping of all workers serves every started run checked within this long
SILENT_PINGS = 2  # a worker that missed this many pings in a row is gone
CLEANUP_EVERY_SECONDS = 3600.0  # old task states are forgotten at most this often (each launch adds one)
CLEANUP_RETRY_SECONDS = 60.0  # after a cleanup that failed (the database away for a moment)

log = logging.getLogger(__name__)

# Celery settings of both sides (the launcher's producer and `sync-pipeline worker`).
CELERY_SETTINGS = {
    # A worker takes one run at a time per pool process: a run waiting in a worker's prefetch buffer cannot be
    # taken by an idle worker, and dies with its worker.
    "worker_prefetch_multiplier": 1,
    # Publishing to a broker that is down fails the launch within seconds (the daemon fails the run, and the
    # scheduler retries the partition) rather than blocking the daemon's queue.
    "broker_connection_timeout": 4,
    "broker_transport_options": {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1},
    "result_extended": False,
    "worker_hijack_root_logger": False,
    "worker_redirect_stdouts": False,  # the runs' Dagster logs reach the terminal as they are, not as WARNINGs
    "broker_connection_retry_on_startup": True,
}


class SyncPipelineCeleryRunLauncher(CeleryRunLauncher):
    """Runs as Celery tasks on our queue. Celery records STARTED when a worker takes a run and FAILURE when the
    worker's pool process dies; a worker killed as a whole (its main process too) records nothing, so a run
    whose task is STARTED on a worker that no longer answers a ping is reported failed to run monitoring."""

    def __init__(self, default_queue: str, backend: str | None = None, config_source: dict | None = None, **kwargs) -> None:
        backend = backend if backend not in (None, "rpc://") else results_backend(database_url())
        super().__init__(default_queue=default_queue, backend=backend, config_source={**CELERY_SETTINGS, **(config_source or {})}, **kwargs)
        self._pong_lock = Lock()
        self._pinged_at = 0.0
        self._silence: dict[str, int] = {}
        self._cleanup_lock = Lock()
        self._cleanup_due = 0.0  # monotonic; the daemon's first launch cleans up

    def launch_run(self, context: LaunchRunContext) -> None:
        super().launch_run(context)
        # Each launch adds a row to celery_taskmeta: the process that adds them (the daemon) forgets old ones,
        # after publishing, so the run is not held up.
        self._forget_old_task_states_when_due()

    def _forget_old_task_states_when_due(self) -> None:
        """At most hourly, and by one of the daemon's launching threads at a time (the others do not wait)."""
        if time.monotonic() < self._cleanup_due or not self._cleanup_lock.acquire(blocking=False):
            return
        try:
            removed = forget_old_task_states(self.celery.backend)
            # A call that reached its limit left more behind: the next launch goes on with it.
            self._cleanup_due = time.monotonic() + (0.0 if removed >= LIMIT else CLEANUP_EVERY_SECONDS)
            if removed:
                log.info("forgot %d Celery task states older than result_expires", removed)
        except Exception:  # noqa: BLE001 (the run is published: failing its launch now would run it twice)
            self._cleanup_due = time.monotonic() + CLEANUP_RETRY_SECONDS
            log.warning("could not forget old Celery task states; trying again later", exc_info=True)
        finally:
            self._cleanup_lock.release()

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        result = super().check_run_worker_health(run)
        if result.status == WorkerStatus.FAILED:
            # The run is still STARTED (the monitor asks about no other), so its task did not end through Dagster:
            # the pool process running it died (WorkerLostError).
            self._instance.add_run_tags(run.run_id, {WORKER_LOST_TAG: "pool process"})  # retried at once
            return result
        if result.status != WorkerStatus.RUNNING:
            return result
        info = self.celery.AsyncResult(run.tags[DAGSTER_CELERY_TASK_ID_TAG]).info
        hostname = info.get("hostname") if isinstance(info, dict) else None
        if hostname and self._silent_pings(hostname) >= SILENT_PINGS:
            self._instance.add_run_tags(run.run_id, {WORKER_LOST_TAG: hostname})  # retried at once (retries.py)
            return CheckRunHealthResult(WorkerStatus.FAILED, f"Celery worker {hostname} running this run stopped answering")
        return result

    def _silent_pings(self, hostname: str) -> int:
        """How many pings in a row `hostname` left unanswered (one lost reply is not a dead worker)."""
        with self._pong_lock:
            if time.monotonic() - self._pinged_at > PING_TTL:
                # With the broker unreachable the ping raises (its connection cut, or refused) before counting
                # anything: run monitoring logs the error and no worker is held silent for the outage
                # (test_broker_down.py's run executing while the broker is down).
                replies = self.celery.control.ping(timeout=PING_SECONDS) or []
                answered = {name for reply in replies for name in reply}
                self._pinged_at = time.monotonic()
                self._silence = {name: 0 if name in answered else count + 1 for name, count in self._silence.items()}
                self._silence.setdefault(hostname, 0 if hostname in answered else 1)
                for name in answered:
                    self._silence[name] = 0
            return self._silence.get(hostname, 0)
