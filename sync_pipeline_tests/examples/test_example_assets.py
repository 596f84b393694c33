"""The example user project (examples/sync_pipeline_example): its assets read synced records as inputs."""

from __future__ import annotations

from dagster import AssetKey, evaluate_automation_conditions, materialize

from sync_pipeline.orchestration import IO_MANAGER_KEY, SyncRecordsIOManager, sync_asset_specs
from sync_pipeline_example.assets import issues_by_repository, slack_user_summary
from sync_pipeline_example.definitions import defs


def metadata_of(result, key: str) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == key]
    return {name: value.value for name, value in event.step_materialization_data.materialization.metadata.items()}


def materialize_example(example, sync, instance, database_url, partition_key: str | None = None):
    """Materialize one of the example's assets in process, its inputs read from the test database."""
    return materialize(
        [*sync_asset_specs(sync.registry), example],
        selection=[example],
        partition_key=partition_key,
        instance=instance,
        resources={IO_MANAGER_KEY: SyncRecordsIOManager(database_url=database_url)},
    )


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

    result = materialize_example(slack_user_summary, sync, instance, database_url, partition_key="team-1::base")

    metadata = metadata_of(result, "slack_reports/slack_user_summary")
    assert metadata["users"] == 3 and metadata["admins"] == 1
    assert metadata["timezones"] == {"Europe/Paris": 2, "America/New_York": 1}
    assert metadata["sync_pipeline/cursor/slack/SlackUser"]["team-1::base"]


def test_issues_by_repository_spans_every_github_connection(sync, github_api, instance, database_url):
    github_api.put_issue("acme/web", 1, "Open one")
    github_api.put_issue("acme/web", 2, "Done", state="closed")
    github_api.put_issue("beta/api", 1, "Open too")
    for connection_id, metadata in (("gh-1", {"web": {"owner": "acme", "repo": "web"}}), ("gh-2", {"repositories": ["beta/api"]})):
        sync.connect(
            "github",
            connection_id,
            base_url=github_api.url,
            credentials={"type": "OAUTH2", "access_token": github_api.token},
            metadata=metadata,
        )
    assert sync.run("github", "issues", "gh-1", variant="web").success
    assert sync.run("github", "issues", "gh-2").success

    result = materialize_example(issues_by_repository, sync, instance, database_url)

    table = result.asset_value(issues_by_repository.key)
    rows = sorted(tuple(row) for row in table[["connection_id", "variant", "repository", "open", "closed"]].itertuples(index=False))
    assert rows == [("gh-1", "web", "acme/web", 1, 1), ("gh-2", "base", "beta/api", 1, 0)]
    assert metadata_of(result, "github_reports/issues_by_repository")["open"] == 2


def test_issues_by_repository_is_an_empty_table_before_any_github_sync(sync, instance, database_url):
    result = materialize_example(issues_by_repository, sync, instance, database_url)

    table = result.asset_value(issues_by_repository.key)
    assert table.empty and list(table.columns) == ["connection_id", "variant", "repository", "open", "closed"]


def test_the_example_code_location_declares_the_sync_assets_it_reads_and_runs_its_automation():
    graph = defs.resolve_asset_graph()
    summary = graph.get(slack_user_summary.key)
    assert summary.automation_condition is not None and summary.automation_condition.get_label() == "eager"
    across = graph.get(issues_by_repository.key)
    assert across.automation_condition is not None and across.automation_condition.get_label() == "on_records_changed"
    assert not graph.get(AssetKey(["slack", "SlackUser"])).is_materializable, "synced by sync_pipeline, not here"
    [automation] = defs.sensors
    assert automation.default_status.value == "RUNNING"


def test_issues_by_repository_wakes_after_a_change_in_any_connection_not_after_an_unchanged_sync(
    sync, github_api, instance
):
    github_api.put_issue("acme/web", 1, "Open one")
    for connection_id in ("gh-1", "gh-2"):  # gh-2 never syncs: it does not hold the cross-connection table back
        sync.connect(
            "github",
            connection_id,
            base_url=github_api.url,
            credentials={"type": "OAUTH2", "access_token": github_api.token},
            metadata={"web": {"owner": "acme", "repo": "web"}},
        )
        sync.add_partition("github", "issues", connection_id, variant="web")
    cursor = evaluate_automation_conditions(defs, instance).cursor  # the first look, before any sync

    def requested_after_a_sync() -> bool:
        nonlocal cursor
        assert sync.run("github", "issues", "gh-1", variant="web").success
        result = evaluate_automation_conditions(defs, instance, cursor=cursor)
        # One more tick: a request counts as handled on the tick after it, which would hide a change seen then.
        cursor = evaluate_automation_conditions(defs, instance, cursor=result.cursor).cursor
        return result.get_num_requested(issues_by_repository.key) == 1

    assert requested_after_a_sync(), "the first sync"
    assert not requested_after_a_sync(), "a sync that changed nothing"
    github_api.put_issue("acme/web", 2, "Another")
    assert requested_after_a_sync(), "a sync that added an issue"


def test_an_eager_slack_summary_wakes_after_a_change_not_after_an_unchanged_sync(sync, slack_api, instance):
    slack_api.put("U01", "Ann")
    connect_slack(sync, slack_api, "team-1")
    sync.add_partition("slack", "users", "team-1")
    cursor = evaluate_automation_conditions(defs, instance).cursor

    def requested_after_a_sync() -> bool:
        nonlocal cursor
        assert sync.run("slack", "users", "team-1").success
        result = evaluate_automation_conditions(defs, instance, cursor=cursor)
        cursor = evaluate_automation_conditions(defs, instance, cursor=result.cursor).cursor  # as above
        return result.get_num_requested(slack_user_summary.key) == 1

    assert requested_after_a_sync(), "the first sync"
    assert not requested_after_a_sync(), "a sync that changed nothing"
    slack_api.put("U02", "Bob")
    assert requested_after_a_sync(), "a sync that added a member"
