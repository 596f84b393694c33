"""A run's Dagster materialization metadata, typed: written in one place, read by state, notifications and status.

What a person reads comes first (counts, kind, start, duration); what sync_pipeline needs to resume and to
tell the app (cursor watermark, generation, checkpoints) sits under one key, `sync_pipeline`.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dagster import (
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    AssetRecordsFilter,
    DagsterInstance,
    MetadataValue,
)
from dagster._core.storage.event_log.base import EventLogRecord

from sync_pipeline.keys import make_partition_key
from sync_pipeline.sdk.context import RunLedger
from sync_pipeline.sdk.declaration import SyncDefinition
from sync_pipeline.sdk.runner import RunOutcome
from sync_pipeline.store import StreamKey, encode_cursor, utcnow
from sync_pipeline.vocabulary import BASE_VARIANT, INCREMENTAL, MODE_WEBHOOK, WEBHOOK

INTERNALS = "sync_pipeline"
PAGE = 200


def asset_key(integration: str, model: str) -> AssetKey:
    return AssetKey([integration, model])


@dataclass(frozen=True)
class RunMetadata:
    """What one run, or one provider webhook, did to one model of one partition."""

    connection_id: str
    variant: str
    kind: str  # INITIAL, INCREMENTAL, FULL or WEBHOOK
    mode: str
    started_at: datetime
    added: int
    updated: int
    deleted: int
    total_records: int
    invalid_records: int = 0
    duration_seconds: float | None = None
    low_watermark: str = ""  # the records cursor before the run's first change
    generation: str = ""
    checkpoint: dict[str, Any] | None = None  # where the next run starts
    checkpoint_from: dict[str, Any] | None = None  # where this run started

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.deleted)

    @classmethod
    def of_run(
        cls, outcome: RunOutcome, integration: str, model: str, connection_id: str, variant: str, mode: str
    ) -> "RunMetadata":
        counts = outcome.counts[model]
        return cls(
            connection_id=connection_id,
            variant=variant,
            kind=outcome.kind,
            mode=mode,
            started_at=outcome.started_at,
            added=counts.added,
            updated=counts.updated,
            deleted=counts.deleted,
            total_records=outcome.totals.get(model, 0),
            invalid_records=outcome.invalid.get(model, 0),
            duration_seconds=round((utcnow() - outcome.started_at).total_seconds(), 3),
            low_watermark=encode_cursor(
                outcome.low_watermarks[model], StreamKey(integration, connection_id, model, variant)
            ),
            generation=outcome.generation,
            checkpoint=outcome.checkpoint_to,
            checkpoint_from=outcome.checkpoint_from,
        )

    def to_dagster(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "deleted": self.deleted,
            "total_records": self.total_records,
            "invalid_records": self.invalid_records,
            "run_kind": self.kind,
            "mode": self.mode,
            "started_at": MetadataValue.timestamp(self.started_at),
            **({"duration_seconds": self.duration_seconds} if self.duration_seconds is not None else {}),
            "connection_id": self.connection_id,
            "variant": self.variant,
            INTERNALS: MetadataValue.json(
                {
                    "started_at": self.started_at.isoformat(),  # exact: the app's modifiedAfter
                    "low_watermark": self.low_watermark,
                    "generation": self.generation,
                    "checkpoint": self.checkpoint,
                    "checkpoint_from": self.checkpoint_from,
                }
            ),
        }

    @classmethod
    def from_record(cls, record: EventLogRecord) -> "RunMetadata | None":
        """The metadata of a materialization in the event log, or None for one sync_pipeline did not write."""
        return cls.of_event(record.asset_event) if record.asset_event is not None else None

    @classmethod
    def of_event(cls, event: AssetMaterialization | AssetObservation) -> "RunMetadata | None":
        """The metadata of one materialization, or None for one sync_pipeline did not write."""
        values = {name: entry.value for name, entry in event.metadata.items()}
        if "run_kind" in values and INTERNALS in values:
            internals = values[INTERNALS] or {}
            kind, started_at = values["run_kind"], datetime.fromisoformat(internals["started_at"])
        elif "sync_type" in values and isinstance(values.get("started_at"), str):
            # Written before this layout (flat keys, `sync_type` for the kind): still a partition's history.
            internals, kind, started_at = values, values["sync_type"], datetime.fromisoformat(values["started_at"])
        else:
            return None
        return cls(
            connection_id=str(values.get("connection_id", "")),
            variant=str(values.get("variant", "")),
            kind=str(kind or INCREMENTAL),
            mode=str(values.get("mode", "")),
            started_at=started_at,
            added=int(values.get("added") or 0),
            updated=int(values.get("updated") or 0),
            deleted=int(values.get("deleted") or 0),
            total_records=int(values.get("total_records") or 0),
            invalid_records=int(values.get("invalid_records") or 0),
            duration_seconds=values.get("duration_seconds"),
            low_watermark=str(internals.get("low_watermark") or ""),
            generation=str(internals.get("generation") or ""),
            checkpoint=internals.get("checkpoint") or None,
            checkpoint_from=internals.get("checkpoint_from") or None,
        )


def run_event_fetchers(instance: DagsterInstance) -> tuple[Callable[..., Any], ...]:
    """Where a run's metadata is: a materialization of each model it changed, an observation of each it did not."""
    return (instance.fetch_materializations, instance.fetch_observations)


def run_events(
    instance: DagsterInstance, records_filter: AssetRecordsFilter, *, ascending: bool = False, page: int = PAGE
) -> Iterator[EventLogRecord]:
    """The materializations and observations matching `records_filter`, in storage order (newest first unless
    `ascending`), read `page` at a time: every run of a partition, whether or not it changed records."""
    pages = [_paged(fetch, records_filter, ascending, page) for fetch in run_event_fetchers(instance)]
    yield from heapq.merge(*pages, key=lambda record: record.storage_id, reverse=not ascending)


def _paged(fetch, records_filter: AssetRecordsFilter, ascending: bool, page: int) -> Iterator[EventLogRecord]:
    cursor = None
    while True:
        result = fetch(records_filter, limit=page, cursor=cursor, ascending=ascending)
        yield from result.records
        if not result.has_more:
            return
        cursor = result.cursor


def report_provider_webhook_changes(
    instance: DagsterInstance,
    sync: SyncDefinition,
    connection_id: str,
    ledger: RunLedger,
    started_at: datetime,
    low_watermarks: dict[str, int],
    totals: dict[str, int],
) -> None:
    """Record what a provider webhook changed as a runless materialization per changed model of the base partition.

    The UI shows it, and the notifications sensor turns it into a `syncType: "WEBHOOK"` webhook to the app;
    reading a partition's run state skips it (it has no checkpoint of its own). Downstream automation wakes on it
    as on a run that changed records.
    """
    for model, counts in ledger.counts.items():
        metadata = RunMetadata(
            connection_id=connection_id,
            variant=BASE_VARIANT,
            kind=WEBHOOK,
            mode=MODE_WEBHOOK,
            started_at=started_at,
            added=counts.added,
            updated=counts.updated,
            deleted=counts.deleted,
            total_records=totals.get(model, 0),
            invalid_records=ledger.invalid.get(model, 0),
            low_watermark=encode_cursor(
                low_watermarks[model], StreamKey(sync.integration.name, connection_id, model, BASE_VARIANT)
            ),
        )
        if metadata.changed:
            instance.report_runless_asset_event(
                AssetMaterialization(
                    asset_key=asset_key(sync.integration.name, model),
                    partition=make_partition_key(connection_id, BASE_VARIANT),
                    metadata=metadata.to_dagster(),
                )
            )
