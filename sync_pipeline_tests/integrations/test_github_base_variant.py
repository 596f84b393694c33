"""A GitHub connection has a base variant only when it has work: its metadata lists `repositories`, or a provider
webhook wrote issues to it. Without them it would be a partition and a run that sync nothing."""

from __future__ import annotations

import httpx

from sync_pipeline_tests.fakes.github import issues_event, signed_headers

STATUS = {"provider_config_key": "github", "connection_id": "acme", "syncs": "*"}


def _connect(api: httpx.Client, github_api, metadata: dict) -> None:
    response = api.post("/connections", json={
        "provider_config_key": "github", "connection_id": "acme",
        "credentials": {"type": "OAUTH2", "access_token": github_api.token},
        "connection_config": {"base_url": github_api.url, "webhook_secret": "whsec"}, "metadata": metadata,
    })  # fmt: skip
    assert response.status_code == 200, response.text


def test_without_repositories_there_is_no_base_variant_to_run(api, github_api, instance):
    _connect(api, github_api, {"web": {"owner": "acme", "repo": "web"}})

    assert api.get("/sync/status", params=STATUS).json()["syncs"] == []
    assert instance.get_dynamic_partitions("github__issues") == []


def test_setting_repositories_adds_the_base_variant_due_at_once(api, github_api, instance):
    _connect(api, github_api, {})

    response = api.patch("/connections/metadata", json={
        "provider_config_key": "github", "connection_id": "acme", "metadata": {"repositories": ["acme/web"]}})  # fmt: skip

    assert response.status_code == 200
    [base] = api.get("/sync/status", params=STATUS).json()["syncs"]
    assert (base["variant"], base["nextScheduledSyncAt"] is not None) == ("base", True)
    assert instance.get_dynamic_partitions("github__issues") == ["acme::base"]


def test_a_provider_webhook_creates_the_base_partition_it_writes_to_without_scheduling_it(api, github_api, instance):
    _connect(api, github_api, {})
    issue = github_api.put_issue("acme/web", 1, "Reported by webhook")
    body = issues_event("opened", issue, "acme/web")

    response = api.post("/webhook/github", content=body, headers=signed_headers(body, "whsec"))

    assert response.status_code == 200, response.text
    [base] = api.get("/sync/status", params=STATUS).json()["syncs"]
    assert base["variant"] == "base" and base["nextScheduledSyncAt"] is None  # never run on a schedule
    records = api.get("/records", params={"model": "GithubIssue"},
                      headers={"Connection-Id": "acme", "Provider-Config-Key": "github"}).json()["records"]  # fmt: skip
    assert [r["title"] for r in records] == ["Reported by webhook"]
