"""Sync control over HTTP: the schedule rows the scheduling sensor reads, status from Dagster, variants."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sync_pipeline.orchestration.scheduling import evaluate_schedule
from sync_pipeline.store import StreamKey, from_iso, to_iso, utcnow
from sync_pipeline.store import schema

partitions = schema.tables["sp_partitions"]
from sync_pipeline_tests.api.conftest import assert_error, import_acme

KEY = {"provider_config_key": "acme", "connection_id": "conn-1"}


@pytest.fixture
def connected(client, acme):
    import_acme(client, acme)
    import_acme(client, acme, "conn-2")


def row(store, sync="contacts", key="conn-1::base"):
    return store.partitions.get("acme", sync, key)


@pytest.mark.parametrize(
    "extra, mode",
    [
        ({}, "incremental"),
        ({"opts": {"reset": True}}, "full_refresh"),
        ({"sync_mode": "full_refresh"}, "full_refresh"),
        ({"full_resync": True}, "full_refresh"),
        ({"opts": {"emptyCache": True}}, "incremental"),  # without reset, ignored as Nango does
        ({"sync_mode": "full_refresh_and_clear_cache"}, "full_refresh_and_clear_cache"),
        ({"opts": {"reset": True, "emptyCache": True}}, "full_refresh_and_clear_cache"),
    ],
)
def test_trigger_modes(client, connected, store, extra, mode):
    response = client.post("/sync/trigger", json={"syncs": ["contacts"], **KEY, **extra})
    assert response.json() == {"success": True}
    assert row(store).trigger_mode == mode and row(store).triggered_at is not None
    assert row(store, key="conn-2::base").trigger_mode is None
    assert row(store, "leads").trigger_mode is None


def test_trigger_selections(client, connected, store):
    # Without connection_id: every connection of the integration; headers may carry the keys.
    assert client.post("/sync/trigger", json={"syncs": ["leads"], "provider_config_key": "acme"}).status_code == 200
    assert row(store, "leads").trigger_mode == row(store, "leads", "conn-2::base").trigger_mode == "incremental"
    client.post("/sync/directory/variant/v1", json=KEY)
    response = client.post("/sync/trigger/", json={"syncs": [{"name": "directory", "variant": "v1"}]},
                           headers={"Provider-Config-Key": "acme", "Connection-Id": "conn-1"})
    assert response.status_code == 200, response.text
    assert row(store, "directory", "conn-1::v1").trigger_mode == "incremental"
    assert row(store, "directory").trigger_mode is None
    assert client.post("/sync/trigger", json={"syncs": ["directory::base"], **KEY}).status_code == 200
    assert row(store, "directory").trigger_mode == "incremental"
    # An empty list: every sync (and variant) of the connection.
    assert client.post("/sync/trigger", json={"syncs": [], **KEY, "opts": {"reset": True}}).status_code == 200
    assert {r.trigger_mode for r in store.partitions.list("acme", connection_id="conn-1")} == {"full_refresh"}


def test_a_trigger_with_allow_mass_delete_lets_that_one_run_through_the_guard(client, connected, harness, store):
    from sync_pipeline.vocabulary import ALLOW_MASS_DELETE_TAG

    body = {"syncs": ["contacts"], **KEY, "opts": {"allowMassDelete": True}}
    assert client.post("/sync/trigger", json=body).json() == {"success": True}
    assert row(store).trigger_allow_mass_delete and not row(store, "leads").trigger_allow_mass_delete

    tick = evaluate_schedule(harness.instance, store, harness.registry, utcnow())

    allowed = {(r.job_name, r.partition_key) for r in tick.requests if r.tags.get(ALLOW_MASS_DELETE_TAG) == "true"}
    assert allowed == {("acme__contacts", "conn-1::base")}
    assert not row(store).trigger_allow_mass_delete, "for that one run only"


def test_control_errors_change_nothing(client, connected, store):
    before = store.partitions.list("acme")
    for path in ("/sync/trigger", "/sync/pause", "/sync/start"):
        assert_error(client.post(path, json={"syncs": ["nope"], **KEY}), 404, "unknown_sync")
        assert_error(client.post(path, json={"syncs": ["contacts"], **KEY, "connection_id": "nobody"}), 404, "unknown_connection")
        assert_error(client.post(path, json={"syncs": ["contacts"], **KEY, "provider_config_key": "x"}), 404, "unknown_provider_config")
        assert_error(client.post(path, json={"syncs": ["contacts::v9"], **KEY}), 404, "not_found")
        assert_error(client.post(path, json={"syncs": ["contacts"]}), 400, "invalid_body")
        assert_error(client.post(path, json={"syncs": "contacts", **KEY}), 400, "invalid_body")
        assert_error(client.post(path, content=b"[1,", headers={"Content-Type": "application/json"}), 400, "invalid_body")
        assert_error(client.post(path, json={"syncs": ["contacts::bad variant"], **KEY}), 400, "invalid_body")
    assert_error(client.post("/sync/trigger", json={"syncs": ["contacts"], **KEY, "sync_mode": "everything"}), 400, "invalid_body")
    assert store.partitions.list("acme") == before


def test_pause_and_start(client, connected, store):
    assert client.post("/sync/pause", json={"syncs": ["contacts", "directory"], **KEY}).json() == {"success": True}
    assert row(store).paused and row(store, "directory").paused and not row(store, "leads").paused
    assert row(store, "directory").next_due_at is None  # never scheduled: auto_start False
    assert client.post("/sync/start", json={"syncs": ["contacts", "directory"], **KEY}).json() == {"success": True}
    assert not row(store).paused
    assert row(store, "directory").next_due_at is not None  # a sync that never ran runs now


def test_status(client, acme, connected, harness, store):
    acme.put("c1", "Ann")
    acme.put("c2", "Bob")
    status = client.get("/sync/status", params={"syncs": "contacts", **KEY}).json()["syncs"]
    assert [(s["name"], s["status"], s["finishedAt"]) for s in status] == [("contacts", "STOPPED", None)]
    assert status[0]["nextScheduledSyncAt"] is not None and status[0]["frequency"] == "every hour"

    assert harness.run("acme", "contacts", "conn-1").success
    [done] = client.get("/sync/status", params={"syncs": "contacts", **KEY}).json()["syncs"]
    assert done["status"] == "SUCCESS" and done["latestExecutionStatus"] == "SUCCESS"
    assert done["id"] == "acme__contacts/conn-1::base" and done["variant"] == "base"
    assert done["finishedAt"] is not None and done["type"] == "INITIAL"
    assert done["latestResult"] == {"AcmeContact": {"added": 2, "updated": 0, "deleted": 0}}
    assert done["recordCount"] == {"AcmeContact": 2}
    assert done["checkpoint"] is None  # the sync cleared it at the end

    client.post("/sync/pause", json={"syncs": ["contacts"], **KEY})
    [paused] = client.get("/sync/status", params={"syncs": "contacts", **KEY}).json()["syncs"]
    assert paused["status"] == "PAUSED" and paused["nextScheduledSyncAt"] is None

    acme.fail_next(500, times=50)
    assert not harness.run("acme", "leads", "conn-1").success
    [failed] = client.get("/sync/status/", params={"syncs": "leads::base", **KEY}).json()["syncs"]
    assert failed["status"] == "ERROR" and failed["finishedAt"] is not None

    everything = client.get("/sync/status", params={"syncs": "*", "provider_config_key": "acme"}).json()["syncs"]
    assert len(everything) == 6
    assert_error(client.get("/sync/status", params=KEY), 400, "invalid_query_params")
    assert_error(client.get("/sync/status", params={"syncs": "nope", **KEY}), 404, "unknown_sync")


def test_status_says_when_a_failed_sync_is_retried(client, acme, connected, harness, store):
    evaluate_schedule(harness.instance, store, harness.registry, utcnow())  # the first runs are requested
    acme.crash_after_pages = 0  # 500 from now on
    assert not harness.run("acme", "contacts", "conn-1").success
    [before] = client.get("/sync/status", params={"syncs": "contacts", **KEY}).json()["syncs"]
    assert before["status"] == "ERROR" and before["retry"] is None  # the scheduler has not seen it yet

    evaluate_schedule(harness.instance, store, harness.registry, utcnow())

    [failed] = client.get("/sync/status", params={"syncs": "contacts", **KEY}).json()["syncs"]
    retry = failed["retry"]
    assert retry["failures"] == 1 and failed["nextScheduledSyncAt"] == retry["nextRetryAt"]
    assert from_iso(retry["nextRetryAt"]) - from_iso(retry["lastFailedAt"]) == timedelta(minutes=1)

    acme.crash_after_pages = None
    assert harness.run("acme", "contacts", "conn-1").success
    evaluate_schedule(harness.instance, store, harness.registry, utcnow())
    [recovered] = client.get("/sync/status", params={"syncs": "contacts", **KEY}).json()["syncs"]
    assert recovered["status"] == "SUCCESS" and recovered["retry"] is None


def test_frequency(client, connected, store):
    body = {"sync_name": "contacts", **KEY, "frequency": "every 5 minutes"}
    assert client.put("/sync/update-connection-frequency", json=body).json() == {"frequency": "every 5 minutes"}
    assert row(store).frequency_seconds == 300
    assert client.put("/sync/update-connection-frequency", json={**body, "frequency": "1h"}).json() == {"frequency": "every hour"}
    [status] = client.get("/sync/status", params={"syncs": "contacts", **KEY}).json()["syncs"]
    assert status["frequency"] == "every hour"
    assert client.put("/sync/update-connection-frequency", json={**body, "sync_name": "leads", "frequency": None}).json() == {
        "frequency": "every 5 minutes"
    }
    assert row(store, "leads").frequency_seconds is None
    for bad in ("every 5 seconds", "sometimes", 12):
        assert_error(client.put("/sync/update-connection-frequency", json={**body, "frequency": bad}), 400, "invalid_body")
    assert_error(client.put("/sync/update-connection-frequency", json={**body, "sync_name": "nope"}), 404, "unknown_sync")
    assert_error(client.put("/sync/update-connection-frequency", json={**body, "sync_variant": "v1"}), 404, "not_found")
    assert row(store).frequency_seconds == 3600


def test_variants_up_to_the_cap(client, connected, instance, store):
    for n in range(1, 100):  # the base variant counts: 99 more reach 100
        response = client.post(f"/sync/directory/variant/v{n}", json=KEY)
        assert response.status_code == 200, response.text
    assert response.json() == {"id": "acme__directory/conn-1::v99", "name": "directory", "variant": "v99"}
    assert len(store.partitions.list("acme", "directory", "conn-1")) == 100
    assert_error(client.post("/sync/directory/variant/v100", json=KEY), 400, "resource_capped")
    # The cap is per connection and sync.
    assert client.post("/sync/directory/variant/v100", json={**KEY, "connection_id": "conn-2"}).status_code == 200
    assert client.post("/sync/contacts/variant/v100", json=KEY).status_code == 200
    assert len(instance.get_dynamic_partitions("acme__directory")) == 102
    assert not instance.has_dynamic_partition("acme__directory", "conn-1::v100")


def test_variant_errors_and_delete(client, acme, connected, harness, instance, store):
    assert client.post("/sync/directory/variant/inbox", json=KEY).status_code == 200
    before = store.partitions.list("acme")
    assert_error(client.post("/sync/directory/variant/inbox", json=KEY), 400, "sync_variant_already_exists")
    for bad in ("base", "BASE", "Base", "has.dot", "x" * 256):
        error = assert_error(client.post(f"/sync/directory/variant/{bad}", json=KEY), 400, "invalid_variant")
        assert error["errors"][0]["path"] == ["variant"]
    assert_error(client.post("/sync/nope/variant/v1", json=KEY), 400, "unknown_sync")
    assert_error(client.post("/sync/directory/variant/v1", json={**KEY, "connection_id": "nobody"}), 404, "unknown_connection")
    assert_error(client.post("/sync/directory/variant/v1", json={"connection_id": "conn-1"}), 400, "invalid_body")
    assert store.partitions.list("acme") == before

    acme.put("c1", "Ann")
    assert harness.run("acme", "directory", "conn-1", "inbox").success
    assert store.records.count_live(StreamKey("acme", "conn-1", "AcmeEmail", "inbox")) == 1
    assert_error(client.request("DELETE", "/sync/directory/variant/other", json=KEY), 404, "not_found")
    assert_error(client.request("DELETE", "/sync/directory/variant/base", json=KEY), 400, "invalid_variant")
    response = client.request("DELETE", "/sync/directory/variant/inbox/", json=KEY)
    assert response.json() == {"success": True}
    assert not instance.has_dynamic_partition("acme__directory", "conn-1::inbox")
    assert row(store, "directory", "conn-1::inbox") is None
    assert store.records.count_live(StreamKey("acme", "conn-1", "AcmeEmail", "inbox")) == 0


def test_a_shorter_frequency_brings_the_next_run_forward(client, connected, store):
    with store.engine.begin() as conn:  # the last run scheduled the next one a day away
        conn.execute(
            partitions.update()
            .where(partitions.c.sync_name == "contacts")
            .values(next_due_at=to_iso(utcnow() + timedelta(days=1)))
        )

    client.put("/sync/update-connection-frequency", json={"sync_name": "contacts", **KEY, "frequency": "every 5 minutes"})

    assert from_iso(row(store).next_due_at) - utcnow() <= timedelta(minutes=5)


def contacts_status(client) -> dict:
    [status] = client.get("/sync/status", params={"syncs": "contacts", **KEY}).json()["syncs"]
    return status


def test_status_type_is_initial_or_incremental_as_nango_says_and_the_finer_kind_is_in_run_kind(
    client, anonymous, acme, connected, harness
):
    from sync_pipeline_tests.acme import WEBHOOK_SECRET

    assert (contacts_status(client)["type"], contacts_status(client)["runKind"]) == ("INITIAL", None)
    acme.put("c1", "Ann")
    assert harness.run("acme", "contacts", "conn-1").success
    assert (contacts_status(client)["type"], contacts_status(client)["runKind"]) == ("INITIAL", "INITIAL")

    assert harness.run("acme", "contacts", "conn-1").success  # a full refresh
    assert (contacts_status(client)["type"], contacts_status(client)["runKind"]) == ("INCREMENTAL", "FULL")

    contact = {"id": "w1", "name": "Web", "email": "web@example.com", "updated_at": "2024-01-01T00:00:00Z"}
    anonymous.post("/webhook/acme", json={"connection_id": "conn-1", "contact": contact}, headers={"X-Acme-Secret": WEBHOOK_SECRET})
    assert (contacts_status(client)["type"], contacts_status(client)["runKind"]) == ("INCREMENTAL", "WEBHOOK")


def test_status_shows_the_checkpoint_a_crashed_run_stored(client, acme, connected, harness, store):
    for n in range(6):
        acme.put(f"c{n}", f"Name{n}")
    acme.crash_after_pages = 1  # the first page is saved and checkpointed, the second fails

    assert not harness.run("acme", "contacts", "conn-1").success

    status = contacts_status(client)
    assert status["status"] == "ERROR"
    assert status["checkpoint"] == {"cursor": "2"}, "where the next run resumes"


def watch_a_run(harness, acme, monkeypatch, contacts: int = 10, page_delay: float = 0.6):
    """A contacts run slow enough to watch (two per page, `page_delay` s a page), started in a thread; it
    reports its progress every half second instead of every five."""
    import threading

    monkeypatch.setenv("SYNC_PIPELINE_PROGRESS_SECONDS", "0.5")
    for n in range(contacts):
        acme.put(f"c{n:02}", f"Name{n}")
    acme.page_delay = page_delay
    runner = threading.Thread(target=harness.run, args=("acme", "contacts", "conn-1"))
    runner.start()
    return runner


def test_while_a_run_is_in_progress_status_shows_its_checkpoint_and_records_fetched_and_saved_so_far(
    client, acme, connected, harness, monkeypatch
):
    import time

    runner = watch_a_run(harness, acme, monkeypatch)
    seen = []
    try:
        while runner.is_alive():
            status = contacts_status(client)
            if status["status"] == "RUNNING" and status["progress"]:
                seen.append(status)
            time.sleep(0.2)
    finally:
        runner.join()

    assert seen, "the run showed its progress while it ran"
    progress = max((s["progress"] for s in seen), key=lambda p: p["pages"])
    assert progress["pages"] >= 3 and progress["records_fetched"] >= 6 and progress["records_saved"] >= 4
    # The checkpoint each page stored, as the run stored it (the sync clears it after its last page).
    assert max(int((s["checkpoint"] or {}).get("cursor", 0)) for s in seen) >= 4
    assert all(s["progress"]["records_fetched"] <= 10 for s in seen)
    done = contacts_status(client)
    assert done["status"] == "SUCCESS" and done["progress"] is None and done["recordCount"] == {"AcmeContact": 10}


def test_a_run_queued_after_a_crash_shows_no_progress_until_it_reports_its_own(
    client, acme, connected, harness, store, monkeypatch
):
    monkeypatch.setenv("SYNC_PIPELINE_PROGRESS_SECONDS", "0")  # the crashed run reports after every page
    for n in range(6):
        acme.put(f"c{n}", f"Name{n}")
    acme.crash_after_pages = 1
    assert not harness.run("acme", "contacts", "conn-1").success
    assert store.partitions.progress("acme", "contacts", "conn-1::base").progress, "the crashed run left its progress"

    harness.queue_run("acme", "contacts", "conn-1")  # as the scheduler queues the retry; no daemon launches it here

    status = contacts_status(client)
    assert status["status"] == "RUNNING"
    assert status["progress"] is None, "the crashed run's counts are not the queued run's"
    assert status["checkpoint"] == {"cursor": "2"}, "where the queued run will resume"
