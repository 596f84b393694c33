"""The GitHub `issues` sync against a fake REST API with Link-header pages and pull requests mixed in."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import parse_qs

import pytest

from sync_pipeline.store import StreamKey
from sync_pipeline_tests.results import counts, failure_message, materialization_metadata, records



def issues_of(variant: str) -> StreamKey:
    return StreamKey("github", "gh-1", "GithubIssue", variant)


@pytest.fixture
def connected(sync, github_api):
    def connect(metadata=None):
        sync.connect(
            "github",
            "gh-1",
            base_url=github_api.url,
            credentials={"type": "OAUTH2", "access_token": github_api.token},
            metadata=metadata,
        )
        return sync

    return connect


TWO_REPOS = {"web": {"owner": "acme", "repo": "web"}, "api": {"owner": "acme", "repo": "api"}}


def test_two_variants_sync_two_repositories_independently(connected, github_api, store):
    github_api.max_per_page = 2  # so the Link header takes the sync through three pages
    for number in range(1, 5):
        github_api.put_issue("acme/web", number, f"Web issue {number}")
    github_api.put_issue("acme/web", 5, "A pull request", pull_request=True)
    github_api.put_issue("acme/api", 1, "Api issue", state="closed")
    harness = connected(metadata=TWO_REPOS)

    web = harness.run("github", "issues", "gh-1", variant="web")
    api = harness.run("github", "issues", "gh-1", variant="api")

    assert web.success and api.success
    assert counts(web, "GithubIssue") == (4, 0, 0), "pull requests are not issues"
    assert counts(api, "GithubIssue") == (1, 0, 0)
    web_issues = records(store, issues_of("web"))
    assert {i["number"] for i in web_issues.values()} == {1, 2, 3, 4}
    assert {i["repository"] for i in web_issues.values()} == {"acme/web"}
    [closed] = records(store, issues_of("api")).values()
    assert (closed["title"], closed["state"], closed["author"]) == ("Api issue", "closed", "octocat")
    assert closed["labels"] == ["bug"] and closed["assignees"] == ["hubot"]
    assert closed["id"] == str(github_api.repos["acme/api"][1]["id"])
    assert records(store, issues_of("base")) == {}
    web_requests = [r for r in github_api.requests if "/repos/acme/web" in r.url.path or "/repositories/" in r.url.path]
    assert len(web_requests) == 3
    first = web_requests[0]
    assert parse_qs(first.url.query) == {"state": ["all"], "per_page": ["100"]}
    assert first.headers["accept"] == "application/vnd.github+json"
    assert first.headers["x-github-api-version"] == "2022-11-28"


def test_second_run_asks_since_the_first_and_counts_changes_exactly(connected, github_api, store):
    github_api.put_issue("acme/web", 1, "One")
    github_api.put_issue("acme/web", 2, "Two")
    harness = connected(metadata=TWO_REPOS)
    first = harness.run("github", "issues", "gh-1", variant="web")
    first_started = materialization_metadata(first, "GithubIssue").started_at
    asked_before = len(github_api.requests)

    github_api.put_issue("acme/web", 1, "One", state="closed")  # closed
    github_api.put_issue("acme/web", 2, "Two, retitled")  # edited
    github_api.put_issue("acme/web", 3, "Three")  # opened
    second = harness.run("github", "issues", "gh-1", variant="web")

    assert materialization_metadata(second, "GithubIssue").kind == "INCREMENTAL"
    assert counts(second, "GithubIssue") == (1, 2, 0)
    since = parse_qs(github_api.requests[asked_before].url.query)["since"]
    assert since == [first_started.strftime("%Y-%m-%dT%H:%M:%SZ")]
    issues = {i["number"]: i for i in records(store, issues_of("web")).values()}
    assert issues[1]["state"] == "closed" and issues[1]["closed_at"] and issues[2]["title"] == "Two, retitled"


def test_base_variant_syncs_the_listed_repositories_in_either_form(connected, github_api, store):
    github_api.put_issue("acme/web", 1, "Web")
    github_api.put_issue("acme/api", 1, "Api")
    github_api.put_issue("acme/other", 1, "Not listed")

    result = connected(metadata={"repositories": ["acme/web", {"owner": "acme", "repo": "api"}]}).run(
        "github", "issues", "gh-1"
    )

    assert counts(result, "GithubIssue") == (2, 0, 0)
    assert {i["repository"] for i in records(store, issues_of("base")).values()} == {"acme/web", "acme/api"}


def test_base_variant_without_repositories_syncs_nothing(connected, github_api, store):
    github_api.put_issue("acme/web", 1, "Web")

    result = connected().run("github", "issues", "gh-1")

    assert result.success
    assert counts(result, "GithubIssue") == (0, 0, 0)
    assert github_api.requests == []


def test_a_variant_without_its_metadata_fails_naming_the_key_to_set(connected, github_api):
    result = connected(metadata=TWO_REPOS).run("github", "issues", "gh-1", variant="docs")

    message = failure_message(result)
    assert 'metadata["docs"]' in message and "owner" in message and "repo" in message


def test_revoked_token_fails_the_run_with_githubs_message_and_touches_nothing(connected, github_api, store):
    github_api.put_issue("acme/web", 1, "One")
    harness = connected(metadata=TWO_REPOS)
    harness.run("github", "issues", "gh-1", variant="web")
    before = store.records.last_seq(issues_of("web"))
    github_api.put_issue("acme/web", 1, "One, edited")
    github_api.token = "ghp_revoked"

    try:
        result = harness.run("github", "issues", "gh-1", variant="web")
    finally:
        del github_api.token

    message = failure_message(result)
    assert "gh-1" in message and "Bad credentials" in message and "401" in message
    assert store.records.last_seq(issues_of("web")) == before
    assert [i["title"] for i in records(store, issues_of("web")).values()] == ["One"]


def test_a_run_that_fails_mid_repository_resumes_at_that_repositorys_next_page(connected, github_api, store):
    github_api.max_per_page = 2
    for number in range(1, 4):
        github_api.put_issue("acme/web", number, f"Web {number}")
        github_api.put_issue("acme/api", number, f"Api {number}")
    harness = connected(metadata={"repositories": ["acme/web", "acme/api"]})
    github_api.revoke_after_pages = 3  # web 1, web 2, api 1 are served; api 2 fails

    assert not harness.run("github", "issues", "gh-1").success
    github_api.revoke_after_pages = None
    asked_before = len(github_api.requests)
    resumed = harness.run("github", "issues", "gh-1")

    assert resumed.success
    retried = github_api.requests[asked_before:]
    assert len(retried) == 1, "acme/web was finished and acme/api's first page saved: only its last page is read"
    assert retried[0].url.path.startswith("/repositories/") and parse_qs(retried[0].url.query)["page"] == ["2"]
    assert len(records(store, issues_of("base"))) == 6
