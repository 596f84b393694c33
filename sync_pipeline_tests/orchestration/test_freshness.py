"""Freshness checks: a sync partition not synced within twice its frequency fails its asset's check."""

from __future__ import annotations

from datetime import timedelta

from dagster import AssetCheckKey, AssetKey

from sync_pipeline.orchestration.freshness import CHECK_NAME, report_freshness
from sync_pipeline.store import utcnow
from sync_pipeline_tests.acme import registry

CONTACTS = AssetKey(["acme", "AcmeContact"])  # `contacts` syncs every hour: overdue after two
CHECK = AssetCheckKey(CONTACTS, CHECK_NAME)


def add_old_partition(harness, connection_id: str, age: timedelta) -> str:
    """A partition created `age` ago (its schedule row says so), as if it had been there all along."""
    key = f"{connection_id}::base"
    harness.instance.add_dynamic_partitions("acme__contacts", [key])
    harness.store.partitions.ensure("acme", "contacts", connection_id, "base", utcnow() - age, due_now=False)
    return key


def latest_check(instance):
    """The check's newest evaluation as the UI shows it: (passed, its metadata)."""
    [record] = instance.event_log_storage.get_asset_check_execution_history(CHECK, limit=1)
    evaluation = record.event.dagster_event.event_specific_data
    return evaluation.passed, {name: value.value for name, value in evaluation.metadata.items()}


def test_every_sync_asset_has_the_freshness_check(harness):
    assert CHECK in harness.definitions.resolve_asset_graph().asset_check_keys


def test_an_overdue_partition_fails_the_check_and_a_sync_makes_it_pass(harness, acme):
    harness.connect("acme", "late", base_url=acme.url, credentials={"type": "API_KEY", "apiKey": acme.token})
    harness.connect("acme", "fresh", base_url=acme.url, credentials={"type": "API_KEY", "apiKey": acme.token})
    add_old_partition(harness, "late", timedelta(hours=3))
    add_old_partition(harness, "fresh", timedelta(minutes=30))  # new: its first run is not due yet

    cursor = report_freshness(harness.instance, harness.store, registry, utcnow(), {})

    passed, metadata = latest_check(harness.instance)
    assert not passed
    assert metadata["partitions_overdue"] == 1 and metadata["partitions_checked"] == 2
    assert metadata["overdue"] == {"late::base": "none within the window"}

    assert harness.run("acme", "contacts", "late").success
    report_freshness(harness.instance, harness.store, registry, utcnow(), cursor)

    passed, metadata = latest_check(harness.instance)
    assert passed and metadata["partitions_overdue"] == 0


def test_a_paused_partition_is_not_overdue(harness, acme):
    harness.connect("acme", "late", base_url=acme.url, credentials={"type": "API_KEY", "apiKey": acme.token})
    key = add_old_partition(harness, "late", timedelta(hours=3))
    harness.store.partitions.set_paused("acme", "contacts", key, True, utcnow())

    report_freshness(harness.instance, harness.store, registry, utcnow(), {})

    passed, metadata = latest_check(harness.instance)
    assert passed and metadata["partitions_paused"] == 1


def test_a_partition_whose_last_sync_is_older_than_twice_its_frequency_is_overdue(harness, acme):
    harness.connect("acme", "late", base_url=acme.url, credentials={"type": "API_KEY", "apiKey": acme.token})
    key = add_old_partition(harness, "late", timedelta(hours=5))
    assert harness.run("acme", "contacts", "late").success

    report_freshness(harness.instance, harness.store, registry, utcnow() + timedelta(hours=2, minutes=1), {})

    passed, metadata = latest_check(harness.instance)
    assert not passed and list(metadata["overdue"]) == [key]


def test_an_unchanged_result_is_recorded_again_only_after_an_hour(harness, acme):
    harness.connect("acme", "late", base_url=acme.url, credentials={"type": "API_KEY", "apiKey": acme.token})
    add_old_partition(harness, "late", timedelta(hours=3))
    now = utcnow()

    cursor = report_freshness(harness.instance, harness.store, registry, now, {})
    cursor = report_freshness(harness.instance, harness.store, registry, now + timedelta(minutes=1), cursor)
    count_within_the_hour = len(harness.instance.event_log_storage.get_asset_check_execution_history(CHECK, limit=10))
    report_freshness(harness.instance, harness.store, registry, now + timedelta(hours=1), cursor)

    assert count_within_the_hour == 1
    assert len(harness.instance.event_log_storage.get_asset_check_execution_history(CHECK, limit=10)) == 2


def test_a_sync_that_changed_nothing_keeps_its_partition_fresh(harness, acme):
    acme.put("c1", "Ada")
    harness.connect("acme", "quiet", base_url=acme.url, credentials={"type": "API_KEY", "apiKey": acme.token})
    add_old_partition(harness, "quiet", timedelta(hours=3))
    first = harness.run("acme", "contacts", "quiet")
    unchanged = harness.run("acme", "contacts", "quiet")
    assert unchanged.success and not unchanged.get_asset_materialization_events()  # observed, not materialized
    harness.instance.delete_run(first.run_id)  # what is left of the partition's history: the unchanged run

    report_freshness(harness.instance, harness.store, registry, utcnow(), {})

    passed, metadata = latest_check(harness.instance)
    assert passed and metadata["partitions_overdue"] == 0
