"""A failed sync says why where people look: the error's type and message (provider status, URL without secrets,
cause) in `GET /sync/status`, in `GET /connections` `errors` and in the failure webhook."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from sync_pipeline.orchestration.notifications import run_webhook_tick
from sync_pipeline.sdk.errors import describe_error
from sync_pipeline.settings import WebhookSettings


def _connect_github(api: httpx.Client, github_api, token: str, *, new: bool = True) -> None:
    response = api.post("/connections", json={
        "provider_config_key": "github", "connection_id": "acme",
        "credentials": {"type": "OAUTH2", "access_token": token},
        "connection_config": {"base_url": github_api.url}, "metadata": {"web": {"owner": "acme", "repo": "web"}},
    })  # fmt: skip
    assert response.status_code == 200, response.text
    if new:
        variant = api.post("/sync/issues/variant/web", json={"provider_config_key": "github", "connection_id": "acme"})
        assert variant.status_code == 200, variant.text


def test_a_refused_token_shows_its_status_message_and_url_in_status_connections_and_the_webhook(
    api, sync, github_api, webhook_receiver, instance, store
):
    github_api.put_issue("acme/web", 1, "Crash")
    _connect_github(api, github_api, "ghp_revoked-token")

    result = sync.run("github", "issues", "acme", variant="web")

    assert not result.success
    status = api.get("/sync/status", params={"provider_config_key": "github", "connection_id": "acme", "syncs": "issues::web"}).json()
    error = status["syncs"][0]["error"]
    assert status["syncs"][0]["status"] == "ERROR"
    assert error["type"] == "ProviderError"
    assert "401" in error["message"] and "Bad credentials" in error["message"]
    assert f"{github_api.url}/repos/acme/web/issues" in error["message"] and "?" not in error["message"]
    assert "ghp_revoked-token" not in json.dumps(status)

    [connection] = api.get("/connections", params={"integrationId": "github"}).json()["connections"]
    [failing] = connection["errors"]
    assert failing["type"] == "sync" and failing["log_id"] == error["run_id"]
    assert failing["message"] == f"ProviderError: {error['message']}"

    settings = WebhookSettings(url=webhook_receiver.url + "/hooks", signing_key="k", send_empty=False)
    run_webhook_tick(instance, store, sync.registry, settings, 0)
    [(_, body)] = webhook_receiver.received()
    sent = json.loads(body)
    assert sent["success"] is False
    assert sent["error"]["description"] == f"ProviderError: {error['message']}"
    assert "Error occurred while executing op" not in body.decode()


def test_a_later_successful_run_clears_the_connection_error(api, sync, github_api):
    github_api.put_issue("acme/web", 1, "Crash")
    _connect_github(api, github_api, "ghp_revoked-token")
    assert not sync.run("github", "issues", "acme", variant="web").success
    _connect_github(api, github_api, github_api.token, new=False)  # the token is replaced

    assert sync.run("github", "issues", "acme", variant="web").success

    [connection] = api.get("/connections", params={"integrationId": "github"}).json()["connections"]
    assert connection["errors"] == []
    status = api.get("/sync/status", params={"provider_config_key": "github", "connection_id": "acme", "syncs": "*"}).json()
    assert [s["error"] for s in status["syncs"]] == [None]


def test_an_unreachable_provider_is_described_by_its_cause_and_url_without_secrets():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(httpx.ConnectError) as raised:
        httpx.get(f"http://user:hunter2@127.0.0.1:{port}/api/users.list?token=xoxb-secret", timeout=5)

    described = describe_error(raised.value)

    assert described.startswith("ConnectError: ")
    assert f"(GET http://127.0.0.1:{port}/api/users.list)" in described
    assert "hunter2" not in described and "xoxb-secret" not in described
