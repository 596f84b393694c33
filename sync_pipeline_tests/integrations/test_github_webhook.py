"""The GitHub webhook handler: signed `issues` events update the base variant's issues of the right connection."""

from __future__ import annotations

import json

import pytest

from sync_pipeline.integrations import load_registry
from sync_pipeline.sdk import UnknownWebhookConnection, ProviderWebhookContext, WebhookRejected
from sync_pipeline.store import StreamKey
from sync_pipeline_tests.fakes.github import issues_event, signed_headers
from sync_pipeline_tests.results import deleted_ids, records

SECRET = "whsec-acme"
BASE = StreamKey("github", "gh-1", "GithubIssue", "base")
GITHUB = load_registry(extra_modules="").get("github")


def deliver(store, body: bytes, headers: dict[str, str]) -> ProviderWebhookContext:
    ctx = ProviderWebhookContext(GITHUB, store, headers, body)
    GITHUB.webhook_handler(ctx)
    return ctx


@pytest.fixture
def synced(sync, github_api, store):
    """Connection gh-1 (signing secret SECRET) whose base variant has synced issue #1 of acme/web."""
    github_api.put_issue("acme/web", 1, "Original title")
    sync.connect(
        "github",
        "gh-1",
        base_url=github_api.url,
        credentials={"type": "OAUTH2", "access_token": github_api.token},
        config={"webhook_secret": SECRET},
        metadata={"repositories": ["acme/web"]},
    )
    assert sync.run("github", "issues", "gh-1").success
    return github_api.repos["acme/web"][1]


def test_a_signed_edit_updates_the_issue(synced, store):
    edited = {**synced, "title": "Edited on github.com", "updated_at": "2030-01-01T00:00:00Z"}
    body = issues_event("edited", edited, "acme/web")

    ctx = deliver(store, body, signed_headers(body, SECRET))

    [issue] = records(store, BASE).values()
    assert issue["title"] == "Edited on github.com" and issue["repository"] == "acme/web"
    assert ctx.changes.ledgers[("gh-1", "issues")].counts["GithubIssue"].updated == 1


def test_a_signed_deleted_event_deletes_the_issue(synced, store):
    body = issues_event("deleted", synced, "acme/web")

    deliver(store, body, signed_headers(body, SECRET))

    assert records(store, BASE) == {} and deleted_ids(store, BASE) == {str(synced["id"])}


def test_an_opened_issue_is_added(synced, store):
    opened = {**synced, "id": 99, "number": 2, "title": "Brand new"}
    body = issues_event("opened", opened, "acme/web")

    deliver(store, body, signed_headers(body, SECRET))

    assert records(store, BASE)["99"]["title"] == "Brand new"


def test_a_bad_signature_is_rejected_with_401_and_changes_nothing(synced, store):
    body = issues_event("edited", {**synced, "title": "Forged"}, "acme/web")
    before = store.records.last_seq(BASE)

    with pytest.raises(WebhookRejected) as rejected:
        deliver(store, body, signed_headers(body, "not-the-secret"))

    assert rejected.value.status == 401
    assert store.records.last_seq(BASE) == before
    assert [i["title"] for i in records(store, BASE).values()] == ["Original title"]


def test_the_event_goes_to_the_connection_whose_secret_signed_it(synced, sync, github_api, store):
    sync.connect("github", "gh-2", base_url=github_api.url, config={"webhook_secret": "whsec-other"})
    body = issues_event("opened", {**synced, "id": 77, "number": 3}, "acme/web")

    deliver(store, body, signed_headers(body, "whsec-other"))

    assert set(records(store, StreamKey("github", "gh-2", "GithubIssue", "base"))) == {"77"}
    assert "77" not in records(store, BASE)


def test_other_events_and_ping_are_acknowledged_and_ignored(synced, store):
    before = store.records.last_seq(BASE)
    ping = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    push = issues_event("edited", {**synced, "title": "Not an issues event"}, "acme/web")

    deliver(store, ping, signed_headers(ping, SECRET, event="ping"))
    deliver(store, push, signed_headers(push, SECRET, event="push"))

    assert store.records.last_seq(BASE) == before


def test_no_github_connection_at_all_is_an_unknown_connection(store):
    body = issues_event("opened", {"id": 1}, "acme/web")

    with pytest.raises(UnknownWebhookConnection):
        deliver(store, body, signed_headers(body, SECRET))
