"""The project's code location: the sync assets it reads (declared, not run here), its own assets, automation."""

from dagster import Definitions

from sync_pipeline.integrations import load_registry
from sync_pipeline.orchestration import IO_MANAGER_KEY, SyncRecordsIOManager, automation_sensor, sync_asset_specs
from sync_pipeline_example.assets import issues_by_repository, slack_user_summary

defs = Definitions(
    # The sync assets live in sync_pipeline's code location; declaring them here lets our assets take their records.
    assets=[*sync_asset_specs(load_registry()), slack_user_summary, issues_by_repository],
    # Dagster's default automation sensor starts stopped; this one runs from the start.
    sensors=[automation_sensor()],
    resources={IO_MANAGER_KEY: SyncRecordsIOManager()},
)
