"""Running a sync partition through its Dagster job: what lands in the cache and in the event log."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
from dagster import AssetKey, AssetRecordsFilter

from sync_pipeline.store import ChangeQuery, StreamKey, decode_cursor
from sync_pipeline_tests.results import failure_message, materialization_metadata

CONTACTS = StreamKey("acme", "conn-1", "AcmeContact", "base")


def metadata_of(result, model: str = "AcmeContact") -> dict:
    return materialization_metadata(result, model)


def live_ids(store, key: StreamKey = CONTACTS) -> set[str]:
    return {r.record_id for r in store.records.changes(key, ChangeQuery(limit=10_000)) if r.deleted_at is None}


@pytest.fixture
def connected(harness, acme):
    harness.connect("acme", "conn-1", base_url=acme.url, credentials={"type": "API_KEY", "apiKey": acme.token})
    return harness


def test_initial_full_sync_saves_every_record_and_reports_initial(connected, acme, store):
    for n in range(5):
        acme.put(f"c{n}", f"Name{n}")

    result = connected.run("acme", "contacts", "conn-1")

    assert result.success
    meta = metadata_of(result)
    assert (meta.kind, meta.added, meta.updated, meta.deleted) == ("INITIAL", 5, 0, 0)
    assert meta.total_records == 5
    assert live_ids(store) == {"c0", "c1", "c2", "c3", "c4"}


def test_full_refresh_counts_added_changed_unchanged_and_vanished_exactly(connected, acme, store):
    for n in range(6):
        acme.put(f"c{n}", f"Name{n}")
    assert connected.run("acme", "contacts", "conn-1").success

    acme.put("c1", "Renamed")  # changed
    acme.contacts["c2"]["email"] = "new@example.com"  # changed
    del acme.contacts["c3"]  # vanished
    del acme.contacts["c4"]  # vanished
    acme.put("c9", "New")  # added
    result = connected.run("acme", "contacts", "conn-1")

    meta = metadata_of(result)
    assert meta.kind == "FULL"
    assert (meta.added, meta.updated, meta.deleted) == (1, 2, 2)
    assert live_ids(store) == {"c0", "c1", "c2", "c5", "c9"}
    deleted = {r.record_id: r for r in store.records.changes(CONTACTS, ChangeQuery(actions=("DELETED",)))}
    assert set(deleted) == {"c3", "c4"}


def test_unchanged_records_are_no_change(connected, acme, store):
    for n in range(4):
        acme.put(f"c{n}", f"Name{n}")
    connected.run("acme", "contacts", "conn-1")
    last_seq = store.records.last_seq(CONTACTS)

    meta = metadata_of(connected.run("acme", "contacts", "conn-1"))

    assert (meta.added, meta.updated, meta.deleted) == (0, 0, 0)
    assert store.records.last_seq(CONTACTS) == last_seq


def test_incremental_run_asks_only_for_changes_since_the_last_sync_date(connected, acme, store):
    acme.put("a", "Ann")
    acme.put("b", "Bob")
    first = connected.run("acme", "leads", "conn-1")
    first_started = metadata_of(first, "AcmeLead").started_at
    acme.put("b", "Bobby")
    acme.put("c", "Cid")

    second = connected.run("acme", "leads", "conn-1")

    meta = metadata_of(second, "AcmeLead")
    assert (meta.kind, meta.added, meta.updated) == ("INCREMENTAL", 1, 1)
    last_query = parse_qs(acme.requests[-1].url.query)
    assert last_query["updated_since"] == [first_started.isoformat()]


def test_a_run_that_fails_half_way_deletes_nothing_and_the_next_run_resumes(connected, acme, store, instance):
    for n in range(6):
        acme.put(f"c{n}", f"Name{n}")
    connected.run("acme", "contacts", "conn-1")
    acme.put("c0", "Changed")
    del acme.contacts["c5"]
    acme.crash_after_pages = len(acme.requests) + 1  # the second page of the next run fails for good

    failed = connected.run("acme", "contacts", "conn-1")

    assert not failed.success
    assert "c5" in live_ids(store), "a failed full refresh must not delete"
    assert store.partitions.progress("acme", "contacts", "conn-1::base").checkpoint == {"cursor": "2"}
    # Checkpoints live in the store: the event log keeps only the runs' own events.
    assert not instance.fetch_observations(
        AssetRecordsFilter(asset_key=AssetKey(["acme", "AcmeContact"]), asset_partitions=["conn-1::base"]), limit=1
    ).records

    acme.crash_after_pages = None
    pages_before = len(acme.requests)
    resumed = connected.run("acme", "contacts", "conn-1")

    assert resumed.success
    assert parse_qs(acme.requests[pages_before].url.query)["cursor"] == ["2"], "resumes at the checkpoint"
    meta = metadata_of(resumed)
    assert (meta.added, meta.updated, meta.deleted) == (0, 1, 1)  # c0 changed in the first attempt: still this run
    assert meta.checkpoint_from == {"cursor": "2"}
    assert live_ids(store) == {"c0", "c1", "c2", "c3", "c4"}


def test_a_resumed_run_reports_the_changes_of_every_attempt(connected, acme, store):
    for n in range(10):
        acme.put(f"c{n}", f"Name{n}")
    acme.crash_after_pages = 2  # 4 records saved, then the provider fails for good
    assert not connected.run("acme", "contacts", "conn-1").success
    assert store.records.last_seq(CONTACTS) == 4

    acme.crash_after_pages = None
    acme.put("c0", "Renamed")  # changed after the first attempt read it: the resumed attempt does not read it again
    resumed = connected.run("acme", "contacts", "conn-1")

    assert resumed.success
    meta = metadata_of(resumed)
    assert (meta.kind, meta.added, meta.updated, meta.deleted) == ("INITIAL", 10, 0, 0)
    assert decode_cursor(meta.low_watermark, CONTACTS) == 0  # where the first attempt began, not the resumed one

    acme.put("c1", "Again")
    assert metadata_of(connected.run("acme", "contacts", "conn-1")).updated == 2  # a new run counts afresh


def test_two_variants_keep_separate_records_checkpoints_and_counts(connected, acme, store):
    acme.put("1", "Ann", "ann@a.com")
    acme.put("2", "Bob", "bob@b.com")
    acme.put("3", "Cid", "cid@b.com")
    store.connections.set_metadata("acme", ["conn-1"], {"only-a": {"domain": "a.com"}, "only-b": {"domain": "b.com"}}, merge=True)

    run_a = connected.run("acme", "directory", "conn-1", variant="only-a")
    run_b = connected.run("acme", "directory", "conn-1", variant="only-b")

    assert metadata_of(run_a, "AcmeEmail").added == 1
    assert metadata_of(run_b, "AcmeEmail").added == 2
    assert metadata_of(run_b, "AcmeDomain").added == 1
    assert live_ids(store, StreamKey("acme", "conn-1", "AcmeEmail", "only-a")) == {"1"}
    assert live_ids(store, StreamKey("acme", "conn-1", "AcmeEmail", "only-b")) == {"2", "3"}
    assert metadata_of(run_b, "AcmeEmail").variant == "only-b"


def test_a_429_with_retry_after_is_waited_out(connected, acme, store):
    acme.put("a", "Ann")
    acme.fail_next(429, {"message": "slow down"}, headers={"Retry-After": "1"})

    result = connected.run("acme", "contacts", "conn-1")

    assert result.success
    assert acme.request_times[1] - acme.request_times[0] >= 0.9
    assert live_ids(store) == {"a"}


def test_invalid_records_are_reported_with_their_id_and_field_and_not_saved(connected, acme, store):
    acme.put("good", "Ann")
    acme.put("bad", "Bob")
    acme.contacts["bad"]["email"] = None

    result = connected.run("acme", "contacts", "conn-1")

    assert result.success
    assert metadata_of(result).invalid_records == 1
    assert live_ids(store) == {"good"}
    logs = "\n".join(entry.user_message for entry in connected.instance.all_logs(result.run_id))
    assert "invalid AcmeContact record id='bad'" in logs and "field 'email'" in logs


def test_a_partition_without_its_connection_fails_saying_so(harness):
    result = harness.run("acme", "contacts", "ghost")

    assert not result.success
    assert "connection 'ghost' of integration 'acme' does not exist" in failure_message(result)


def test_credentials_no_configured_key_can_read_fail_the_run_naming_the_key(harness, acme, store):
    from sync_pipeline.store import Connection, ConnectionStore

    sealed = ConnectionStore(store.engine, encryption_key="a key this process does not have")
    sealed.upsert(Connection("acme", "conn-1", {"type": "API_KEY", "apiKey": "tok-9"}, config={"base_url": acme.url}))

    result = harness.run("acme", "contacts", "conn-1")

    assert not result.success
    message = failure_message(result)
    assert "SYNC_PIPELINE_ENCRYPTION_KEY" in message and "tok-9" not in message
    assert acme.requests == []


def test_a_revoked_token_fails_naming_the_connection_and_the_providers_message(harness, acme, store):
    harness.connect("acme", "conn-1", base_url=acme.url, credentials={"type": "API_KEY", "apiKey": "revoked"})

    result = harness.run("acme", "contacts", "conn-1")

    assert not result.success
    message = failure_message(result)
    assert "conn-1" in message and "invalid token" in message and "401" in message
    assert "revoked" not in message, "the credential itself is never shown"


def test_full_refresh_and_clear_cache_starts_from_an_empty_cache(connected, acme, store):
    acme.put("a", "Ann")
    connected.run("acme", "contacts", "conn-1")

    result = connected.run("acme", "contacts", "conn-1", mode="full_refresh_and_clear_cache")

    meta = metadata_of(result)
    assert (meta.kind, meta.added) == ("INITIAL", 1)


def test_a_partition_deleted_and_created_again_starts_fresh(connected, acme, store, instance):
    acme.put("a", "Ann")
    connected.run("acme", "leads", "conn-1")
    instance.delete_dynamic_partition("acme__leads", "conn-1::base")
    store.partitions.remove("acme", "leads", "conn-1::base")

    result = connected.run("acme", "leads", "conn-1")

    assert metadata_of(result, "AcmeLead").kind == "INITIAL"


def test_a_run_whose_records_are_mostly_invalid_fails_with_a_summary_not_a_line_per_record(connected, acme, store):
    for n in range(20):
        acme.put(f"c{n:02}", f"Name{n}")
        if n >= 5:
            acme.contacts[f"c{n:02}"]["email"] = None  # 15 of 20 invalid: more than half

    result = connected.run("acme", "contacts", "conn-1")

    assert not result.success
    message = failure_message(result)
    assert "15 of 20 AcmeContact records (75%)" in message and "50%" in message
    assert "id='c05'" in message and "field 'email'" in message
    logs = [entry.user_message for entry in connected.instance.all_logs(result.run_id)]
    assert sum("invalid AcmeContact record" in line for line in logs) <= 5
    assert any("invalid records not saved: 15 of 20 AcmeContact" in line for line in logs)
    assert live_ids(store) == {f"c{n:02}" for n in range(5)}  # the valid ones are kept, nothing deleted


def test_a_run_with_at_most_half_invalid_succeeds_and_counts_them(connected, acme):
    for n in range(4):
        acme.put(f"c{n}", f"Name{n}")
    acme.contacts["c0"]["email"] = acme.contacts["c1"]["email"] = None

    result = connected.run("acme", "contacts", "conn-1")

    assert result.success
    assert metadata_of(result).invalid_records == 2
