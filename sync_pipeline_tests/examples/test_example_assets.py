"""The example user project (examples/sync_pipeline_example): its assets read synced records as inputs."""

from __future__ import annotations

from dagster import materialize

from sync_pipeline.orchestration import IO_MANAGER_KEY, SyncRecordsIOManager
from sync_pipeline_example.assets import issues_by_repository, slack_user_summary
from sync_pipeline_example.definitions import defs
from sync_pipeline.orchestration.records_input import sync_asset_specs


def metadata_of(result, key: str) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == key]
    return {name: value.value for name, value in event.step_materialization_data.materialization.metadata.items()}


def connect_slack(sync, slack_api, connection_id: str) -> None:
    sync.connect(
        "slack",
        connection_id,
        base_url=slack_api.url + "/api",
        credentials={"type": "OAUTH2", "access_token": slack_api.token},
    )


def test_slack_summary_reads_its_partitions_users(sync, slack_api, instance, database_url):
    slack_api.put("U01", "Ann", is_admin=True, tz="Europe/Paris")
    slack_api.put("U02", "Bob", tz="Europe/Paris")
    slack_api.put("U03", "Cid", tz="America/New_York")
    connect_slack(sync, slack_api, "team-1")
    assert sync.run("slack", "users", "team-1").success

    result = materialize(
        [*sync_asset_specs(sync.registry), slack_user_summary],
        selection=[slack_user_summary],
        partition_key="team-1::base",
        instance=instance,
        resources={IO_MANAGER_KEY: SyncRecordsIOManager(database_url=database_url)},
    )

    metadata = metadata_of(result, "slack_reports/slack_user_summary")
    assert metadata["users"] == 3 and metadata["admins"] == 1
    assert metadata["timezones"] == {"Europe/Paris": 2, "America/New_York": 1}
    assert metadata["sync_pipeline/cursor/slack/SlackUser"]["team-1::base"]
