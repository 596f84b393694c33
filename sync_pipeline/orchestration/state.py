"""A partition's sync state, kept in Dagster's event log: written as metadata, read back at the next run.

A finished run leaves a materialization per model (counts, start time, checkpoint); a run saving a
checkpoint leaves an observation at once, so a crash keeps it. Runless materializations reported for
provider webhooks carry `sync_type = WEBHOOK` and are not runs: they are skipped when reading state.
Events from before the partition's (re)creation belong to an earlier life of the key and are ignored.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from dagster import (
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    AssetRecordsFilter,
    DagsterInstance,
    DataVersion,
    MetadataValue,
)
from dagster._core.definitions.data_version import DATA_VERSION_TAG
from dagster._core.storage.event_log.base import EventLogRecord

from sync_pipeline.keys import BASE_VARIANT, make_partition_key
from sync_pipeline.sdk.context import RunLedger
from sync_pipeline.sdk.declaration import SyncDefinition
from sync_pipeline.sdk.runner import PartitionState, Resume, RunOutcome
from sync_pipeline.store import encode_cursor

WEBHOOK = "WEBHOOK"
PAGE = 50


def asset_key(integration: str, model: str) -> AssetKey:
    return AssetKey([integration, model])


def materialization_metadata(
    outcome: RunOutcome, model: str, connection_id: str, variant: str, mode: str
) -> dict[str, Any]:
    counts = outcome.counts[model]
    return {
        "connection_id": connection_id,
        "variant": variant,
        "sync_type": outcome.sync_type,
        "mode": mode,
        "started_at": outcome.started_at.isoformat(),
        "added": counts.added,
        "updated": counts.updated,
        "deleted": counts.deleted,
        "invalid_records": outcome.invalid.get(model, 0),
        "total_records": outcome.totals.get(model, 0),
        "low_watermark": encode_cursor(outcome.low_watermarks[model]),
        "generation": outcome.generation,
        "checkpoint": MetadataValue.json(outcome.checkpoint_to or {}),
        "checkpoint_from": MetadataValue.json(outcome.checkpoint_from or {}),
    }


def checkpoint_observation(
    key: AssetKey, partition: str, checkpoint: dict[str, Any] | None, generation: str, started_at: datetime
) -> AssetObservation:
    return AssetObservation(
        asset_key=key,
        partition=partition,
        metadata={
            "checkpoint": MetadataValue.json(checkpoint or {}),
            "generation": generation,
            "started_at": started_at.isoformat(),
        },
    )


def read_partition_state(
    instance: DagsterInstance, key: AssetKey, partition: str, created_at: datetime
) -> PartitionState:
    """The last successful run's start and checkpoint, and the checkpoint of an unfinished run after it."""
    since = created_at.timestamp()
    last_run = next(
        (record for record in _materializations(instance, key, partition, since) if _value(record, "sync_type") != WEBHOOK),
        None,
    )
    state = PartitionState()
    if last_run is not None:
        state = PartitionState(
            last_sync_date=datetime.fromisoformat(_value(last_run, "started_at")),
            checkpoint=_value(last_run, "checkpoint") or None,
        )
    observed = instance.fetch_observations(
        AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    ).records
    if observed and observed[0].timestamp >= since and (last_run is None or observed[0].storage_id > last_run.storage_id):
        unfinished = observed[0]
        state = PartitionState(
            last_sync_date=state.last_sync_date,
            checkpoint=state.checkpoint,
            resume=Resume(
                checkpoint=_value(unfinished, "checkpoint") or None,
                generation=_value(unfinished, "generation"),
                started_at=datetime.fromisoformat(_value(unfinished, "started_at")),
            ),
        )
    return state


def _materializations(
    instance: DagsterInstance, key: AssetKey, partition: str, since: float
) -> Iterator[EventLogRecord]:
    """Newest first, stopping at the partition's creation."""
    cursor = None
    while True:
        result = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=PAGE, cursor=cursor
        )
        for record in result.records:
            if record.timestamp < since:
                return
            yield record
        if not result.has_more:
            return
        cursor = result.cursor


def _value(record: EventLogRecord, name: str) -> Any:
    event = record.asset_event
    entry = event.metadata.get(name) if event is not None else None
    return entry.value if entry is not None else None


def report_webhook_changes(
    instance: DagsterInstance,
    sync: SyncDefinition,
    connection_id: str,
    ledger: RunLedger,
    started_at: datetime,
    low_watermarks: dict[str, int],
    totals: dict[str, int],
    data_versions: Mapping[str, DataVersion] | None = None,
) -> None:
    """Record what a provider webhook changed as a runless materialization per changed model of the base partition.

    The UI shows it, and the webhook sensor turns it into a `syncType: "WEBHOOK"` webhook to the app; reading
    a partition's run state skips it (it has no checkpoint of its own). `data_versions` (per model) let
    automation conditions on changed records see it: Dagster ignores a materialization without one.
    """
    outcome = RunOutcome(
        sync_type=WEBHOOK,
        started_at=started_at,
        generation="",
        checkpoint_from=None,
        checkpoint_to=None,
        counts=ledger.counts,
        invalid=ledger.invalid,
        low_watermarks=low_watermarks,
        totals=totals,
    )
    for model, counts in ledger.counts.items():
        if counts.added or counts.updated or counts.deleted:
            instance.report_runless_asset_event(
                AssetMaterialization(
                    asset_key=asset_key(sync.integration.name, model),
                    partition=make_partition_key(connection_id, BASE_VARIANT),
                    metadata=materialization_metadata(outcome, model, connection_id, BASE_VARIANT, "webhook"),
                    tags={DATA_VERSION_TAG: data_versions[model].value} if data_versions and model in data_versions else None,
                )
            )
