"""A sync partition's status for `GET /sync/status`, read from Dagster's runs and materializations."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from dagster import AssetRecordsFilter, DagsterInstance, DagsterRunStatus, RunRecord, RunsFilter
from pydantic import BaseModel

from sync_pipeline.orchestration.assets import partition_id
from sync_pipeline.orchestration.failures import run_failure
from sync_pipeline.orchestration.run_metadata import RunMetadata, asset_key, run_events
from sync_pipeline.orchestration.state import last_run
from sync_pipeline.sdk.declaration import SyncDefinition
from sync_pipeline.store import PartitionRow, RunProgress, Store, from_iso
from sync_pipeline.vocabulary import DAGSTER_PARTITION_TAG, IN_FLIGHT, INCREMENTAL, INITIAL

class ChangeCountsView(BaseModel):
    added: int
    updated: int
    deleted: int


class RetryView(BaseModel):
    """Failed runs in a row, the last one's end, and when the scheduler runs the partition again."""

    failures: int
    lastFailedAt: str
    nextRetryAt: str | None


class SyncErrorView(BaseModel):
    """Why a partition's latest run failed: the error's type and message (provider status, URL, cause)."""

    type: str
    message: str
    run_id: str
    failedAt: str | None


class RunProgressView(BaseModel):
    """What the run in progress did so far, written by the run every few seconds."""

    pages: int
    requests: int
    retries: int
    records_fetched: int
    records_saved: int
    elapsed_seconds: float
    records_per_second: float
    updatedAt: str | None = None


class SyncStatus(BaseModel):
    """One sync partition in `GET /sync/status`, in Nango's shape."""

    id: str
    connection_id: str
    name: str
    variant: str
    type: Literal["INITIAL", "INCREMENTAL"]  # Nango's words: INITIAL until a run succeeded after a reset
    runKind: Literal["INITIAL", "INCREMENTAL", "FULL", "WEBHOOK"] | None  # the latest change's own kind
    status: Literal["RUNNING", "PAUSED", "STOPPED", "SUCCESS", "ERROR"]
    finishedAt: str | None
    nextScheduledSyncAt: str | None
    frequency: str
    latestResult: dict[str, ChangeCountsView]
    latestExecutionStatus: str
    recordCount: dict[str, int]
    checkpoint: dict[str, Any] | None  # the one stored now: where the next run (or a resumed one) starts
    retry: RetryView | None  # set when the last run failed: the scheduler retries it
    error: SyncErrorView | None = None
    progress: RunProgressView | None = None  # while a run is in progress: what it did so far


_FINISHED = {DagsterRunStatus.SUCCESS: "SUCCESS", DagsterRunStatus.FAILURE: "ERROR", DagsterRunStatus.CANCELED: "STOPPED"}


def partition_status(instance: DagsterInstance, store: Store, sync: SyncDefinition, row: PartitionRow) -> dict[str, Any]:
    created = from_iso(row.created_at)
    since = created.timestamp()
    run = next(iter(instance.get_run_records(
        RunsFilter(job_name=sync.qualified_name, tags={DAGSTER_PARTITION_TAG: row.partition_key}), limit=1
    )), None)
    if run is not None and run.create_timestamp.timestamp() < since:
        run = None  # a run of an earlier life of this partition key
    execution = "STOPPED" if run is None else "RUNNING" if run.dagster_run.status in IN_FLIGHT else _FINISHED.get(
        run.dagster_run.status, "ERROR"
    )
    status = "PAUSED" if row.paused and execution != "RUNNING" else execution
    latest = {model: _latest_metadata(instance, sync, model, row.partition_key, since) for model in sync.model_names}
    previous = last_run(instance, asset_key(sync.integration.name, sync.model_names[0]), row.partition_key, created)
    unfinished = store.partitions.progress(sync.integration.name, sync.name, row.partition_key)
    if unfinished is not None and previous is not None and unfinished.generation == previous.generation:
        unfinished = None  # the last run's own row, left by a crash after its materialization: finished
    first = latest[sync.model_names[0]]
    return {
        "id": partition_id(sync, row.partition_key),
        "connection_id": row.connection_id,
        "name": sync.name,
        "variant": row.variant,
        # Nango's clients know two kinds; FULL and WEBHOOK are ours (runKind).
        "type": INITIAL if previous is None or previous.kind == INITIAL else INCREMENTAL,
        "runKind": first.kind if first is not None else next((m.kind for m in latest.values() if m), None),
        "status": status,
        "finishedAt": _iso(run.end_time) if run is not None and run.end_time else None,
        "nextScheduledSyncAt": None if row.paused else row.next_due_at,
        "frequency": sync.frequency_for(row.frequency_seconds, row.frequency_cron).describe(),
        "latestResult": {
            model: {"added": meta.added, "updated": meta.updated, "deleted": meta.deleted}
            for model, meta in latest.items()
            if meta is not None
        },
        "latestExecutionStatus": execution,
        "recordCount": {model: meta.total_records if meta else 0 for model, meta in latest.items()},
        # Where the next run starts: an unfinished (crashed or running) run's, else the last run's.
        "checkpoint": unfinished.checkpoint if unfinished is not None else previous.checkpoint if previous else None,
        "retry": _retry(row),
        # Why the latest run failed (type, message with provider status, URL and cause), else null.
        "error": run_failure(instance, run.dagster_run.run_id).as_dict() if execution == "ERROR" and run else None,
        "progress": _progress(unfinished, run) if execution == "RUNNING" else None,
    }


def _progress(unfinished: RunProgress | None, run: RunRecord | None) -> dict[str, Any] | None:
    """The counts the run in flight wrote so far: none before its first report, and none of a crashed run's
    while its retry waits in the queue (written before the retry was created)."""
    if unfinished is None or not unfinished.progress or unfinished.updated_at is None:
        return None
    if run is None or unfinished.updated_at < run.create_timestamp:
        return None
    return {**unfinished.progress, "updatedAt": unfinished.updated_at.isoformat().replace("+00:00", "Z")}


def _retry(row: PartitionRow) -> dict[str, Any] | None:
    """Failed runs in a row and when the scheduler tries again (also `nextScheduledSyncAt`); None when the
    last run did not fail."""
    if not row.failures:
        return None
    return {"failures": row.failures, "lastFailedAt": row.failed_at, "nextRetryAt": row.retry_at}


def _latest_metadata(
    instance: DagsterInstance, sync: SyncDefinition, model: str, partition: str, since: float
) -> RunMetadata | None:
    """The metadata of the model's newest run or webhook in this partition's current life (a materialization, or
    the observation of a run that changed nothing)."""
    records = run_events(
        instance, AssetRecordsFilter(asset_key=asset_key(sync.integration.name, model), asset_partitions=[partition]), page=1
    )
    newest = next(records, None)
    if newest is None or newest.timestamp < since:
        return None
    return RunMetadata.from_record(newest)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat().replace("+00:00", "Z")
