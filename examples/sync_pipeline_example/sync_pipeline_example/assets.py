"""The project's assets: each declares a sync asset as its input and is materialized when its records change.

A sync run that changed nothing does not materialize its partition, so Dagster's `eager()` sleeps through it.
"""

from collections.abc import Iterator

import pandas as pd
from dagster import AssetIn, AssetKey, AutomationCondition, MaterializeResult, MetadataValue, Output, asset

from sync_pipeline.integrations import slack
from sync_pipeline.orchestration import on_records_changed, partitions_definition


@asset(
    key=AssetKey(["slack_reports", "slack_user_summary"]),
    ins={"users": AssetIn(key=AssetKey(["slack", "SlackUser"]))},
    partitions_def=partitions_definition(slack.users),  # one summary per Slack connection (and variant)
    automation_condition=AutomationCondition.eager(),
    group_name="slack_reports",
)
def slack_user_summary(users: pd.DataFrame) -> MaterializeResult:
    """How many people a Slack workspace has, how many are admins, and where they are."""
    active = users[~users["deactivated"].fillna(False)]
    return MaterializeResult(
        metadata={
            "users": len(active),
            "admins": int(active["is_admin"].sum()),
            "with_email": int(active["email"].notna().sum()),
            "timezones": MetadataValue.json({str(k): int(v) for k, v in active["timezone"].value_counts().items()}),
        }
    )


@asset(
    key=AssetKey(["github_reports", "issues_by_repository"]),
    # Every connection's issues, read page by page: the table stays small however many issues there are.
    ins={"issues": AssetIn(key=AssetKey(["github", "GithubIssue"]))},
    # Not eager(): that would wait while any connection is unsynced or syncing; this runs after each change.
    automation_condition=on_records_changed(),
    group_name="github_reports",
)
def issues_by_repository(issues: Iterator) -> Output[pd.DataFrame]:
    """Open and closed GitHub issues per connection and repository, across every connection.

    `issues` is an iterator of DataFrame pages (Dagster takes no `Iterator[pd.DataFrame]` annotation).
    """
    keys = ["connection_id", "variant", "repository", "state"]
    partial = [page.groupby(keys, dropna=False).size() for page in issues if len(page)]
    if partial:
        counts = pd.concat(partial).groupby(level=keys, dropna=False).sum()
        table = counts.unstack("state", fill_value=0).reindex(columns=["open", "closed"], fill_value=0).reset_index()
        table.columns.name = None
    else:  # no GitHub connection synced yet
        table = pd.DataFrame(columns=[*keys[:3], "open", "closed"])
    return Output(
        table,
        metadata={
            "repositories": len(table),
            "open": int(table["open"].sum()),
            "closed": int(table["closed"].sum()),
            "preview": MetadataValue.md(_markdown(table.head(20))),
        },
    )


def _markdown(table: pd.DataFrame) -> str:
    header = "| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns)
    rows = ["| " + " | ".join(str(value) for value in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, *rows])
