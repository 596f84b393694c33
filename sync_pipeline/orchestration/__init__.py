"""The Dagster side: sync assets and jobs, the scheduling, notifications and freshness sensors, built from a registry."""

from __future__ import annotations

from dagster import Definitions

from sync_pipeline.orchestration.assets import build_sync_assets, partitions_definition
from sync_pipeline.orchestration.automation import automation_sensor, on_records_changed
from sync_pipeline.orchestration.freshness import build_freshness_checks, build_freshness_sensor
from sync_pipeline.orchestration.records_input import IO_MANAGER_KEY, SyncRecordsIOManager, sync_asset_specs
from sync_pipeline.orchestration.resources import SyncPipelineResource
from sync_pipeline.orchestration.scheduling import build_scheduling_sensor
from sync_pipeline.orchestration.notifications import build_notifications_sensor
from sync_pipeline.sdk.declaration import Registry


def build_definitions(registry: Registry, *, database_url: str | None = None) -> Definitions:
    """Assets, freshness checks, jobs and sensors for every sync in `registry`."""
    assets, checks, jobs = [], [], []
    for sync in registry.syncs():
        sync_assets, job = build_sync_assets(sync)
        assets.append(sync_assets)
        checks.append(build_freshness_checks(sync))
        jobs.append(job)
    sensors = [build_notifications_sensor(registry), build_freshness_sensor(registry)]
    if jobs:  # the scheduler targets the sync jobs; with none there is nothing to schedule
        sensors.append(build_scheduling_sensor(registry, jobs))
    return Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=jobs,
        sensors=sensors,
        resources={
            "sync_pipeline": SyncPipelineResource(database_url=database_url),
            IO_MANAGER_KEY: SyncRecordsIOManager(database_url=database_url),
        },
    )


__all__ = [
    "IO_MANAGER_KEY",
    "SyncPipelineResource",
    "SyncRecordsIOManager",
    "automation_sensor",
    "build_definitions",
    "on_records_changed",
    "partitions_definition",
    "sync_asset_specs",
]
