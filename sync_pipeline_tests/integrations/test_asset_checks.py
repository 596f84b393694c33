"""The asset checks each sync run evaluates (on the Slack sync): a guard against mass deletion, the share of invalid records."""

from __future__ import annotations

from sync_pipeline.orchestration.checks import INVALID_SHARE, MASS_DELETION


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


def test_a_run_deleting_most_records_warns(sync, slack_api):
    for index in range(10):
        slack_api.put(f"U{index:02d}", f"Member{index}")
    _connect(sync, slack_api)
    assert sync.run("slack", "users", "team-1").success
    for index in range(8):  # an answer missing most members: a revoked scope looks like this
        del slack_api.members[f"U{index:02d}"]

    result = sync.run("slack", "users", "team-1")

    assert result.success  # a warning: the provider's answer is still what is stored
    assert _checks(result) == {MASS_DELETION: False, INVALID_SHARE: True}


def test_a_run_where_many_records_fail_their_model_warns(sync, slack_api):
    for index in range(10):
        slack_api.put(f"U{index:02d}", f"Member{index}")
    for index in range(3):
        slack_api.members[f"U{index:02d}"]["name"] = None  # SlackUser.name is required
    _connect(sync, slack_api)

    result = sync.run("slack", "users", "team-1")

    assert result.success
    assert _checks(result) == {MASS_DELETION: True, INVALID_SHARE: False}
