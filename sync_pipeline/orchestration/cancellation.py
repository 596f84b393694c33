"""Stopping a partition's run in progress when a `reset` trigger replaces it (Dagster run termination).

A queued run is canceled in the queue; a started one is terminated by its run launcher. Either way the run is
tagged with why, and the run itself checks its status (sdk/deadline.py): a run its launcher cannot interrupt
(one executed in process) still stops at its next request, page or save, failing with that reason.
"""

from __future__ import annotations

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from sync_pipeline.sdk.declaration import SyncDefinition
from sync_pipeline.vocabulary import CANCELED_BY_TAG, DAGSTER_PARTITION_TAG, IN_FLIGHT

STOPPING = (DagsterRunStatus.CANCELING, DagsterRunStatus.CANCELED)


def cancel_partition_runs(instance: DagsterInstance, sync: SyncDefinition, partition_key: str, reason: str) -> list[str]:
    """Cancel the partition's queued and started runs; returns their run ids."""
    records = instance.get_run_records(
        RunsFilter(job_name=sync.qualified_name, statuses=list(IN_FLIGHT), tags={DAGSTER_PARTITION_TAG: partition_key})
    )
    stopped = []
    for record in records:
        run = record.dagster_run
        if run.status == DagsterRunStatus.CANCELING:
            continue  # already on its way out
        instance.add_run_tags(run.run_id, {CANCELED_BY_TAG: reason})
        # Queued: canceled at once. Started: terminated; a launcher that cannot reach the run leaves it
        # CANCELING, which the run notices itself (stop_reason), and run monitoring ends after its timeout.
        instance.run_coordinator.cancel_run(run.run_id)
        stopped.append(run.run_id)
    return stopped


def stop_reason(instance: DagsterInstance, run_id: str) -> str | None:
    """Why this run should stop now: it was canceled (by a reset trigger, or in Dagster); None while it may go on."""
    run = instance.get_run_by_id(run_id)
    if run is None or run.status not in STOPPING:
        return None
    return run.tags.get(CANCELED_BY_TAG) or "the run was canceled"
