"""The Slack `users` sync against a fake Slack Web API that speaks `users.list`'s wire format."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from sync_pipeline.store import StreamKey
from sync_pipeline_tests.results import counts, deleted_ids, failure_message, records

USERS = StreamKey("slack", "team-1", "SlackUser", "base")


@pytest.fixture
def connected(sync, slack_api):
    def connect(metadata=None):
        sync.connect(
            "slack",
            "team-1",
            base_url=slack_api.url + "/api",
            credentials={"type": "OAUTH2", "access_token": slack_api.token},
            metadata=metadata,
        )
        return sync

    return connect


def workspace(slack_api) -> None:
    slack_api.put("U01", "Ann")
    slack_api.put("U02", "Bob")
    slack_api.put("U03", "Cid")
    slack_api.put("B01", "Deploybot", is_bot=True)
    slack_api.put_slackbot()


def test_initial_sync_saves_every_human_across_cursor_pages(connected, slack_api, store):
    workspace(slack_api)
    slack_api.max_page = 2  # Slack may hand back fewer members than `limit`: three pages here

    result = connected().run("slack", "users", "team-1")

    assert result.success
    assert counts(result, "SlackUser") == (3, 0, 0)
    users = records(store, USERS)
    assert set(users) == {"U01", "U02", "U03"}
    assert users["U01"]["email"] == "ann@example.com" and users["U01"]["real_name"] == "Ann"
    assert users["U01"]["title"] is None, "Slack's empty profile strings are no value"
    queries = [parse_qs(r.url.query) for r in slack_api.requests]
    assert [q.get("limit") for q in queries] == [["200"]] * 3
    assert "cursor" not in queries[0] and queries[1]["cursor"] and queries[2]["cursor"] != queries[1]["cursor"]


def test_second_run_counts_added_edited_and_removed_users_exactly(connected, slack_api, store):
    workspace(slack_api)
    harness = connected()
    harness.run("slack", "users", "team-1")

    slack_api.put("U02", "Bobby")  # edited
    slack_api.members["U03"]["deleted"] = True  # deactivated: still listed, flagged
    del slack_api.members["U01"]  # gone from the workspace
    slack_api.put("U04", "Dee")  # joined
    result = harness.run("slack", "users", "team-1")

    assert result.success
    assert counts(result, "SlackUser") == (1, 2, 1)
    users = records(store, USERS)
    assert set(users) == {"U02", "U03", "U04"}
    assert users["U02"]["real_name"] == "Bobby" and users["U03"]["deactivated"] is True
    assert deleted_ids(store, USERS) == {"U01"}


def test_bots_and_slackbot_are_left_out_by_default(connected, slack_api, store):
    workspace(slack_api)

    connected().run("slack", "users", "team-1")

    assert "B01" not in records(store, USERS) and "USLACKBOT" not in records(store, USERS)


def test_include_bots_metadata_keeps_bots_and_slackbot(connected, slack_api, store):
    workspace(slack_api)

    result = connected(metadata={"include_bots": True}).run("slack", "users", "team-1")

    assert counts(result, "SlackUser") == (5, 0, 0)
    users = records(store, USERS)
    assert users["B01"]["is_bot"] is True and users["B01"]["email"] is None
    assert "USLACKBOT" in users


def test_ratelimited_answer_is_waited_out_for_its_retry_after(connected, slack_api, store):
    workspace(slack_api)
    slack_api.fail_next(429, {"ok": False, "error": "ratelimited"}, headers={"Retry-After": "1"})

    result = connected().run("slack", "users", "team-1")

    assert result.success
    assert slack_api.request_times[1] - slack_api.request_times[0] >= 0.9
    assert set(records(store, USERS)) == {"U01", "U02", "U03"}


def test_revoked_token_fails_the_run_with_slacks_error_and_touches_nothing(connected, slack_api, store):
    workspace(slack_api)
    harness = connected()
    harness.run("slack", "users", "team-1")
    before = store.records.last_seq(USERS)
    slack_api.token = "xoxb-rotated"  # the connection's token is no longer valid
    del slack_api.members["U01"]

    try:
        result = harness.run("slack", "users", "team-1")
    finally:
        del slack_api.token

    message = failure_message(result)
    assert "team-1" in message and "invalid_auth" in message
    assert "xoxb-slack-token" not in message, "the credential itself is never shown"
    assert store.records.last_seq(USERS) == before
    assert set(records(store, USERS)) == {"U01", "U02", "U03"}, "a failed full refresh deletes nothing"
