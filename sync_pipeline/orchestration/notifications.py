"""The notifications sensor: a change webhook to the app per model of each sync run (or provider webhook), failures included.

A run's metadata is a materialization of each model it changed and an observation of each it did not (see
`assets.execute_sync`); both are read, and `send_empty` decides whether an unchanged one is sent.

A plain sensor whose cursor is the last event storage id it handled: asset sensors drop events. Enqueueing is
idempotent by a delivery id derived from the event, so a tick that fails before saving its cursor re-sends nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    DagsterInstance,
    DefaultSensorStatus,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)
from dagster._core.event_api import RunStatusChangeRecordsFilter
from dagster._core.storage.event_log.base import EventLogRecord

from sync_pipeline.keys import InvalidPartitionKey, parse_partition_key
from sync_pipeline.orchestration.assets import partition_id
from sync_pipeline.orchestration.failures import run_failure
from sync_pipeline.orchestration.resources import SyncPipelineResource
from sync_pipeline.orchestration.run_metadata import RunMetadata, asset_key, run_event_fetchers
from sync_pipeline.orchestration.state import last_run
from sync_pipeline.sdk.declaration import Registry, SyncDefinition
from sync_pipeline.settings import WebhookSettings
from sync_pipeline.store import PartitionRow, Store, from_iso, utcnow
from sync_pipeline.notifications.delivery import deliver_due
from sync_pipeline.notifications.payloads import SyncSubject, failure_body, success_body
from sync_pipeline.vocabulary import DAGSTER_PARTITION_TAG, EVERY_SENSOR_LOOP, INCREMENTAL, INITIAL, MODE_TAG, RESET_MODES

# The name deployed instances know: a renamed sensor would start from cursor 0 and re-send old events.
SENSOR_NAME = "sync_pipeline_webhooks"
PAGE = 1000  # events read per asset key and tick; the rest come at the next tick
DELIVERY_BUDGET_SECONDS = 30.0  # ticks time out after 60 s
DELIVERY_ID_LIMIT = 64  # the column's width
# On PostgreSQL concurrent runs can commit events out of storage-id order: an event may appear below a
# cursor already read past. Each tick re-reads this many ids behind its cursor; enqueueing is idempotent
# because the delivery log remembers each delivery id. Only events of the last day are taken again: a
# late commit is seconds late (a day also covers a daemon down right after it), and the log forgets
# finished deliveries after a week (see `prune`), after which an old event read again would be re-sent.
LOOKBACK_IDS = 200
LOOKBACK_AGE = timedelta(days=1)


@dataclass
class TickReport:
    cursor: int
    enqueued: int = 0
    delivered: dict[str, int] = field(default_factory=dict)
    pruned: int = 0


def build_notifications_sensor(registry: Registry):
    """The sensor that turns every sync's materializations and run failures into webhooks to the app."""

    @sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=EVERY_SENSOR_LOOP,
        default_status=DefaultSensorStatus.RUNNING,
        description="Sends the app a webhook per model of each finished or failed sync run; retries deliveries.",
    )
    def sync_pipeline_webhooks(context: SensorEvaluationContext, sync_pipeline: SyncPipelineResource) -> SensorResult:
        cursor = int(context.cursor) if context.cursor else 0
        report = run_webhook_tick(context.instance, sync_pipeline.store(), registry, WebhookSettings.from_env(), cursor)
        if report.enqueued or any(report.delivered.values()) or report.pruned:
            context.log.info(
                f"webhooks: {report.enqueued} new; attempts by outcome {report.delivered}; "
                f"{report.pruned} old finished deliveries forgotten"
            )
        return SensorResult(cursor=str(report.cursor))

    return sync_pipeline_webhooks


def run_webhook_tick(
    instance: DagsterInstance,
    store: Store,
    registry: Registry,
    settings: WebhookSettings,
    cursor: int,
    *,
    now: datetime | None = None,
    budget_seconds: float = DELIVERY_BUDGET_SECONDS,
) -> TickReport:
    """Enqueue the webhooks of events after `cursor`, attempt every due delivery, forget old finished ones."""
    log = store.deliveries
    collector = _Collector(instance, store, registry, settings, log)
    report = TickReport(cursor=collector.collect(cursor, now or utcnow()))
    report.enqueued = collector.enqueued
    # Without a given `now`, each step takes its own: what was just enqueued is due to deliver_due.
    report.delivered = deliver_due(
        log, settings.signing_key, trusted_url=settings.trusted_urls, now=now, budget_seconds=budget_seconds
    )
    report.pruned = log.prune(now or utcnow())
    return report


class _Collector:
    """Reads one tick's events and enqueues their webhooks; caches rows and connections for the tick."""

    def __init__(
        self, instance: DagsterInstance, store: Store, registry: Registry, settings: WebhookSettings, log: DeliveryLog
    ) -> None:
        self.instance, self.store, self.settings, self.log = instance, store, settings, log
        self.syncs_by_key: dict[AssetKey, tuple[SyncDefinition, str]] = {
            asset_key(sync.integration.name, model): (sync, model)
            for sync in registry.syncs()
            for model in sync.model_names
        }
        self.syncs_by_job = {sync.qualified_name: sync for sync in registry.syncs()}
        self._rows: dict[str, dict[tuple[str, str], PartitionRow]] = {}
        self._overrides: dict[str, dict[str, str]] = {}
        self._pending: list[tuple[str, str, str, str, int]] = []
        self.enqueued = 0
        self._run_event_fetchers = run_event_fetchers(instance)

    def collect(self, cursor: int, now: datetime) -> int:
        materializations, failures, new_cursor = self._read(cursor)
        if cursor:
            late_materializations, late_failures = self._read_late(cursor, since=(now - LOOKBACK_AGE).timestamp())
            materializations += late_materializations
            failures += late_failures
        for record in materializations:
            if record.storage_id <= new_cursor:
                self._materialization(record)
        for record in failures:
            if record.storage_id <= new_cursor:
                self._failure(record)
        self.enqueued = self.log.enqueue_many(self._pending)
        return new_cursor

    def _read(self, cursor: int) -> tuple[list[EventLogRecord], list[EventLogRecord], int]:
        """Events after `cursor`; the new cursor stops at the end of the shortest truncated page so none is skipped."""
        # A run that changed a model materializes it; one that changed nothing observes it (same metadata).
        batches = [
            fetch(AssetRecordsFilter(asset_key=key, after_storage_id=cursor), limit=PAGE, ascending=True)
            for key in self.syncs_by_key
            for fetch in self._run_event_fetchers
        ]
        # Every job's failures: OSS PostgreSQL storage refuses a job_names filter (SQLite ignores it); _failure filters.
        batches.append(
            self.instance.fetch_run_status_changes(
                RunStatusChangeRecordsFilter(DagsterEventType.RUN_FAILURE, after_storage_id=cursor),
                limit=PAGE,
                ascending=True,
            )
        )
        ends = [batch.records[-1].storage_id for batch in batches if batch.has_more and batch.records]
        seen = [record.storage_id for batch in batches for record in batch.records]
        new_cursor = min(ends) if ends else max(seen, default=cursor)
        records = [record for batch in batches[:-1] for record in batch.records]
        failures = list(batches[-1].records)
        return records, failures, new_cursor

    def _read_late(self, cursor: int, since: float) -> tuple[list[EventLogRecord], list[EventLogRecord]]:
        """Recent events (after the `since` timestamp) with ids just below `cursor`, in case one committed
        after a later one was read."""
        after, before = max(0, cursor - LOOKBACK_IDS), cursor + 1
        materializations = [
            record
            for key in self.syncs_by_key
            for fetch in self._run_event_fetchers
            for record in fetch(
                AssetRecordsFilter(asset_key=key, after_storage_id=after, before_storage_id=before), limit=LOOKBACK_IDS
            ).records
        ]
        failures = self.instance.fetch_run_status_changes(
            RunStatusChangeRecordsFilter(DagsterEventType.RUN_FAILURE, after_storage_id=after, before_storage_id=before),
            limit=LOOKBACK_IDS,
        ).records
        return (
            [record for record in materializations if record.timestamp >= since],
            [record for record in failures if record.timestamp >= since],
        )

    def _materialization(self, record: EventLogRecord) -> None:
        event = record.asset_event
        if event is None or event.partition is None or event.asset_key not in self.syncs_by_key:
            return
        sync, model = self.syncs_by_key[event.asset_key]
        metadata = RunMetadata.from_record(record)
        subject = self._subject(sync, model, event.partition, record.timestamp)
        if subject is None or metadata is None:
            return
        if not metadata.changed and not self.settings.send_empty:
            return
        body = success_body(
            subject,
            sync_type=metadata.kind,
            started_at=metadata.started_at.isoformat(),
            checkpoint_from=metadata.checkpoint_from,
            checkpoint_to=metadata.checkpoint,
            added=metadata.added,
            updated=metadata.updated,
            deleted=metadata.deleted,
        )
        self._enqueue(f"m-{record.storage_id}", subject, body, partition_id(sync, event.partition), record.storage_id)

    def _failure(self, record: EventLogRecord) -> None:
        run_id = record.event_log_entry.run_id
        run_record = next(iter(self.instance.get_run_records(RunsFilter(run_ids=[run_id]), limit=1)), None)
        if run_record is None or run_record.dagster_run.job_name not in self.syncs_by_job:
            return
        run = run_record.dagster_run
        sync = self.syncs_by_job[run.job_name]
        partition = run.tags.get(DAGSTER_PARTITION_TAG)
        started_at = _iso(run_record.start_time or run_record.create_timestamp.timestamp())
        description = self._failure_description(run_id, record)
        sync_type = self._failed_run_type(sync, partition, run.tags.get(MODE_TAG))
        for model in sync.model_names:
            subject = self._subject(sync, model, partition, record.timestamp)
            if subject is None:
                return
            failed_at = _iso(record.timestamp)
            body = failure_body(
                subject, sync_type=sync_type, description=description, started_at=started_at, failed_at=failed_at
            )
            self._enqueue(
                _bounded_id(f"f-{run_id}-{model}"), subject, body, partition_id(sync, partition), record.storage_id
            )

    def _failed_run_type(self, sync: SyncDefinition, partition: str | None, mode: str | None) -> str:
        """INITIAL when the run was a reset or the partition had no successful run (in its current life) before it."""
        if mode in RESET_MODES or partition is None:
            return INITIAL
        row = self._row(sync, partition)
        if row is None:
            return INITIAL
        key = asset_key(sync.integration.name, sync.model_names[0])
        return INITIAL if last_run(self.instance, key, partition, from_iso(row.created_at)) is None else INCREMENTAL

    def _failure_description(self, run_id: str, record: EventLogRecord) -> str:
        """The error's type and message (provider status, URL, cause): see orchestration.failures."""
        return run_failure(self.instance, run_id).description

    def _subject(self, sync: SyncDefinition, model: str, partition: str | None, timestamp: float) -> SyncSubject | None:
        """Who the event is about, or None for an event from before the partition's (re)creation or a removed one."""
        if partition is None:
            return None
        try:
            connection_id, variant = parse_partition_key(partition)
        except InvalidPartitionKey:
            return None
        row = self._row(sync, partition)
        if row is None or timestamp < from_iso(row.created_at).timestamp():
            return None
        return SyncSubject(connection_id, sync.integration.name, sync.name, variant, model)

    def _row(self, sync: SyncDefinition, partition: str) -> PartitionRow | None:
        integration = sync.integration.name
        if integration not in self._rows:
            rows = self.store.partitions.list(integration)
            self._rows[integration] = {(row.sync_name, row.partition_key): row for row in rows}
        return self._rows[integration].get((sync.name, partition))

    def _url(self, subject: SyncSubject) -> str | None:
        if subject.integration not in self._overrides:
            self._overrides[subject.integration] = self.store.connections.webhook_url_overrides(subject.integration)
        return self._overrides[subject.integration].get(subject.connection_id) or self.settings.url

    def _enqueue(self, delivery_id: str, subject: SyncSubject, body: str, partition: str, event_seq: int) -> None:
        """Log a delivery to the app's URL and one to the secondary URL; those of one partition to one URL go
        out in the order of their events' storage ids (a secondary receiver that is down holds up only its own)."""
        for suffix, url in self.settings.destinations(self._url(subject)):
            self._pending.append((_bounded_id(delivery_id + suffix), url, body, partition + suffix, event_seq))


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat()


def _bounded_id(delivery_id: str) -> str:
    """Stable, and within the column: a long id is shortened to a prefix and a hash of the whole."""
    if len(delivery_id) <= DELIVERY_ID_LIMIT:
        return delivery_id
    return delivery_id[:20] + "-" + hashlib.sha256(delivery_id.encode()).hexdigest()[:40]
