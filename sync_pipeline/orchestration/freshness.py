"""Freshness of each sync asset: an asset check that fails while a partition has gone unsynced for twice its frequency.

Dagster's `build_last_update_freshness_checks` looks at an asset's latest materialization, not at each
dynamic partition, so this check is ours: per partition (paused ones excepted) the last successful run
(a materialization, or the observation of a run that changed nothing, that is not a provider webhook's) must be within twice the partition's frequency;
a partition never synced is overdue once it is that old. One result per asset names the overdue partitions.

A sensor evaluates the checks every minute and records each result without a run (runs cost seconds);
it records a result when it changes, and at least hourly. The checks can also be executed from the UI.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dagster import (
    AssetCheckEvaluation,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetChecksDefinition,
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    DefaultSensorStatus,
    MetadataValue,
    SensorEvaluationContext,
    SensorResult,
    multi_asset_check,
    sensor,
)

from sync_pipeline.orchestration.resources import SyncPipelineResource
from sync_pipeline.orchestration.run_metadata import RunMetadata, asset_key, run_events
from sync_pipeline.sdk.declaration import Registry, SyncDefinition
from sync_pipeline.store import Store, from_iso, to_iso, utcnow
from sync_pipeline.vocabulary import WEBHOOK

CHECK_NAME = "synced_within_twice_its_frequency"
SENSOR_NAME = "sync_pipeline_freshness"
EVALUATE_EVERY_SECONDS = 60
REPORT_AT_LEAST_EVERY = timedelta(hours=1)
LISTED = 50  # overdue partitions named in a result; the count covers them all


@dataclass
class Freshness:
    """One sync's freshness now: which partitions are overdue, of how many checked."""

    checked: int = 0
    paused: int = 0
    # partition -> its last successful sync (ISO), or None when none within the window (or ever)
    overdue: dict[str, str | None] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.overdue

    def metadata(self) -> dict[str, MetadataValue]:
        listed = dict(sorted(self.overdue.items())[:LISTED])
        return {
            "partitions_checked": MetadataValue.int(self.checked),
            "partitions_paused": MetadataValue.int(self.paused),
            "partitions_overdue": MetadataValue.int(len(self.overdue)),
            "overdue": MetadataValue.json({key: last or "none within the window" for key, last in listed.items()}),
        }

    def description(self, sync: SyncDefinition) -> str:
        if self.passed:
            return f"every active partition of {sync.qualified_name} synced within twice its frequency"
        names = ", ".join(sorted(self.overdue)[:5]) + (" ..." if len(self.overdue) > 5 else "")
        return f"{len(self.overdue)} partition(s) not synced within twice their frequency: {names}"


def evaluate_freshness(instance: DagsterInstance, store: Store, sync: SyncDefinition, now: datetime) -> Freshness:
    """Which of `sync`'s partitions are overdue at `now` (the first model's runs stand for the sync's)."""
    rows = store.partitions.list(sync.integration.name, sync.name)
    active = [row for row in rows if not row.paused]
    result = Freshness(checked=len(active), paused=len(rows) - len(active))
    if not active:
        return result
    windows = {row.partition_key: 2 * sync.frequency_for(row.frequency_seconds, row.frequency_cron).seconds for row in active}
    since = now - timedelta(seconds=max(windows.values()))
    last = _last_successful_runs(instance, asset_key(sync.integration.name, sync.model_names[0]), since)
    for row in active:
        deadline = now - timedelta(seconds=windows[row.partition_key])
        created = from_iso(row.created_at)
        synced = last.get(row.partition_key)
        if synced is not None and synced < created:
            synced = None  # a run of an earlier life of this partition key
        # A partition never synced has twice its frequency after its creation for its first run.
        if (synced or created) < deadline:
            result.overdue[row.partition_key] = synced.isoformat() if synced else None
    return result


def _last_successful_runs(instance: DagsterInstance, key: AssetKey, since: datetime) -> dict[str, datetime]:
    """Per partition, when its newest run since `since` was recorded (whether it changed records or not;
    provider webhooks skipped)."""
    latest: dict[str, datetime] = {}
    for record in run_events(instance, AssetRecordsFilter(asset_key=key, after_timestamp=since.timestamp()), ascending=True):
        event = record.asset_event
        run = RunMetadata.of_event(event) if event is not None and event.partition is not None else None
        if run is None or run.kind == WEBHOOK:
            continue
        latest[event.partition] = datetime.fromtimestamp(record.timestamp, tz=since.tzinfo)  # oldest first: the newest stays
    return latest


def check_results(sync: SyncDefinition, freshness: Freshness) -> list[AssetCheckResult]:
    return [
        AssetCheckResult(
            asset_key=asset_key(sync.integration.name, model),
            check_name=CHECK_NAME,
            passed=freshness.passed,
            severity=AssetCheckSeverity.WARN,
            metadata=freshness.metadata(),
            description=freshness.description(sync),
        )
        for model in sync.model_names
    ]


def build_freshness_checks(sync: SyncDefinition) -> AssetChecksDefinition:
    """The freshness check of each of `sync`'s assets, runnable from the UI (the sensor records it without a run)."""
    specs = [
        AssetCheckSpec(
            CHECK_NAME,
            asset=asset_key(sync.integration.name, model),
            description=f"Every active partition synced successfully within twice its frequency ({sync.frequency} "
            "unless set per partition).",
        )
        for model in sync.model_names
    ]

    @multi_asset_check(specs=specs, name=f"{sync.qualified_name}_freshness", required_resource_keys={"sync_pipeline"})
    def freshness_checks(context) -> Iterator[AssetCheckResult]:
        store = context.resources.sync_pipeline.store()
        yield from check_results(sync, evaluate_freshness(context.instance, store, sync, utcnow()))

    return freshness_checks


def build_freshness_sensor(registry: Registry):
    """Evaluates every sync's freshness check each minute and records the results (on change, and hourly)."""

    @sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=EVALUATE_EVERY_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
        description="Records each sync asset's freshness check: fails while a partition is overdue.",
    )
    def sync_pipeline_freshness(context: SensorEvaluationContext, sync_pipeline: SyncPipelineResource) -> SensorResult:
        cursor = json.loads(context.cursor) if context.cursor else {}
        cursor = report_freshness(context.instance, sync_pipeline.store(), registry, utcnow(), cursor)
        return SensorResult(cursor=json.dumps(cursor))

    return sync_pipeline_freshness


def report_freshness(
    instance: DagsterInstance, store: Store, registry: Registry, now: datetime, reported: dict[str, list]
) -> dict[str, list]:
    """Evaluate each sync and record its results where they changed since `reported` (or an hour passed).

    `reported` maps a sync to [its last result's fingerprint, when it was recorded]; the updated map is returned.
    """
    updated = {}
    for sync in registry.syncs():
        freshness = evaluate_freshness(instance, store, sync, now)
        fingerprint = json.dumps([freshness.checked, freshness.paused, sorted(freshness.overdue.items())])
        previous = reported.get(sync.qualified_name)
        stale = previous is None or previous[0] != fingerprint or now - from_iso(previous[1]) >= REPORT_AT_LEAST_EVERY
        if stale:
            for result in check_results(sync, freshness):
                instance.report_runless_asset_event(
                    AssetCheckEvaluation(
                        asset_key=result.asset_key,
                        check_name=result.check_name,
                        passed=result.passed,
                        metadata=result.metadata,
                        severity=result.severity,
                        description=result.description,
                    )
                )
            previous = [fingerprint, to_iso(now)]
        updated[sync.qualified_name] = previous
    return updated
