"""A partition's sync state: the last run's materialization in Dagster's event log, and the store's unfinished run.

A finished run leaves a materialization per model, or an observation when it changed nothing (counts, start time,
checkpoint: see `run_metadata`); a
run saving a checkpoint records it in the store at once, so a crash keeps it. Runless materializations
reported for provider webhooks are not runs: they are skipped when reading state. Events from before the
partition's (re)creation belong to an earlier life of the key and are ignored.
"""

from __future__ import annotations

from datetime import datetime

from dagster import AssetKey, AssetRecordsFilter, DagsterInstance

from sync_pipeline.orchestration.run_metadata import RunMetadata, run_events
from sync_pipeline.sdk.runner import PartitionState, Resume
from sync_pipeline.store import RunProgress
from sync_pipeline.vocabulary import WEBHOOK


def last_run(instance: DagsterInstance, key: AssetKey, partition: str, created_at: datetime) -> RunMetadata | None:
    """The metadata of the partition's last finished run in its current life (provider webhooks skipped)."""
    # Pages of 10: the newest event is nearly always the last run (webhook events can come after it).
    for record in run_events(instance, AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), page=10):
        if record.timestamp < created_at.timestamp():
            return None  # an earlier life of the partition key: events are newest first
        metadata = RunMetadata.from_record(record)
        if metadata is not None and metadata.kind != WEBHOOK:
            return metadata
    return None


def read_partition_state(
    instance: DagsterInstance, key: AssetKey, partition: str, created_at: datetime, progress: RunProgress | None
) -> PartitionState:
    """The last successful run's start and checkpoint, and the unfinished run after it to resume."""
    previous = last_run(instance, key, partition, created_at)
    resume = None
    if progress is not None and (previous is None or progress.generation != previous.generation):
        resume = Resume(checkpoint=progress.checkpoint, generation=progress.generation, started_at=progress.started_at)
    if previous is None:
        return PartitionState(resume=resume)
    return PartitionState(last_sync_date=previous.started_at, checkpoint=previous.checkpoint, resume=resume)
