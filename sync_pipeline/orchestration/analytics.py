"""An example downstream asset: ordinary Dagster code reading a sync's current records as a DataFrame."""

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from sync_pipeline.keys import parse_partition_key
from sync_pipeline.orchestration.resources import SyncPipelineResource
from sync_pipeline.sdk.declaration import SyncDefinition


def issue_state_counts(issues: SyncDefinition):
    """Per GitHub partition: how many issues are open and closed, recomputed after each sync."""
    from sync_pipeline.orchestration.assets import partitions_definition

    @asset(
        key=AssetKey(["analytics", "github_issue_states"]),
        deps=[AssetKey(["github", "GithubIssue"])],
        partitions_def=partitions_definition(issues),
        group_name="analytics",
        description="Open and closed GitHub issues per connection and repository variant.",
    )
    def github_issue_states(context: AssetExecutionContext, sync_pipeline: SyncPipelineResource) -> MaterializeResult:
        connection_id, variant = parse_partition_key(context.partition_key)
        frame = sync_pipeline.records_frame("github", "GithubIssue", connection_id, variant)
        counts = frame["state"].value_counts().to_dict() if not frame.empty else {}
        return MaterializeResult(
            metadata={
                "issues": len(frame),
                "open": int(counts.get("open", 0)),
                "closed": int(counts.get("closed", 0)),
                "by_state": MetadataValue.json({state: int(n) for state, n in counts.items()}),
            }
        )

    return github_issue_states
