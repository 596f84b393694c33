"""The scheduling sensor: one sensor for every sync, requesting runs for partitions that are due, triggered,
or waiting to retry a failed run (see retries.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from dagster import (
    DagsterInstance,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from sync_pipeline.keys import InvalidPartitionKey, parse_partition_key
from sync_pipeline.orchestration.assets import partition_id, run_tags
from sync_pipeline.orchestration.resources import SyncPipelineResource
from sync_pipeline.orchestration.retries import learn_run_outcomes
from sync_pipeline.sdk.declaration import Registry, SyncDefinition
from sync_pipeline.store import PartitionRow, Store, from_iso, utcnow
from sync_pipeline.vocabulary import DAGSTER_PARTITION_TAG, EVERY_SENSOR_LOOP, IN_FLIGHT, MODE_INCREMENTAL

SENSOR_NAME = "sync_pipeline_scheduler"
# A row written just before its Dagster partition (lifecycle.add_partition writes the row first) is not orphaned yet.
ORPHAN_GRACE = timedelta(seconds=60)


@dataclass(frozen=True)
class Tick:
    """What one evaluation decided, for logs and tests."""

    requests: list[RunRequest]
    added_rows: int
    removed_rows: int
    in_flight_skipped: int
    cursor: int = 0  # the last run status event read
    retries_scheduled: int = 0


def build_scheduling_sensor(registry: Registry, jobs: Sequence[UnresolvedAssetJobDefinition]):
    """One sensor for all syncs of `registry`, targeting their jobs."""

    @sensor(
        name=SENSOR_NAME,
        jobs=list(jobs),
        minimum_interval_seconds=EVERY_SENSOR_LOOP,
        default_status=DefaultSensorStatus.RUNNING,
        description="Requests a run for each sync partition that is due, never ran (auto_start) or was triggered.",
    )
    def sync_pipeline_scheduler(context: SensorEvaluationContext, sync_pipeline: SyncPipelineResource) -> SensorResult:
        cursor = int(context.cursor) if context.cursor else 0
        tick = evaluate_schedule(context.instance, sync_pipeline.store(), registry, utcnow(), cursor=cursor)
        if tick.added_rows or tick.removed_rows or tick.in_flight_skipped or tick.retries_scheduled:
            context.log.info(
                f"partitions: {tick.added_rows} added, {tick.removed_rows} removed; "
                f"{tick.in_flight_skipped} due but still running; {tick.retries_scheduled} failed runs to retry"
            )
        return SensorResult(run_requests=tick.requests, cursor=str(tick.cursor))

    return sync_pipeline_scheduler


def evaluate_schedule(
    instance: DagsterInstance, store: Store, registry: Registry, now: datetime, *, cursor: int = 0
) -> Tick:
    """Reconcile partitions, schedule retries of runs that failed after `cursor`, then request (and mark
    requested) every due partition without a run in flight."""
    syncs = {(sync.integration.name, sync.name): sync for sync in registry.syncs()}
    existing, added, removed = reconcile_partitions(instance, store, list(syncs.values()), now)
    cursor, retries = learn_run_outcomes(instance, store, {s.qualified_name: s for s in syncs.values()}, cursor)
    busy = runs_in_flight(instance, {sync.qualified_name for sync in syncs.values()})
    requests, skipped = [], 0
    for row in store.partitions.due(now):
        sync = syncs.get((row.integration, row.sync_name))
        if sync is None or (sync.qualified_name, row.partition_key) not in existing:
            continue  # an integration no longer loaded, or a row whose Dagster partition is not (or no longer) there
        if (sync.qualified_name, row.partition_key) in busy:
            skipped += 1  # a pending trigger or due time stays for a later tick
            continue
        requests.append(run_request(sync, row))
        next_due = sync.frequency_for(row.frequency_seconds, row.frequency_cron).next_due(now)
        store.partitions.mark_requested(row, next_due)
    return Tick(requests, added, removed, skipped, cursor, retries)


def run_request(sync: SyncDefinition, row: PartitionRow) -> RunRequest:
    """A trigger's mode, else a pending retry's (the failed run's), else incremental."""
    mode = row.trigger_mode or row.retry_mode or MODE_INCREMENTAL
    # Unique per request: the daemon drops a run_key it has seen, so a later due time or trigger needs a new one.
    moment = row.triggered_at if row.trigger_mode else row.next_due_at
    return RunRequest(
        job_name=sync.qualified_name,
        partition_key=row.partition_key,
        run_key=f"{partition_id(sync, row.partition_key)}/{mode}@{moment}",
        tags=run_tags(sync, row.connection_id, row.variant, mode),
    )


def reconcile_partitions(
    instance: DagsterInstance, store: Store, syncs: list[SyncDefinition], now: datetime
) -> tuple[set[tuple[str, str]], int, int]:
    """Give partitions added straight through Dagster a schedule row; drop rows whose partition is gone.

    Returns the (job name, partition key) of every Dagster partition, and how many rows were added and removed.
    """
    existing: set[tuple[str, str]] = set()
    added = removed = 0
    rows: dict[tuple[str, str], dict[str, PartitionRow]] = {}
    for integration in {sync.integration.name for sync in syncs}:  # one query per integration, not per sync
        for row in store.partitions.list(integration):
            rows.setdefault((integration, row.sync_name), {})[row.partition_key] = row
    for sync in syncs:
        known = rows.get((sync.integration.name, sync.name), {})
        keys = set(instance.get_dynamic_partitions(sync.qualified_name))
        existing.update((sync.qualified_name, key) for key in keys)
        added += sum(1 for key in keys - known.keys() if _ensure(store, sync, key, now))
        for key in known.keys() - keys:
            if now - from_iso(known[key].created_at) > ORPHAN_GRACE:
                store.partitions.remove(sync.integration.name, sync.name, key)
                removed += 1
    return existing, added, removed


def _ensure(store: Store, sync: SyncDefinition, key: str, now: datetime) -> bool:
    try:
        connection_id, variant = parse_partition_key(key)
    except InvalidPartitionKey:
        return False  # not ours to schedule: a run of it would fail with the reason anyway
    store.partitions.ensure(sync.integration.name, sync.name, connection_id, variant, now, due_now=sync.auto_start)
    return True


def runs_in_flight(instance: DagsterInstance, job_names: set[str]) -> set[tuple[str, str]]:
    """(job name, partition key) of every queued or running sync run, in one query."""
    records = instance.get_run_records(RunsFilter(statuses=list(IN_FLIGHT)))
    return {
        (record.dagster_run.job_name, record.dagster_run.tags.get(DAGSTER_PARTITION_TAG))
        for record in records
        if record.dagster_run.job_name in job_names
    }
