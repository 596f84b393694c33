"""Where webhooks may go: refused when a connection's webhook_url_override is given, and again when delivering."""

from __future__ import annotations

import httpx
import pytest

from sync_pipeline.destinations import guarded_client
from sync_pipeline.notifications.delivery import deliver_due
from sync_pipeline.store import DELIVERED, FAILED, PENDING, DeliveryLog
from sync_pipeline_tests.api.conftest import assert_error

ALWAYS_REFUSED = [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://2852039166/latest/meta-data/",  # 169.254.169.254 as one number
    "http://[::ffff:169.254.169.254]/",
    "http://[fe80::1]/hooks",
    "http://100.100.100.200/",  # Alibaba Cloud's metadata service
    "http://0.0.0.0:8080/",
]
PRIVATE = ["http://127.0.0.1:9/hooks", "http://localhost:9/hooks", "http://10.1.2.3/hooks", "http://0x7f.1/hooks",
           "http://[::1]:9/hooks", "http://192.168.0.10/"]


def import_with(client, url: str) -> httpx.Response:
    return client.post("/connections", json={
        "provider_config_key": "acme", "connection_id": "c", "credentials": {"type": "NONE"}, "webhook_url_override": url,
    })


@pytest.mark.parametrize("url", ALWAYS_REFUSED)
def test_link_local_and_metadata_addresses_are_always_refused(client, store, url):
    error = assert_error(import_with(client, url), 400, "invalid_body")  # private addresses allowed by the suite
    assert "webhooks may not go to" in error["message"]
    assert store.connections.summaries() == []


@pytest.mark.parametrize("url", PRIVATE)
def test_private_and_loopback_addresses_are_refused_unless_allowed(client, store, monkeypatch, url):
    monkeypatch.delenv("SYNC_PIPELINE_ALLOW_PRIVATE_WEBHOOK_URLS")
    error = assert_error(import_with(client, url), 400, "invalid_body")
    assert "SYNC_PIPELINE_ALLOW_PRIVATE_WEBHOOK_URLS" in error["message"]

    monkeypatch.setenv("SYNC_PIPELINE_ALLOW_PRIVATE_WEBHOOK_URLS", "true")
    assert import_with(client, url).status_code == 200


def test_a_name_that_does_not_resolve_yet_is_accepted(client):
    assert import_with(client, "https://hooks.example.invalid/x").status_code == 200


def test_delivery_checks_the_address_again_and_fails_at_once(store, webhook_receiver, monkeypatch):
    log = DeliveryLog(store.engine)
    log.enqueue("to-override", webhook_receiver.url, "{}")  # accepted while allowed, or resolving elsewhere then
    log.enqueue("by-name", webhook_receiver.url.replace("127.0.0.1", "localhost"), "{}")
    log.enqueue("metadata", "http://169.254.169.254/latest", "{}")
    monkeypatch.delenv("SYNC_PIPELINE_ALLOW_PRIVATE_WEBHOOK_URLS")

    assert deliver_due(log, "key") == {DELIVERED: 0, PENDING: 0, FAILED: 3}

    assert webhook_receiver.requests == []
    assert "private or loopback" in log.get("to-override").last_error
    assert "private or loopback" in log.get("by-name").last_error
    assert "link-local or cloud metadata" in log.get("metadata").last_error


def test_the_operators_own_webhook_url_may_be_private(store, webhook_receiver, monkeypatch):
    monkeypatch.delenv("SYNC_PIPELINE_ALLOW_PRIVATE_WEBHOOK_URLS")
    log = DeliveryLog(store.engine)
    log.enqueue("m-1", webhook_receiver.url, "{}")

    assert deliver_due(log, "key", trusted_url=webhook_receiver.url) == {DELIVERED: 1, PENDING: 0, FAILED: 0}
    assert len(webhook_receiver.requests) == 1


def test_the_guarded_client_checks_the_address_it_connects_to(webhook_receiver):
    with guarded_client(allow_private=False, timeout=5) as client:
        with pytest.raises(httpx.ConnectError, match="private or loopback"):
            client.post(webhook_receiver.url, content=b"{}")
    with guarded_client(allow_private=True, timeout=5) as client:
        assert client.post(webhook_receiver.url, content=b"{}").status_code == 200
    assert len(webhook_receiver.requests) == 1


def test_patching_a_connection_to_a_refused_address_is_refused(client, store):
    assert import_with(client, "https://hooks.example.invalid/x").status_code == 200
    response = client.patch("/connections/c", params={"provider_config_key": "acme"},
                            json={"webhook_url_override": "http://169.254.169.254/latest"})
    assert_error(response, 400, "invalid_body")
    assert store.connections.get("acme", "c").webhook_url_override == "https://hooks.example.invalid/x"
