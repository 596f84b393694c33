"""A sync partition's status for `GET /sync/status`, read from Dagster's runs and materializations."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from dagster import AssetRecordsFilter, DagsterInstance, DagsterRunStatus, RunsFilter
from pydantic import BaseModel

from sync_pipeline.orchestration.assets import partition_id
from sync_pipeline.orchestration.failures import run_failure
from sync_pipeline.orchestration.run_metadata import RunMetadata, asset_key, run_events
from sync_pipeline.orchestration.state import last_run
from sync_pipeline.sdk.declaration import SyncDefinition
from sync_pipeline.store import PartitionRow, from_iso
from sync_pipeline.vocabulary import DAGSTER_PARTITION_TAG, IN_FLIGHT

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


class SyncStatus(BaseModel):
    """One sync partition in `GET /sync/status`, in Nango's shape."""

    id: str
    connection_id: str
    name: str
    variant: str
    type: str
    status: Literal["RUNNING", "PAUSED", "STOPPED", "SUCCESS", "ERROR"]
    finishedAt: str | None
    nextScheduledSyncAt: str | None
    frequency: str
    latestResult: dict[str, ChangeCountsView]
    latestExecutionStatus: str
    recordCount: dict[str, int]
    checkpoint: dict[str, Any] | None
    retry: RetryView | None  # set when the last run failed: the scheduler retries it
    error: SyncErrorView | None = None


_FINISHED = {DagsterRunStatus.SUCCESS: "SUCCESS", DagsterRunStatus.FAILURE: "ERROR", DagsterRunStatus.CANCELED: "STOPPED"}


def partition_status(instance: DagsterInstance, sync: SyncDefinition, row: PartitionRow) -> dict[str, Any]:
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
    first = latest[sync.model_names[0]]
    return {
        "id": partition_id(sync, row.partition_key),
        "connection_id": row.connection_id,
        "name": sync.name,
        "variant": row.variant,
        "type": first.kind if first is not None else sync.sync_type.upper(),
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
        "checkpoint": previous.checkpoint if previous is not None else None,
        "retry": _retry(row),
        # Why the latest run failed (type, message with provider status, URL and cause), else null.
        "error": run_failure(instance, run.dagster_run.run_id).as_dict() if execution == "ERROR" and run else None,
    }


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
