"""Automation after each sync: a condition for cross-connection assets, and the automation sensor of a code location.

A sync run materializes a model only when it changed the model's records (or on the partition's first run); a run
that changed nothing records an observation instead (see `assets.execute_sync`). So Dagster's own conditions, such
as `AutomationCondition.eager()`, wake a downstream asset after each change and sleep through unchanged runs.
"""

from __future__ import annotations

from dagster import AssetSelection, AutomationCondition, AutomationConditionSensorDefinition, DefaultSensorStatus

AUTOMATION_SENSOR_NAME = "sync_pipeline_automation"


def on_records_changed() -> AutomationCondition:
    """Materialize once after any upstream sync partition's records change: for an asset reading every connection.

    `AutomationCondition.eager()` suits an asset partitioned like its sync (one partition per connection). For one
    reading all connections it would wait while any connection is not yet synced (a missing partition) or any
    sync is running; this condition does not: what it reads is each partition's committed records.
    """
    return (AutomationCondition.any_deps_updated().since_last_handled() & ~AutomationCondition.in_progress()).with_label(
        "on_records_changed"
    )


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
