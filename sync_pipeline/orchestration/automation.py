"""Automation after each sync: data versions of the records, a condition that wakes on changed records, its sensor.

Every sync run materializes its partition (the run's counts, start time and checkpoint are that
materialization's metadata, which the scheduler, the webhooks and `/sync/status` read). So that a run that
changed nothing does not wake downstream assets, each materialization carries a data version naming the
records' state: the stream's id, its last change number and its live count. A run with no change keeps the
same version; `on_records_changed()` fires only when an upstream partition's version moves.
"""

from __future__ import annotations

from dagster import (
    AssetSelection,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DataVersion,
    DefaultSensorStatus,
)

from sync_pipeline.store import RecordsCache, StreamKey

AUTOMATION_SENSOR_NAME = "sync_pipeline_automation"


def records_version(cache: RecordsCache, key: StreamKey) -> DataVersion:
    """The state of a stream's records: unchanged by a run that saved nothing new, changed by any write or clear."""
    stream = cache.stream_id(key, create=False)
    if stream is None:
        return DataVersion("empty")
    return DataVersion(f"{stream}.{cache.last_seq(key)}.{cache.count_live(key)}")


def on_records_changed() -> AutomationCondition:
    """Materialize after an upstream sync partition's records change (its data version moves), once per change.

    Unlike `AutomationCondition.eager()`, a sync run that changed nothing does not wake the asset, a
    connection that was never synced does not hold back a cross-connection asset, and syncs still running
    elsewhere do not delay it: what it reads is each partition's committed records.
    """
    return (
        AutomationCondition.any_deps_match(AutomationCondition.data_version_changed()).since_last_handled()
        & ~AutomationCondition.in_progress()
    ).with_label("on_records_changed")


def automation_sensor(
    name: str = AUTOMATION_SENSOR_NAME, *, target: AssetSelection | None = None, minimum_interval_seconds: int = 15
) -> AutomationConditionSensorDefinition:
    """Dagster's automation sensor for a code location, running from the start (Dagster's default one starts
    stopped): it evaluates the automation conditions of `target` (default: every asset) and launches runs."""
    return AutomationConditionSensorDefinition(
        name,
        target=target or AssetSelection.all(),
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=minimum_interval_seconds,
        emit_backfills=False,  # one run per downstream partition, as after each sync, not a backfill of many
        description="Launches runs of the assets whose automation condition is true (e.g. records changed).",
    )
