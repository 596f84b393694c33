"""The asset checks each sync run evaluates (on the Slack sync): a guard against mass deletion, the share of invalid records."""

from __future__ import annotations

from dagster import AssetCheckSeverity

from sync_pipeline.orchestration.checks import INVALID_SHARE, MASS_DELETION
from sync_pipeline.store import ChangeQuery, StreamKey
from sync_pipeline_tests.results import failure_message, materialization_metadata

USERS = StreamKey("slack", "team-1", "SlackUser")


def _checks(result) -> dict[str, bool]:
    return {evaluation.check_name: evaluation.passed for evaluation in result.get_asset_check_evaluations()}


def _connect(sync, slack_api):
    sync.connect("slack", "team-1", base_url=slack_api.url + "/api",
                 credentials={"type": "OAUTH2", "access_token": slack_api.token})  # fmt: skip


def test_an_ordinary_run_passes_both_checks(sync, slack_api):
    for index in range(10):
        slack_api.put(f"U{index:02d}", f"Member{index}")
    _connect(sync, slack_api)

    result = sync.run("slack", "users", "team-1")

    assert _checks(result) == {MASS_DELETION: True, INVALID_SHARE: True}


def test_a_run_deleting_most_records_deletes_nothing_and_fails_the_guard(sync, slack_api, store):
    for index in range(10):
        slack_api.put(f"U{index:02d}", f"Member{index}")
    _connect(sync, slack_api)
    assert sync.run("slack", "users", "team-1").success
    for index in range(8):  # an answer missing most members: a revoked scope looks like this
        del slack_api.members[f"U{index:02d}"]

    result = sync.run("slack", "users", "team-1")

    assert not result.success
    assert "8 of 10 SlackUser records (80%)" in failure_message(result)
    assert _checks(result) == {MASS_DELETION: False}
    assert store.records.count_live(USERS) == 10


def test_the_slack_full_refresh_answered_with_one_empty_page_deletes_nothing_and_says_why(sync, slack_api, store):
    for index in range(12):
        slack_api.put(f"U{index:02d}", f"Member{index}")
    _connect(sync, slack_api)
    assert sync.run("slack", "users", "team-1").success
    slack_api.members.clear()  # users.list answers {"ok": true, "members": []}

    result = sync.run("slack", "users", "team-1")

    assert not result.success
    message = failure_message(result)
    assert "would mark 12 of 12 SlackUser records (100%) deleted" in message
    assert "limit of 50%" in message and "nothing was deleted" in message and "allowMassDelete" in message
    assert store.records.count_live(USERS) == 12, "the cache is untouched"
    assert not store.records.changes(USERS, ChangeQuery(actions=("DELETED",))), "and the app is told of no deletion"
    [evaluation] = result.get_asset_check_evaluations()
    assert (evaluation.check_name, evaluation.passed, evaluation.severity) == (MASS_DELETION, False, AssetCheckSeverity.ERROR)
    assert evaluation.metadata["deleted"].value == 12 and evaluation.metadata["records_before"].value == 12

    let_through = sync.run("slack", "users", "team-1", allow_mass_delete=True)  # what --allow-mass-delete asks

    assert let_through.success
    assert store.records.count_live(USERS) == 0
    assert materialization_metadata(let_through, "SlackUser").deleted == 12
    assert _checks(let_through) == {MASS_DELETION: False, INVALID_SHARE: True}  # a warning: it did happen


def test_the_share_a_run_may_delete_is_set_per_connection_in_its_metadata(sync, slack_api, store):
    for index in range(10):
        slack_api.put(f"U{index:02d}", f"Member{index}")
    _connect(sync, slack_api)
    store.connections.set_metadata("slack", ["team-1"], {"max_deleted_share": 0.9}, merge=True)
    assert sync.run("slack", "users", "team-1").success
    for index in range(8):
        del slack_api.members[f"U{index:02d}"]

    result = sync.run("slack", "users", "team-1")

    assert result.success and store.records.count_live(USERS) == 2
    store.connections.set_metadata("slack", ["team-1"], {"max_deleted_share": "most"}, merge=True)
    refused = sync.run("slack", "users", "team-1")
    assert not refused.success and "'max_deleted_share' must be a share between 0 and 1" in failure_message(refused)


def test_a_run_where_many_records_fail_their_model_warns(sync, slack_api):
    for index in range(10):
        slack_api.put(f"U{index:02d}", f"Member{index}")
    for index in range(3):
        slack_api.members[f"U{index:02d}"]["name"] = None  # SlackUser.name is required
    _connect(sync, slack_api)

    result = sync.run("slack", "users", "team-1")

    assert result.success
    assert _checks(result) == {MASS_DELETION: True, INVALID_SHARE: False}


def test_a_cache_clearing_run_answered_with_one_empty_page_keeps_the_cache(sync, slack_api, store):
    for index in range(12):
        slack_api.put(f"U{index:02d}", f"Member{index}")
    _connect(sync, slack_api)
    assert sync.run("slack", "users", "team-1").success
    last_seq = store.records.last_seq(USERS)
    slack_api.members.clear()

    result = sync.run("slack", "users", "team-1", mode="full_refresh_and_clear_cache")

    assert not result.success and "12 of 12 SlackUser records (100%)" in failure_message(result)
    assert store.records.count_live(USERS) == 12 and store.records.last_seq(USERS) == last_seq
