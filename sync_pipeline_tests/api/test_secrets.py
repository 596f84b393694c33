"""Stored secrets over HTTP: encrypted credentials and connection_config, a wrong or rotated key, `rotate-key`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy import select

from sync_pipeline.api import create_app
from sync_pipeline.integrations import load_registry
from sync_pipeline.sdk import ProviderWebhookContext, WebhookRejected
from sync_pipeline.store import IntegrationCredentialsStore, Store
from sync_pipeline.store._schema import connections
from sync_pipeline_tests.acme import registry
from sync_pipeline_tests.api.conftest import SECRET, assert_error
from sync_pipeline_tests.fakes.github import signed_headers
from sync_pipeline_tests.fakes.server import ServedApp

KEY = "SYNC_PIPELINE_ENCRYPTION_KEY"


@pytest.fixture
def api_with_key(instance, store, monkeypatch) -> Iterator[Callable[[str | None], httpx.Client]]:
    """`api_with_key("new,old")`: the API served over the session's database with those encryption keys."""
    with_stack: list = []

    def serve(keys: str | None) -> httpx.Client:
        if keys is None:
            monkeypatch.delenv(KEY, raising=False)
        else:
            monkeypatch.setenv(KEY, keys)
        keyed = Store(store.engine)  # its connection store reads the keys now
        served = ServedApp(create_app(registry=registry, instance=instance, store=keyed, secret_key=SECRET)).__enter__()
        client = httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {SECRET}"}, timeout=30)
        with_stack.append((served, client))
        return client

    yield serve
    for served, client in with_stack:
        client.close()
        served.__exit__(None, None, None)


def connect(client: httpx.Client, connection_id: str, token: str, **extra) -> None:
    body = {"provider_config_key": "acme", "connection_id": connection_id,
            "credentials": {"type": "API_KEY", "apiKey": token}, **extra}
    response = client.post("/connections", json=body)
    assert response.status_code == 200, response.text


def stored_rows(store) -> dict[str, tuple[str, str]]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(connections.c.connection_id, connections.c.credentials, connections.c.connection_config))
        return {row.connection_id: (row.credentials, row.connection_config) for row in rows}


def credentials(client: httpx.Client, connection_id: str) -> httpx.Response:
    return client.get(f"/connections/{connection_id}", params={"provider_config_key": "acme"})


def test_credentials_and_connection_config_are_stored_encrypted(api_with_key, store):
    client = api_with_key("key-1")
    connect(client, "conn-1", "tok-123", connection_config={"webhook_secret": "whsec-456", "base_url": "http://x"})

    sealed_credentials, sealed_config = stored_rows(store)["conn-1"]
    assert sealed_credentials.startswith("fernet:") and sealed_config.startswith("fernet:")
    assert "tok-123" not in sealed_credentials and "whsec-456" not in sealed_config
    got = credentials(client, "conn-1").json()
    assert got["credentials"]["apiKey"] == "tok-123" and got["connection_config"]["webhook_secret"] == "whsec-456"


def test_a_wrong_key_hides_only_the_credentials_it_cannot_read(api_with_key, store):
    connect(api_with_key("old-key"), "conn-1", "tok-1")
    new = api_with_key("new-key")
    connect(new, "conn-2", "tok-2")

    listed = new.get("/connections")
    assert listed.status_code == 200, listed.text
    assert {c["connection_id"] for c in listed.json()["connections"]} == {"conn-1", "conn-2"}
    error = assert_error(credentials(new, "conn-1"), 409, "credentials_unreadable")
    assert KEY in error["message"] and "conn-1" in error["message"] and "tok-1" not in error["message"]
    assert credentials(new, "conn-2").json()["credentials"]["apiKey"] == "tok-2"
    # Control routes need no credentials: they work on the unreadable connection too.
    assert new.post("/sync/trigger", json={"provider_config_key": "acme", "connection_id": "conn-1"}).json() == {"success": True}
    status = new.get("/sync/status", params={"syncs": "*", "provider_config_key": "acme", "connection_id": "conn-1"})
    assert status.status_code == 200

    both = api_with_key("new-key, old-key")  # rotation: the first encrypts, every one decrypts
    assert credentials(both, "conn-1").json()["credentials"]["apiKey"] == "tok-1"
    assert new.delete("/connections/conn-1", params={"provider_config_key": "acme"}).json()["success"] is True
    assert set(stored_rows(store)) == {"conn-2"}


def test_encrypted_credentials_without_any_key_are_a_clear_409(api_with_key):
    connect(api_with_key("key-1"), "conn-1", "tok-1")
    error = assert_error(credentials(api_with_key(None), "conn-1"), 409, "credentials_unreadable")
    assert f"set {KEY}" in error["message"]


def _command(args: list[str], database_url: str, tmp_path, **env: str) -> subprocess.CompletedProcess:
    """Run a command of the deployment whose Dagster home is `tmp_path` (made here: `serve` refuses to create one)."""
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    environment = {k: v for k, v in os.environ.items() if k != KEY}
    environment.update(SYNC_PIPELINE_DATABASE_URL=database_url, DAGSTER_HOME=str(tmp_path), **env)
    return subprocess.run([sys.executable, *args], env=environment, capture_output=True, text=True, timeout=300)


def test_rotate_key_encrypts_every_secret_with_the_first_key(api_with_key, store, database_url, tmp_path):
    connect(api_with_key(None), "plain", "tok-plain", connection_config={"webhook_secret": "whsec-plain"})
    connect(api_with_key("old-key"), "old", "tok-old")
    connect(api_with_key("lost-key"), "lost", "tok-lost")
    IntegrationCredentialsStore(store.engine, "old-key").put("acme", {"type": "OAUTH2", "client_id": "c", "client_secret": "s-old"})
    before = stored_rows(store)
    assert "tok-plain" in before["plain"][0]

    done = _command(["-m", "sync_pipeline.cli", "rotate-key"], database_url, tmp_path, **{KEY: "new-key,old-key"})

    assert done.returncode == 1, done.stdout + done.stderr
    assert "2 connections and 1 integrations' client credentials encrypted" in done.stdout
    assert "lost (acme)" in done.stderr and "tok-" not in done.stdout + done.stderr
    after = stored_rows(store)
    assert after["lost"] == before["lost"]  # left as it was
    assert all(value.startswith("fernet:") for name in ("plain", "old") for value in after[name])
    new_only = api_with_key("new-key")
    assert credentials(new_only, "plain").json()["connection_config"] == {"webhook_secret": "whsec-plain"}
    assert credentials(new_only, "old").json()["credentials"]["apiKey"] == "tok-old"
    assert_error(credentials(new_only, "lost"), 409, "credentials_unreadable")
    assert IntegrationCredentialsStore(store.engine, "new-key").get("acme").credentials["client_secret"] == "s-old"


def test_rotate_key_needs_a_key(database_url, tmp_path):
    done = _command(["-m", "sync_pipeline.cli", "rotate-key"], database_url, tmp_path)
    assert done.returncode != 0 and KEY in done.stderr


RESOURCE = "from sync_pipeline.orchestration.resources import SyncPipelineResource; SyncPipelineResource().store()"


@pytest.mark.parametrize(("keys", "said"), [
    ("wrong-key", "decrypts the secrets of none of the 1 most recently written connections"),
    (None, f"set {KEY}"),
    ("a,,b", "empty key"),
])
def test_serve_and_the_daemon_resource_refuse_to_start_with_a_key_that_reads_nothing(
    api_with_key, database_url, tmp_path, keys, said
):
    connect(api_with_key("right-key"), "conn-1", "tok-1")
    env = {KEY: keys} if keys is not None else {}

    serve = _command(["-m", "sync_pipeline.cli", "serve", "--port", "0"], database_url, tmp_path,
                     SYNC_PIPELINE_SECRET_KEY="s", **env)
    resource = _command(["-c", RESOURCE], database_url, tmp_path, **env)

    assert serve.returncode != 0 and said in serve.stderr and "Traceback" not in serve.stderr
    assert "EncryptionKeyError" in resource.stderr and said in resource.stderr


def test_github_verifies_webhooks_with_an_encrypted_webhook_secret(store, monkeypatch):
    from sync_pipeline.store import Connection

    monkeypatch.setenv(KEY, "key-1")
    keyed = Store(store.engine)
    keyed.connections.upsert(Connection("github", "gh-1", {"type": "NONE"}, config={"webhook_secret": "whsec-gh"}))
    assert "whsec-gh" not in stored_rows(store)["gh-1"][1]
    github = load_registry(extra_modules="").get("github")
    body = b'{"zen": "ping"}'

    github.webhook_handler(ProviderWebhookContext(github, keyed, {**signed_headers(body, "whsec-gh"), "X-GitHub-Event": "ping"}, body))
    with pytest.raises(WebhookRejected):
        github.webhook_handler(ProviderWebhookContext(github, keyed, {**signed_headers(body, "other"), "X-GitHub-Event": "ping"}, body))
