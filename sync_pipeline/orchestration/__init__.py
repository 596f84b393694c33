"""The Dagster side: sync assets and jobs, the scheduling and notifications sensors, built from a registry."""

from __future__ import annotations

from dagster import Definitions

from sync_pipeline.orchestration.analytics import issue_state_counts
from sync_pipeline.orchestration.assets import build_sync_assets
from sync_pipeline.orchestration.resources import SyncPipelineResource
from sync_pipeline.orchestration.scheduling import build_scheduling_sensor
from sync_pipeline.orchestration.notifications import build_notifications_sensor
from sync_pipeline.sdk.declaration import Registry


def build_definitions(registry: Registry, *, database_url: str | None = None) -> Definitions:
    """Assets, jobs and sensors for every sync in `registry`."""
    assets, jobs = [], []
    for sync in registry.syncs():
        sync_assets, job = build_sync_assets(sync)
        assets.append(sync_assets)
        jobs.append(job)
    issues = registry.find_sync("github", "issues")
    if issues is not None:  # the example downstream asset, where its upstream exists
        assets.append(issue_state_counts(issues))
    sensors = [build_notifications_sensor(registry)]
    if jobs:  # the scheduler targets the sync jobs; with none there is nothing to schedule
        sensors.append(build_scheduling_sensor(registry, jobs))
    return Definitions(
        assets=assets,
        jobs=jobs,
        sensors=sensors,
        resources={"sync_pipeline": SyncPipelineResource(database_url=database_url)},
    )


__all__ = ["SyncPipelineResource", "build_definitions"]
