"""Provider webhooks forwarded to the app as Nango's `forward` webhooks, signed like the others; and a secondary
webhook URL (SYNC_PIPELINE_WEBHOOK_URL_SECONDARY) that receives everything the first one does."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator

import pytest

from sync_pipeline.orchestration.notifications import run_webhook_tick
from sync_pipeline.settings import WebhookSettings
from sync_pipeline_tests.acme import WEBHOOK_SECRET, registry
from sync_pipeline_tests.api.conftest import import_acme
from sync_pipeline_tests.fakes.receiver import WebhookReceiver, served_receiver

SIGNING_KEY = "app-signing-key"
CONTACT = {"id": "w1", "name": "Web", "email": "web@example.com", "updated_at": "2024-01-01T00:00:00Z"}
EVENT = {"connection_id": "conn-1", "contact": CONTACT}


@pytest.fixture
def second_receiver() -> Iterator[WebhookReceiver]:
    with served_receiver() as receiver:
        yield receiver


@pytest.fixture
def webhook_env(monkeypatch, webhook_receiver):
    monkeypatch.setenv("SYNC_PIPELINE_WEBHOOK_URL", webhook_receiver.url)
    monkeypatch.setenv("SYNC_PIPELINE_WEBHOOK_SIGNING_KEY", SIGNING_KEY)
    monkeypatch.delenv("SYNC_PIPELINE_WEBHOOK_URL_SECONDARY", raising=False)
    return monkeypatch


def bodies(receiver: WebhookReceiver) -> list[dict]:
    return [json.loads(body) for _, body in receiver.received()]


def test_a_provider_webhook_is_forwarded_to_the_app_signed_like_the_others(webhook_env, anonymous, client, acme, instance, store, webhook_receiver):
    import_acme(client, acme)

    response = anonymous.post("/webhook/acme", json=EVENT, headers={"X-Acme-Secret": WEBHOOK_SECRET})
    assert response.status_code == 200, response.text
    run_webhook_tick(instance, store, registry, WebhookSettings.from_env(), 0)

    received = webhook_receiver.received()
    [forwarded] = [(headers, body) for headers, body in received if json.loads(body)["type"] == "forward"]
    headers, body = forwarded
    assert json.loads(body) == {
        "from": "acme", "type": "forward", "connectionId": "conn-1", "providerConfigKey": "acme", "payload": EVENT,
    }  # fmt: skip
    assert headers["x-nango-hmac-sha256"] == hmac.new(SIGNING_KEY.encode(), body, hashlib.sha256).hexdigest()
    # The records it changed are announced as usual, besides.
    assert [b["syncType"] for b in map(json.loads, (b for _, b in received)) if b["type"] == "sync"] == ["WEBHOOK"]


def test_a_provider_webhook_for_no_known_connection_is_not_forwarded(webhook_env, anonymous, client, acme, instance, store, webhook_receiver):
    import_acme(client, acme)

    anonymous.post("/webhook/acme", json={**EVENT, "connection_id": "nobody"}, headers={"X-Acme-Secret": WEBHOOK_SECRET})
    run_webhook_tick(instance, store, registry, WebhookSettings.from_env(), 0)

    assert webhook_receiver.received() == []


def test_a_secondary_webhook_url_receives_everything_the_first_does(
    webhook_env, anonymous, client, acme, harness, instance, store, webhook_receiver, second_receiver
):
    webhook_env.setenv("SYNC_PIPELINE_WEBHOOK_URL_SECONDARY", second_receiver.url)
    acme.put("c1", "Ada")
    import_acme(client, acme)
    assert harness.run("acme", "contacts", "conn-1").success  # a sync webhook
    acme.crash_after_pages = 0
    assert not harness.run("acme", "contacts", "conn-1", mode="full_refresh").success  # a failure webhook
    anonymous.post("/webhook/acme", json=EVENT, headers={"X-Acme-Secret": WEBHOOK_SECRET})  # a forward and a sync

    run_webhook_tick(instance, store, registry, WebhookSettings.from_env(), 0)

    first = bodies(webhook_receiver)
    assert sorted((b["type"], b.get("syncType"), b.get("success")) for b in first) == [
        ("forward", None, None), ("sync", "INITIAL", False), ("sync", "INITIAL", True), ("sync", "WEBHOOK", True),
    ]  # fmt: skip
    assert sorted(map(json.dumps, bodies(second_receiver))) == sorted(map(json.dumps, first))
    assert all(h["x-nango-hmac-sha256"] for h, _ in second_receiver.received())


def test_a_secondary_receiver_that_is_down_holds_up_nothing_for_the_first(
    webhook_env, client, acme, harness, instance, store, webhook_receiver
):
    webhook_env.setenv("SYNC_PIPELINE_WEBHOOK_URL_SECONDARY", "http://127.0.0.1:9/down")  # nothing listens there
    acme.put("c1", "Ada")
    import_acme(client, acme)
    assert harness.run("acme", "contacts", "conn-1").success
    acme.put("c2", "Grace")
    assert harness.run("acme", "contacts", "conn-1").success

    run_webhook_tick(instance, store, registry, WebhookSettings.from_env(), 0)

    assert [b["responseResults"]["added"] for b in bodies(webhook_receiver)] == [1, 1]
