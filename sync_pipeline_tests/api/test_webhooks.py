"""Provider webhooks into the records cache (and Dagster), and the log of webhooks sent to the app."""

from __future__ import annotations

from dagster import AssetKey, AssetRecordsFilter

from sync_pipeline.orchestration.run_metadata import RunMetadata
from sync_pipeline.store import StreamKey
from sync_pipeline_tests.acme import WEBHOOK_SECRET
from sync_pipeline_tests.api.conftest import assert_error, import_acme, stream_headers

CONTACT = {"id": "w1", "name": "Web", "email": "web@example.com", "updated_at": "2024-01-01T00:00:00Z"}
SIGNED = {"X-Acme-Secret": WEBHOOK_SECRET}


def materializations(instance):
    return instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(["acme", "AcmeContact"]), asset_partitions=["conn-1::base"]), limit=10
    ).records


def test_webhook_saves_records_and_reports_a_webhook_materialization(anonymous, client, acme, instance, store):
    import_acme(client, acme)
    # No bearer key: providers authenticate with their own signatures.
    response = anonymous.post("/webhook/acme", json={"connection_id": "conn-1", "contact": CONTACT}, headers=SIGNED)
    assert response.status_code == 200, response.text
    [record] = client.get("/records", params={"model": "AcmeContact"}, headers=stream_headers()).json()["records"]
    assert record["id"] == "w1" and record["_nango_metadata"]["last_action"] == "ADDED"

    [event] = materializations(instance)
    meta = RunMetadata.from_record(event)
    assert meta.kind == "WEBHOOK" and meta.variant == "base" and meta.connection_id == "conn-1"
    assert (meta.added, meta.updated, meta.deleted, meta.total_records) == (1, 0, 0, 1)
    assert event.event_log_entry.run_id == ""  # runless

    anonymous.post("/webhook/acme/", json={"connection_id": "conn-1", "contact": CONTACT, "action": "delete"}, headers=SIGNED)
    assert store.records.count_live(StreamKey("acme", "conn-1", "AcmeContact")) == 0
    assert len(materializations(instance)) == 2
    # The delete's low watermark is the cursor of the change before it: reading after it gives the delete.
    deletion = RunMetadata.from_record(materializations(instance)[0])
    assert deletion.low_watermark == record["_nango_metadata"]["cursor"]
    # Nothing changed: nothing reported.
    anonymous.post("/webhook/acme", json={"connection_id": "conn-1", "contact": CONTACT, "action": "delete"}, headers=SIGNED)
    assert len(materializations(instance)) == 2
    [status] = client.get("/sync/status", params={"syncs": "contacts", "provider_config_key": "acme"}).json()["syncs"]
    assert status["status"] == "STOPPED"  # a webhook is not a run


def test_webhook_errors_store_nothing(anonymous, client, acme, instance, store):
    import_acme(client, acme)
    event = {"connection_id": "conn-1", "contact": CONTACT}
    assert_error(anonymous.post("/webhook/nowhere", json=event, headers=SIGNED), 404, "unknown_provider_config")
    assert_error(anonymous.post("/webhook/acme", json={**event, "connection_id": "nobody"}, headers=SIGNED), 404, "unknown_connection")
    assert_error(anonymous.post("/webhook/acme", json=event), 401, "invalid_webhook_signature")
    assert_error(anonymous.post("/webhook/acme", content=b"{not json", headers=SIGNED), 400, "invalid_body")
    assert_error(anonymous.post("/webhook/acme", json=[1], headers=SIGNED), 400, "invalid_body")
    assert store.records.last_seq(StreamKey("acme", "conn-1", "AcmeContact")) == 0
    assert materializations(instance) == []


def test_webhook_deliveries(client, store):
    log = store.deliveries
    log.enqueue("d-1", "https://app.example/hook", '{"type":"sync"}')
    log.enqueue("d-2", "https://app.example/hook", '{"type":"sync"}')
    response = client.get("/webhook-deliveries")
    assert response.status_code == 200, response.text
    deliveries = response.json()["deliveries"]
    assert {d["delivery_id"] for d in deliveries} == {"d-1", "d-2"}
    assert deliveries[0]["status"] == "pending" and deliveries[0]["body"] == {"type": "sync"}
    assert client.get("/webhook-deliveries/", params={"status": "pending", "limit": 1}).json()["deliveries"][0]["attempts"] == 0
    assert client.get("/webhook-deliveries", params={"status": "failed"}).json() == {"deliveries": []}
    assert_error(client.get("/webhook-deliveries", params={"status": "lost"}), 400, "invalid_query_params")
    assert_error(client.get("/webhook-deliveries", params={"colour": "red"}), 400, "invalid_query_params")
