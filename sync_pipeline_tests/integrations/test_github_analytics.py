"""The example downstream asset: reads a partition's current GitHub issues as a DataFrame after a sync."""

from __future__ import annotations

from dagster import materialize

from sync_pipeline.orchestration.analytics import issue_state_counts
from sync_pipeline.orchestration.resources import SyncPipelineResource


def test_issue_states_are_counted_from_the_synced_records(sync, github_api, instance, database_url):
    github_api.put_issue("acme/web", 1, "Open one")
    github_api.put_issue("acme/web", 2, "Open two")
    github_api.put_issue("acme/web", 3, "Done", state="closed")
    sync.connect(
        "github",
        "gh-1",
        base_url=github_api.url,
        credentials={"type": "OAUTH2", "access_token": github_api.token},
        metadata={"web": {"owner": "acme", "repo": "web"}},
    )
    assert sync.run("github", "issues", "gh-1", variant="web").success
    downstream = issue_state_counts(sync.registry.find_sync("github", "issues"))

    result = materialize(
        [downstream],
        partition_key="gh-1::web",
        instance=instance,
        resources={"sync_pipeline": SyncPipelineResource(database_url=database_url)},
    )

    [event] = result.get_asset_materialization_events()
    metadata = {key: value.value for key, value in event.step_materialization_data.materialization.metadata.items()}
    assert (metadata["issues"], metadata["open"], metadata["closed"]) == (3, 2, 1)
