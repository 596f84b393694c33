"""Synced records as asset inputs: a downstream asset declares a sync asset as an input and receives its records."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from collections.abc import Iterator

import pandas as pd
import pytest
from dagster import AssetIn, AssetKey, AssetsDefinition, MaterializeResult, asset, materialize

from sync_pipeline.orchestration import IO_MANAGER_KEY, SyncRecordsIOManager, partitions_definition, sync_asset_specs
from sync_pipeline.store import PreparedRecord, StreamKey, encode_cursor, utcnow
from sync_pipeline_tests.integrations.conftest import _slack_server, slack_api, sync  # noqa: F401  (fixtures)

SLACK_USERS = AssetKey(["slack", "SlackUser"])
REPORT = AssetKey(["reports", "users"])
CURSOR = "sync_pipeline/cursor/slack/SlackUser"


@pytest.fixture
def slack(sync, slack_api):
    """Connects Slack workspaces to the fake Slack API and returns the harness."""
    for connection_id in ("team-1", "team-2"):
        sync.connect(
            "slack",
            connection_id,
            base_url=slack_api.url + "/api",
            credentials={"type": "OAUTH2", "access_token": slack_api.token},
        )
    return sync


@pytest.fixture
def reader(slack, instance, database_url):
    """Materializes a downstream asset of `slack/SlackUser`; returns its run's result."""

    def materialize_report(report: AssetsDefinition, partition_key: str | None = "team-1::base"):
        return materialize(
            [*sync_asset_specs(slack.registry), report],
            selection=[REPORT],
            partition_key=partition_key,
            instance=instance,
            resources={IO_MANAGER_KEY: SyncRecordsIOManager(database_url=database_url)},
            raise_on_error=False,
        )

    return materialize_report


def users_partitions(harness):
    return partitions_definition(harness.registry.find_sync("slack", "users"))


def report_metadata(result) -> dict:
    [event] = result.get_asset_materialization_events()
    return {name: value.value for name, value in event.step_materialization_data.materialization.metadata.items()}


def test_same_partition_input_is_that_connections_records_typed_from_the_model(slack, slack_api, reader):
    slack_api.put("U01", "Ann", is_admin=True)
    slack_api.put("U02", "Bob", email="")
    slack.run("slack", "users", "team-1")
    received = []

    @asset(key=REPORT, ins={"users": AssetIn(key=SLACK_USERS)}, partitions_def=users_partitions(slack))
    def report(users: pd.DataFrame) -> None:
        received.append(users)

    assert reader(report).success
    [users] = received
    assert sorted(users["id"]) == ["U01", "U02"]
    assert list(users.columns[:3]) == ["id", "team_id", "name"], "columns in the model's order"
    assert str(users["id"].dtype) == "string" and str(users["is_admin"].dtype) == "boolean"
    assert isinstance(users["updated_at"].dtype, pd.DatetimeTZDtype) and str(users["updated_at"].dtype.tz) == "UTC"
    assert users.set_index("id")["email"].isna()["U02"], "a missing value is <NA>, not the text 'None'"
    assert "connection_id" not in users.columns


def test_a_non_partitioned_asset_gets_every_connections_records_with_their_partition(slack, slack_api, reader):
    slack_api.put("U01", "Ann")
    slack.run("slack", "users", "team-1")
    slack_api.put("U02", "Bob")
    slack.run("slack", "users", "team-2")
    received = []

    @asset(key=REPORT, ins={"users": AssetIn(key=SLACK_USERS)})
    def report(users: pd.DataFrame) -> None:
        received.append(users)

    assert reader(report, partition_key=None).success
    [users] = received
    rows = sorted(zip(users["connection_id"], users["variant"], users["id"]))
    assert rows == [("team-1", "base", "U01"), ("team-2", "base", "U01"), ("team-2", "base", "U02")]


def test_deleted_records_are_left_out_unless_asked_for(slack, slack_api, reader):
    slack_api.put("U01", "Ann")
    slack_api.put("U02", "Bob")
    slack.run("slack", "users", "team-1")
    del slack_api.members["U02"]
    slack.run("slack", "users", "team-1")  # a full refresh tracking deletes: Bob becomes deleted
    received = {}

    def report_of(name: str, metadata: dict | None) -> AssetsDefinition:
        @asset(key=REPORT, ins={"users": AssetIn(key=SLACK_USERS, metadata=metadata)}, partitions_def=users_partitions(slack))
        def report(users: pd.DataFrame) -> None:
            received[name] = users

        return report

    assert reader(report_of("current", None)).success
    assert reader(report_of("everyone", {"include_deleted": True})).success

    assert list(received["current"]["id"]) == ["U01"]
    everyone = received["everyone"].set_index("id")
    assert everyone.loc["U02", "_sync_action"] == "DELETED" and pd.notna(everyone.loc["U02", "_sync_deleted_at"])
    assert everyone.loc["U02", "name"] == "bob", "a deleted record keeps its last payload"


def test_since_last_reads_only_what_changed_after_the_cursor_recorded_by_the_previous_materialization(
    slack, slack_api, reader, store
):
    slack_api.put("U01", "Ann")
    slack_api.put("U02", "Bob")
    slack.run("slack", "users", "team-1")
    received = []

    @asset(
        key=REPORT,
        ins={"users": AssetIn(key=SLACK_USERS, metadata={"since": "last"})},
        partitions_def=users_partitions(slack),
    )
    def report(users: pd.DataFrame) -> None:
        received.append(users)

    first = reader(report)
    slack_api.put("U02", "Bobby")
    slack_api.put("U03", "Cid")
    slack.run("slack", "users", "team-1")
    second = reader(report)
    third = reader(report)

    assert sorted(received[0]["id"]) == ["U01", "U02"], "the first run reads everything"
    assert sorted(received[1]["id"]) == ["U02", "U03"] and set(received[1]["_sync_action"]) == {"ADDED", "UPDATED"}
    assert received[2].empty, "nothing changed since the second run"
    cursors = [report_metadata(result)[CURSOR]["team-1::base"] for result in (first, second, third)]
    stream = StreamKey("slack", "team-1", "SlackUser")
    assert cursors[1] == cursors[2] == encode_cursor(store.records.last_seq(stream), stream)
    assert cursors[0] != cursors[1]


def test_an_iterator_input_streams_pages_of_the_asked_size(slack, slack_api, reader):
    for n in range(7):
        slack_api.put(f"U0{n}", f"User{n}")
    slack.run("slack", "users", "team-1")
    received = []

    @asset(key=REPORT, ins={"users": AssetIn(key=SLACK_USERS, metadata={"page_size": 3})}, partitions_def=users_partitions(slack))
    def report(users: Iterator) -> None:
        received.extend(users)

    assert reader(report).success
    assert [len(page) for page in received] == [3, 3, 1]
    assert all(str(page["is_admin"].dtype) == "boolean" for page in received)


def test_unknown_input_metadata_fails_the_run_naming_it(slack, slack_api, reader):
    slack.run("slack", "users", "team-1")

    @asset(key=REPORT, ins={"users": AssetIn(key=SLACK_USERS, metadata={"page": True})}, partitions_def=users_partitions(slack))
    def report(users: pd.DataFrame) -> None:
        pass

    result = reader(report)

    assert not result.success
    [failure] = [event for event in result.all_events if event.is_step_failure]
    assert "unknown input metadata ['page']" in failure.step_failure_data.error.cause.message


def test_a_sync_run_that_changed_nothing_is_observed_not_materialized(slack, slack_api, instance):
    """Downstream automation (eager() included) wakes on materializations: an unchanged run records an observation."""
    slack_api.put("U01", "Ann")

    def recorded(result) -> tuple[int, int]:
        return len(result.get_asset_materialization_events()), len(result.get_asset_observation_events())

    first = slack.run("slack", "users", "team-1")
    unchanged = slack.run("slack", "users", "team-1")
    slack_api.put("U02", "Bob")
    changed = slack.run("slack", "users", "team-1")

    assert (recorded(first), recorded(unchanged), recorded(changed)) == ((1, 0), (0, 1), (1, 0))
    assert unchanged.success
    [observation] = unchanged.get_asset_observation_events()
    metadata = observation.asset_observation_data.asset_observation.metadata
    assert (metadata["added"].value, metadata["total_records"].value) == (0, 1)
    # The unchanged run still ran its checks, and the next run resumed after it (INCREMENTAL, one added).
    assert {check.check_name for check in unchanged.get_asset_check_evaluations()} == {"mass_deletion_guard", "invalid_records_share"}
    assert changed.get_asset_materialization_events()[0].step_materialization_data.materialization.metadata["added"].value == 1


def test_an_iterator_input_reads_100000_records_in_flat_memory(slack, reader, store, instance):
    save_users(store, "team-1", 100_000)
    instance.add_dynamic_partitions("slack__users", ["team-1::base"])
    seen = {}

    @asset(key=REPORT, ins={"users": AssetIn(key=SLACK_USERS)}, partitions_def=users_partitions(slack))
    def report(users: Iterator) -> None:
        rows = whole = 0
        tracemalloc.start()
        for n, page in enumerate(users, start=1):
            rows += len(page)
            whole += int(page.memory_usage(deep=True).sum())
            del page
            if n == 2:
                seen["peak_after_two_pages"] = tracemalloc.get_traced_memory()[1]
        seen.update(rows=rows, whole=whole, peak=tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()

    assert reader(report).success
    assert seen["rows"] == 100_000
    # Flat: ten pages cost no more than two; and far less than the whole frame, which would hold every page.
    assert seen["peak"] < 1.3 * seen["peak_after_two_pages"], seen
    assert seen["peak"] < seen["whole"] / 3, f"peak {seen['peak']:,} bytes for a {seen['whole']:,}-byte dataset"


def save_users(store, connection_id: str, count: int, batch: int = 5_000) -> None:
    """`count` Slack users written straight into the cache, as a sync would leave them."""
    key = StreamKey("slack", connection_id, "SlackUser")
    for start in range(0, count, batch):
        prepared = []
        for n in range(start, min(start + batch, count)):
            payload = json.dumps(
                {"id": f"U{n:07d}", "team_id": "T1", "name": f"user{n}", "real_name": f"User {n}",
                 "email": f"user{n}@example.com", "timezone": "Europe/Paris", "is_admin": n % 50 == 0,
                 "updated_at": "2026-11-25T12:00:00+00:00"}
            )
            prepared.append(PreparedRecord(f"U{n:07d}", payload, hashlib.blake2b(payload.encode(), digest_size=16).hexdigest()))
        store.records.save(key, prepared, utcnow())
