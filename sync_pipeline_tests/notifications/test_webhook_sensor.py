"""Webhooks to the app, end to end: real sync runs, the webhook sensor, a real receiver on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import time
from datetime import timedelta

import pytest
from dagster import AssetKey, AssetMaterialization, build_sensor_context

from sync_pipeline.orchestration.lifecycle import add_partition, remove_partition
from sync_pipeline.orchestration.notifications import SENSOR_NAME, run_webhook_tick
from sync_pipeline.settings import WebhookSettings
from sync_pipeline.store import Connection, utcnow
from sync_pipeline.orchestration.run_metadata import RunMetadata
from sync_pipeline.store import DELIVERED, FAILED, PENDING
from sync_pipeline_tests.acme import registry
from sync_pipeline_tests.fakes.receiver import WebhookReceiver, served_receiver

SIGNING_KEY = "test-signing-key"


@pytest.fixture
def app(harness, acme, webhook_receiver, monkeypatch):
    monkeypatch.setenv("SYNC_PIPELINE_WEBHOOK_URL", webhook_receiver.url)
    monkeypatch.setenv("SYNC_PIPELINE_WEBHOOK_SIGNING_KEY", SIGNING_KEY)
    monkeypatch.delenv("SYNC_PIPELINE_WEBHOOK_SEND_EMPTY", raising=False)
    harness.connect("acme", "conn-1", base_url=acme.url, credentials={"type": "API_KEY", "apiKey": acme.token})
    return harness


class Sensor:
    """Ticks the webhook sensor through Dagster, keeping its cursor as the daemon would."""

    def __init__(self, harness) -> None:
        self.harness = harness
        self.cursor: str | None = None

    def tick(self) -> None:
        sensor = self.harness.definitions.resolve_sensor_def(SENSOR_NAME)
        context = build_sensor_context(
            instance=self.harness.instance,
            definitions=self.harness.definitions,
            resources=self.harness.definitions.resources,
            cursor=self.cursor,
        )
        self.cursor = sensor(context).cursor

    def tick_at(self, later: timedelta) -> None:
        """A tick as if `later` had passed: retries whose backoff has elapsed are attempted."""
        report = run_webhook_tick(
            self.harness.instance,
            self.harness.store,
            registry,
            WebhookSettings.from_env(),
            int(self.cursor or 0),
            now=utcnow() + later,
        )
        self.cursor = str(report.cursor)


@pytest.fixture
def sensor(app) -> Sensor:
    return Sensor(app)


def received(receiver: WebhookReceiver) -> list[dict]:
    return [json.loads(body) for _, body in receiver.received()]


def assert_signed(headers: dict[str, str], body: bytes) -> None:
    assert headers["content-type"] == "application/json"
    assert headers["x-nango-hmac-sha256"] == hmac.new(SIGNING_KEY.encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-nango-signature"] == hashlib.sha256(SIGNING_KEY.encode() + body).hexdigest()


def test_a_run_with_changes_sends_one_signed_webhook_with_exact_counts(app, sensor, acme, webhook_receiver, store):
    for n in range(3):
        acme.put(f"c{n}", f"Name{n}")
    result = app.run("acme", "contacts", "conn-1")
    [event] = result.get_asset_materialization_events()
    started_at = RunMetadata.of_event(event.step_materialization_data.materialization).started_at.isoformat()

    sensor.tick()

    [(headers, body)] = webhook_receiver.received()
    assert_signed(headers, body)
    payload = json.loads(body)
    assert body == json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    assert payload == {
        "from": "sync-pipeline",
        "type": "sync",
        "connectionId": "conn-1",
        "providerConfigKey": "acme",
        "syncName": "contacts",
        "syncVariant": "base",
        "model": "AcmeContact",
        "syncType": "INITIAL",
        "success": True,
        "modifiedAfter": started_at,
        "queryTimeStamp": started_at,
        "responseResults": {"added": 3, "updated": 0, "deleted": 0},
        "checkpoints": {"from": None, "to": None},
    }
    [delivery] = store.deliveries.list()
    assert (delivery.status, delivery.attempts, delivery.delivery_id) == (DELIVERED, 1, headers["x-sync-pipeline-delivery-id"])


def test_a_later_run_reports_incremental_with_its_own_counts(app, sensor, acme, webhook_receiver):
    for n in range(3):
        acme.put(f"c{n}", f"Name{n}")
    app.run("acme", "contacts", "conn-1")
    acme.put("c1", "Renamed")
    del acme.contacts["c2"]
    app.run("acme", "contacts", "conn-1")

    sensor.tick()

    first, second = sorted(received(webhook_receiver), key=lambda p: p["queryTimeStamp"])
    assert (first["syncType"], first["responseResults"]) == ("INITIAL", {"added": 3, "updated": 0, "deleted": 0})
    assert (second["syncType"], second["responseResults"]) == ("INCREMENTAL", {"added": 0, "updated": 1, "deleted": 1})


def test_a_sync_with_two_models_sends_one_webhook_per_model(app, sensor, acme, webhook_receiver, store):
    acme.put("c1", "Ada", "ada@one.example")
    acme.put("c2", "Bob", "bob@one.example")
    app.run("acme", "directory", "conn-1")

    sensor.tick()

    by_model = {p["model"]: p["responseResults"] for p in received(webhook_receiver)}
    assert by_model == {
        "AcmeEmail": {"added": 2, "updated": 0, "deleted": 0},
        "AcmeDomain": {"added": 1, "updated": 0, "deleted": 0},
    }
    assert len({headers["x-sync-pipeline-delivery-id"] for headers, _ in webhook_receiver.received()}) == 2


def test_a_run_without_changes_sends_nothing_unless_send_empty(app, sensor, acme, webhook_receiver, monkeypatch):
    acme.put("c1", "Ada")
    app.run("acme", "contacts", "conn-1")
    sensor.tick()
    assert len(webhook_receiver.received()) == 1

    app.run("acme", "contacts", "conn-1")
    sensor.tick()
    assert len(webhook_receiver.received()) == 1

    monkeypatch.setenv("SYNC_PIPELINE_WEBHOOK_SEND_EMPTY", "true")
    app.run("acme", "contacts", "conn-1")
    sensor.tick()
    [*_, empty] = received(webhook_receiver)
    assert (empty["syncType"], empty["responseResults"]) == ("INCREMENTAL", {"added": 0, "updated": 0, "deleted": 0})


def test_a_failed_run_sends_the_failure_form(app, sensor, acme, webhook_receiver):
    acme.put("c1", "Ada")
    acme.crash_after_pages = 0
    assert not app.run("acme", "contacts", "conn-1").success

    sensor.tick()

    [(headers, body)] = webhook_receiver.received()
    assert_signed(headers, body)
    payload = json.loads(body)
    assert set(payload) == {
        "from", "type", "connectionId", "providerConfigKey", "syncName", "syncVariant", "model", "syncType",
        "success", "error", "startedAt", "failedAt",
    }  # fmt: skip
    assert (payload["success"], payload["syncType"], payload["model"]) == (False, "INITIAL", "AcmeContact")
    assert payload["error"]["type"] == "script_error"
    assert "500" in payload["error"]["description"]
    assert payload["startedAt"] <= payload["failedAt"]
    assert headers["x-sync-pipeline-delivery-id"].startswith("f-")


def test_a_failure_of_a_two_model_sync_sends_one_webhook_per_model(app, sensor, acme, webhook_receiver):
    acme.put("c1", "Ada")
    acme.crash_after_pages = 0
    app.run("acme", "directory", "conn-1")

    sensor.tick()

    assert sorted((p["model"], p["success"]) for p in received(webhook_receiver)) == [
        ("AcmeDomain", False),
        ("AcmeEmail", False),
    ]


def test_a_receiver_failing_twice_gets_the_same_delivery_three_times(app, sensor, acme, webhook_receiver, store):
    acme.put("c1", "Ada")
    app.run("acme", "contacts", "conn-1")
    webhook_receiver.fail_next(500, times=2)
    log = store.deliveries

    sensor.tick()
    [delivery] = log.list()
    assert (delivery.status, delivery.attempts) == (PENDING, 1) and "500" in delivery.last_error
    sensor.tick()  # the backoff has not elapsed: no attempt
    assert len(webhook_receiver.received()) == 1

    sensor.tick_at(timedelta(seconds=11))
    sensor.tick_at(timedelta(seconds=11 + 21))

    ids = [headers["x-sync-pipeline-delivery-id"] for headers, _ in webhook_receiver.received()]
    assert len(ids) == 3 and len(set(ids)) == 1
    assert len({body for _, body in webhook_receiver.received()}) == 1
    [delivery] = log.list()
    assert (delivery.status, delivery.attempts, delivery.last_error) == (DELIVERED, 3, None)


def test_a_delivered_webhook_is_forgotten_after_a_week_and_never_sent_again(app, sensor, acme, webhook_receiver, store):
    acme.put("c1", "Ada")
    app.run("acme", "contacts", "conn-1")
    sensor.tick()
    assert len(webhook_receiver.received()) == 1

    sensor.tick_at(timedelta(days=8))  # the delivery is forgotten
    assert store.deliveries.list() == []
    sensor.tick_at(timedelta(days=8, seconds=5))  # its event is still just behind the cursor

    assert len(webhook_receiver.received()) == 1


def test_a_dead_receiver_does_not_hold_up_deliveries_to_another(app, sensor, acme, webhook_receiver, store):
    dead = f"http://127.0.0.1:{closed_port()}/hooks"
    app.connect("acme", "conn-2", base_url=acme.url, credentials={"type": "API_KEY", "apiKey": acme.token})
    set_override(store, "conn-2", dead)
    acme.put("c1", "Ada")
    app.run("acme", "contacts", "conn-1")
    app.run("acme", "contacts", "conn-2")

    sensor.tick()

    assert [p["connectionId"] for p in received(webhook_receiver)] == ["conn-1"]
    by_url = {d.url: d for d in store.deliveries.list()}
    assert by_url[webhook_receiver.url].status == DELIVERED
    assert (by_url[dead].status, by_url[dead].attempts) == (PENDING, 1)
    assert "Connect" in by_url[dead].last_error


def test_a_hanging_receiver_does_not_hold_up_deliveries_to_another(app, sensor, acme, webhook_receiver, store):
    with socket.socket() as hanging:  # accepts connections (backlog) but never answers
        hanging.bind(("127.0.0.1", 0))
        hanging.listen(8)
        slow = f"http://127.0.0.1:{hanging.getsockname()[1]}/hooks"
        app.connect("acme", "conn-2", base_url=acme.url, credentials={"type": "API_KEY", "apiKey": acme.token})
        set_override(store, "conn-2", slow)
        acme.put("c1", "Ada")
        app.run("acme", "contacts", "conn-2")
        app.run("acme", "contacts", "conn-1")

        started = time.monotonic()
        sensor.tick()
        elapsed = time.monotonic() - started

    assert [p["connectionId"] for p in received(webhook_receiver)] == ["conn-1"]
    assert elapsed < 8  # the 5 s timeout of the hanging one, not one after the other
    by_url = {d.url: d for d in store.deliveries.list()}
    assert by_url[slow].status == PENDING and "Timeout" in by_url[slow].last_error


def test_re_running_the_sensor_over_the_same_events_sends_nothing_new(app, sensor, acme, webhook_receiver, store):
    acme.put("c1", "Ada")
    app.run("acme", "contacts", "conn-1")
    sensor.tick()
    sensor.tick()
    assert len(webhook_receiver.received()) == 1

    sensor.cursor = None  # a tick that failed before its cursor was saved reads the same events again
    sensor.tick()

    assert len(webhook_receiver.received()) == 1
    assert len(store.deliveries.list()) == 1


def test_the_connection_override_wins_over_the_environment_url(app, sensor, acme, webhook_receiver, store):
    with served_receiver() as other:
        set_override(store, "conn-1", other.url)
        acme.put("c1", "Ada")
        app.run("acme", "contacts", "conn-1")
        sensor.tick()

    assert webhook_receiver.received() == []
    [(headers, body)] = other.received()
    assert_signed(headers, body)


def test_no_url_means_nothing_is_enqueued(app, sensor, acme, webhook_receiver, store, monkeypatch):
    url = os.environ["SYNC_PIPELINE_WEBHOOK_URL"]
    monkeypatch.delenv("SYNC_PIPELINE_WEBHOOK_URL")
    acme.put("c1", "Ada")
    app.run("acme", "contacts", "conn-1")

    sensor.tick()

    assert webhook_receiver.received() == [] and store.deliveries.list() == []
    # Control: with the URL back, the next run's change is sent.
    monkeypatch.setenv("SYNC_PIPELINE_WEBHOOK_URL", url)
    acme.put("c2", "Bo")
    app.run("acme", "contacts", "conn-1")
    sensor.tick()
    assert {"added": 1, "updated": 0, "deleted": 0} in [payload["responseResults"] for payload in received(webhook_receiver)]


def test_events_from_before_a_partition_was_recreated_are_not_reported(app, sensor, acme, webhook_receiver, store):
    acme.put("c1", "Ada")
    app.run("acme", "contacts", "conn-1")
    sync = registry.find_sync("acme", "contacts")
    remove_partition(app.instance, store, sync, "conn-1", "base")
    time.sleep(0.01)
    add_partition(app.instance, store, sync, "conn-1", "base")

    sensor.tick()

    assert webhook_receiver.received() == []
    # Control: a run of the recreated partition is reported, as a first (INITIAL) run of its new life.
    app.run("acme", "contacts", "conn-1")
    sensor.tick()
    [payload] = received(webhook_receiver)
    assert (payload["syncType"], payload["responseResults"]) == ("INITIAL", {"added": 1, "updated": 0, "deleted": 0})


def test_provider_webhook_materializations_are_reported_as_webhook(app, sensor, acme, webhook_receiver):
    acme.put("c1", "Ada")
    app.run("acme", "contacts", "conn-1")
    sensor.tick()
    app.instance.report_runless_asset_event(
        AssetMaterialization(
            asset_key=["acme", "AcmeContact"],
            partition="conn-1::base",
            metadata={"connection_id": "conn-1", "variant": "base", "sync_type": "WEBHOOK",
                      "started_at": utcnow().isoformat(), "added": 0, "updated": 2, "deleted": 1},
        )  # fmt: skip
    )

    sensor.tick()

    [*_, payload] = received(webhook_receiver)
    assert (payload["syncType"], payload["responseResults"]) == ("WEBHOOK", {"added": 0, "updated": 2, "deleted": 1})


def set_override(store, connection_id: str, url: str) -> None:
    connection = store.connections.get("acme", connection_id)
    store.connections.upsert(
        Connection(
            integration="acme",
            connection_id=connection_id,
            credentials=connection.credentials,
            config=connection.config,
            metadata=connection.metadata,
            webhook_url_override=url,
        )
    )


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_events_beyond_one_page_are_sent_at_the_next_tick_none_skipped(app, sensor, acme, webhook_receiver, monkeypatch):
    import sync_pipeline.orchestration.notifications as webhooks

    monkeypatch.setattr(webhooks, "PAGE", 2)
    acme.put("c1", "Ada")
    for n in range(5):
        acme.put("c1", f"Ada{n}")
        app.run("acme", "contacts", "conn-1")  # one change per run: 5 materializations

    sensor.tick()
    assert len(webhook_receiver.received()) == 2
    sensor.tick()
    sensor.tick()
    sensor.tick()

    ids = [headers["x-sync-pipeline-delivery-id"] for headers, _ in webhook_receiver.received()]
    assert len(ids) == 5 == len(set(ids))


def test_an_event_committed_behind_the_cursor_is_still_sent(app, sensor, acme, webhook_receiver, instance):
    """On PostgreSQL a run's event can commit after an event with a higher id was read: it is not lost."""
    acme.put("c1", "Ada")
    app.run("acme", "contacts", "conn-1")
    [late] = instance.fetch_materializations(AssetKey(["acme", "AcmeContact"]), limit=1).records
    sensor.cursor = str(late.storage_id + 5)  # as if the tick had read past it before it was visible

    sensor.tick()

    assert [body["responseResults"] for body in received(webhook_receiver)] == [{"added": 1, "deleted": 0, "updated": 0}]


def test_after_a_receiver_outage_a_partitions_webhooks_arrive_in_the_order_of_its_runs(app, sensor, acme, webhook_receiver):
    webhook_receiver.down = True
    acme.put("c1", "Ann")
    acme.put("c2", "Bob")
    assert app.run("acme", "contacts", "conn-1").success
    sensor.tick()  # first attempt fails: next in 10 s
    sensor.tick_at(timedelta(seconds=15))  # second attempt fails: next in 20 s
    acme.put("c1", "Anna")
    assert app.run("acme", "contacts", "conn-1").success
    sensor.tick_at(timedelta(seconds=15))  # the second run's webhook waits behind the first

    webhook_receiver.down = False
    sensor.tick_at(timedelta(seconds=20))  # without ordering the second would go now, before the first
    sensor.tick_at(timedelta(seconds=60))

    arrived = [json.loads(body)["responseResults"] for body in webhook_receiver.accepted]
    assert arrived == [{"added": 2, "updated": 0, "deleted": 0}, {"added": 0, "updated": 1, "deleted": 0}]
