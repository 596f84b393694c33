"""The scheduling sensor over a real Dagster instance: exactly which runs it requests, and what they do."""

from __future__ import annotations

import socket
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from dagster import DagsterEvent, DagsterEventType, DagsterInstance, DagsterRunStatus, build_sensor_context
from dagster._core.events import EngineEventData
from dagster._core.test_utils import create_run_for_test
from dagster._utils.error import serializable_error_info_from_exc_info
from sqlalchemy import update

from sync_pipeline.orchestration.assets import CONNECTION_TAG, MODE_TAG, PARTITION_TAG
from sync_pipeline.orchestration.failures import run_failure
from sync_pipeline.orchestration.scheduling import SENSOR_NAME, evaluate_schedule
from sync_pipeline.store import from_iso, to_iso, utcnow
from sync_pipeline.orchestration.run_metadata import RunMetadata
from sync_pipeline.store import schema
from sync_pipeline.vocabulary import WORKER_LOST_TAG
from sync_pipeline_tests.cli.processes import free_port

partitions = schema.tables["sp_partitions"]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def connected(harness, acme):
    harness.connect("acme", "conn-1", base_url=acme.url, credentials={"type": "API_KEY", "apiKey": acme.token})
    acme.put("c1", "Ada")
    return harness


def tick(harness) -> list:
    """One evaluation of the scheduling sensor: its run requests."""
    sensor = harness.definitions.resolve_sensor_def(SENSOR_NAME)
    context = build_sensor_context(
        instance=harness.instance, definitions=harness.definitions, resources=harness.definitions.resources
    )
    return list(sensor(context).run_requests)


def requested(harness) -> list[tuple[str, str, str]]:
    return sorted((r.job_name, r.partition_key, r.tags[MODE_TAG]) for r in tick(harness))


def set_row(store, sync_name: str, key: str, **values) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            update(partitions)
            .where(partitions.c.sync_name == sync_name, partitions.c.partition_key == key)
            .values(**values)
        )


def test_a_new_auto_start_partition_runs_at_once_then_waits_for_its_frequency(connected, store):
    key = connected.add_partition("acme", "contacts", "conn-1")

    [request] = tick(connected)

    assert (request.job_name, request.partition_key) == ("acme__contacts", key)
    assert request.tags == {
        MODE_TAG: "incremental",
        PARTITION_TAG: "acme__contacts/conn-1::base",
        CONNECTION_TAG: "acme/conn-1",
        "dagster/max_runtime": str(24 * 3600 + 120),  # the sync's timeout (24 hours by default) and 2 minutes
    }
    assert tick(connected) == []
    next_due = from_iso(store.partitions.get("acme", "contacts", key).next_due_at)
    assert timedelta(minutes=59) < next_due - utcnow() <= timedelta(hours=1)


def test_a_partition_is_due_again_once_its_frequency_elapsed_with_a_new_run_key(connected, store):
    key = connected.add_partition("acme", "contacts", "conn-1")
    [first] = tick(connected)
    set_row(store, "contacts", key, next_due_at=to_iso(utcnow() - timedelta(seconds=1)))

    [second] = tick(connected)

    assert second.partition_key == key and second.run_key != first.run_key
    assert tick(connected) == []


def test_a_frequency_override_sets_the_next_due_time(connected, store):
    key = connected.add_partition("acme", "contacts", "conn-1")
    store.partitions.set_frequency("acme", "contacts", key, 300, next_due=utcnow() + timedelta(seconds=300))

    assert len(tick(connected)) == 1

    next_due = from_iso(store.partitions.get("acme", "contacts", key).next_due_at)
    assert timedelta(minutes=4) < next_due - utcnow() <= timedelta(minutes=5)


def test_auto_start_false_waits_for_start_or_a_trigger(connected, store):
    key = connected.add_partition("acme", "directory", "conn-1")
    assert tick(connected) == []

    store.partitions.set_paused("acme", "directory", key, False, utcnow())

    assert requested(connected) == [("acme__directory", key, "incremental")]


def test_auto_start_false_runs_when_triggered(connected, store):
    key = connected.add_partition("acme", "directory", "conn-1")
    store.partitions.trigger("acme", "directory", key, "incremental", utcnow())

    assert requested(connected) == [("acme__directory", key, "incremental")]
    assert tick(connected) == []  # the trigger was consumed


def test_a_paused_partition_is_not_scheduled_but_a_trigger_still_runs(connected, store):
    key = connected.add_partition("acme", "contacts", "conn-1")
    store.partitions.set_paused("acme", "contacts", key, True, utcnow())
    assert tick(connected) == []
    set_row(store, "contacts", key, next_due_at=to_iso(utcnow() - timedelta(hours=2)))
    assert tick(connected) == []

    store.partitions.trigger("acme", "contacts", key, "full_refresh", utcnow())

    assert requested(connected) == [("acme__contacts", key, "full_refresh")]
    assert tick(connected) == []


@pytest.mark.parametrize("mode", ["incremental", "full_refresh", "full_refresh_and_clear_cache"])
def test_a_trigger_carries_its_mode_tag(connected, store, mode):
    key = connected.add_partition("acme", "leads", "conn-1")
    tick(connected)  # the first, auto-started run
    store.partitions.trigger("acme", "leads", key, mode, utcnow())

    assert requested(connected) == [("acme__leads", key, mode)]


def test_a_partition_with_a_run_in_flight_gets_no_second_request_and_keeps_its_trigger(connected, store):
    key = connected.add_partition("acme", "contacts", "conn-1")
    other = connected.add_partition("acme", "contacts", "conn-2")
    for status in (DagsterRunStatus.STARTING, DagsterRunStatus.SUCCESS):
        create_run_for_test(connected.instance, job_name="acme__contacts", status=status, tags={"dagster/partition": key})
    create_run_for_test(  # another job's run on the same partition key does not block this one
        connected.instance, job_name="acme__leads", status=DagsterRunStatus.STARTED, tags={"dagster/partition": other}
    )

    assert requested(connected) == [("acme__contacts", other, "incremental")]

    store.partitions.trigger("acme", "contacts", key, "full_refresh", utcnow())
    assert tick(connected) == []
    assert store.partitions.get("acme", "contacts", key).trigger_mode == "full_refresh"


def test_a_partition_added_straight_through_dagster_gets_scheduled(connected, store):
    connected.instance.add_dynamic_partitions("acme__contacts", ["conn-7::base"])
    connected.instance.add_dynamic_partitions("acme__directory", ["conn-7::base"])  # auto_start False

    assert requested(connected) == [("acme__contacts", "conn-7::base", "incremental")]
    assert store.partitions.get("acme", "directory", "conn-7::base") is not None
    assert tick(connected) == []


def test_a_partition_key_we_cannot_parse_is_left_alone(connected, store):
    connected.instance.add_dynamic_partitions("acme__contacts", ["not a key"])

    assert tick(connected) == []
    assert store.partitions.list("acme") == []


def test_a_row_whose_dagster_partition_vanished_is_removed_after_a_grace_period(connected, store):
    key = connected.add_partition("acme", "contacts", "conn-1")
    connected.instance.delete_dynamic_partition("acme__contacts", key)

    assert tick(connected) == []  # just created: perhaps its Dagster partition is being added right now
    assert store.partitions.get("acme", "contacts", key) is not None

    set_row(store, "contacts", key, created_at=to_iso(utcnow() - timedelta(minutes=5)))
    assert tick(connected) == []
    assert store.partitions.get("acme", "contacts", key) is None


def test_requested_runs_do_what_their_mode_says(connected, store):
    key = connected.add_partition("acme", "contacts", "conn-1")
    job = connected.definitions.resolve_job_def("acme__contacts")
    [first] = tick(connected)
    assert job.execute_in_process(partition_key=key, tags=first.tags, instance=connected.instance).success

    store.partitions.trigger("acme", "contacts", key, "full_refresh", utcnow())
    [reset] = tick(connected)
    result = job.execute_in_process(partition_key=reset.partition_key, tags=reset.tags, instance=connected.instance)
    assert result.success, [e.message for e in result.all_events if e.is_failure]

    [event] = result.get_asset_materialization_events()
    materialization = event.step_materialization_data.materialization
    metadata = RunMetadata.of_event(materialization)
    assert (metadata.kind, metadata.mode) == ("INITIAL", "full_refresh")


def test_the_repository_dagster_yaml_loads_with_its_tag_concurrency_limits(tmp_path):
    (tmp_path / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())

    with DagsterInstance.from_config(str(tmp_path)) as instance:
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits

    assert {(limit["key"], limit["limit"]) for limit in limits} == {
        ("sync_pipeline/partition", 1),
        ("sync_pipeline/connection", 4),
    }
    assert all(limit["value"] == {"applyLimitPerUniqueValue": True} for limit in limits)


def test_the_repository_dagster_yaml_enables_run_monitoring_so_a_stuck_run_is_terminated(tmp_path):
    (tmp_path / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())

    with DagsterInstance.from_config(str(tmp_path)) as instance:
        # The daemon then terminates any run past its `dagster/max_runtime` tag (see run_tags).
        assert instance.run_monitoring_enabled


def run_requested(harness, request):
    job = harness.definitions.resolve_job_def(request.job_name)
    return job.execute_in_process(
        partition_key=request.partition_key, tags=request.tags, instance=harness.instance, raise_on_error=False
    )


def evaluate_at(harness, store, moment):
    return evaluate_schedule(harness.instance, store, harness.registry, moment)


def test_a_failed_run_is_retried_after_1_5_15_then_60_minutes_in_its_own_mode(connected, store, acme):
    key = connected.add_partition("acme", "contacts", "conn-1")
    assert run_requested(connected, tick(connected)[0]).success
    store.partitions.trigger("acme", "contacts", key, "full_refresh", utcnow())
    acme.crash_after_pages = 0  # the provider answers 500 from now on
    [request] = tick(connected)
    failed = run_requested(connected, request)
    assert not failed.success

    delays = []
    for expected_minutes in (1, 5, 15, 60, 60):
        evaluate_at(connected, store, utcnow())  # learns of the failure; the retry is not due yet
        row = store.partitions.get("acme", "contacts", key)
        failed_at = from_iso(row.failed_at)
        delays.append(round((from_iso(row.retry_at) - failed_at).total_seconds() / 60))
        assert row.next_due_at == row.retry_at  # sooner than the hourly schedule (or as soon, at 60)
        assert evaluate_at(connected, store, failed_at + timedelta(minutes=expected_minutes) - timedelta(seconds=5)).requests == []
        [retry] = evaluate_at(connected, store, failed_at + timedelta(minutes=expected_minutes, seconds=1)).requests
        assert retry.tags[MODE_TAG] == "full_refresh"  # the failed run's mode
        assert retry.run_key != request.run_key
        assert not run_requested(connected, retry).success
        request = retry
    assert delays == [1, 5, 15, 60, 60]
    assert store.partitions.get("acme", "contacts", key).failures == 5

    acme.crash_after_pages = None  # the provider recovers
    evaluate_at(connected, store, utcnow())
    row = store.partitions.get("acme", "contacts", key)
    [retry] = evaluate_at(connected, store, from_iso(row.retry_at) + timedelta(seconds=1)).requests
    assert run_requested(connected, retry).success
    evaluate_at(connected, store, utcnow())
    row = store.partitions.get("acme", "contacts", key)
    assert (row.failures, row.retry_at, row.retry_mode) == (0, None, None)


def fail_to_launch(harness, request) -> str:
    """The daemon's path for a run whose launch raised (a broker that is down): the dequeued run is marked
    STARTING, then failed, and never gets a RUN_START (queued_run_coordinator_daemon._dequeue_run). Created
    NOT_STARTED: a QUEUED run needs a code location's origin, which has no part in this."""
    run = create_run_for_test(
        harness.instance, job_name=request.job_name, status=DagsterRunStatus.NOT_STARTED,
        tags={**request.tags, "dagster/partition": request.partition_key},
    )  # fmt: skip
    harness.instance.report_dagster_event(
        DagsterEvent(DagsterEventType.PIPELINE_STARTING.value, job_name=run.job_name), run_id=run.run_id
    )
    try:
        socket.create_connection(("127.0.0.1", free_port()), timeout=2)  # nothing listens: a broker that is down
    except ConnectionRefusedError:
        error = serializable_error_info_from_exc_info(sys.exc_info())
    run = harness.instance.get_run_by_id(run.run_id)
    harness.instance.report_engine_event(
        "Caught an unrecoverable error while dequeuing the run", run, EngineEventData.engine_error(error)
    )
    harness.instance.report_run_failed(run)
    return run.run_id


def retry_delay(store, key: str) -> timedelta:
    row = store.partitions.get("acme", "contacts", key)
    return from_iso(row.retry_at) - from_iso(row.failed_at)


def test_a_run_that_failed_to_launch_is_retried_after_15_seconds_then_5_and_15_minutes(connected, store, acme):
    key = connected.add_partition("acme", "contacts", "conn-1")
    [request] = tick(connected)
    fail_to_launch(connected, request)

    evaluate_at(connected, store, utcnow())
    assert retry_delay(store, key) == timedelta(seconds=15)  # it did no work: no reason to wait a minute
    failed_at = from_iso(store.partitions.get("acme", "contacts", key).failed_at)
    assert evaluate_at(connected, store, failed_at + timedelta(seconds=10)).requests == []
    [retry] = evaluate_at(connected, store, failed_at + timedelta(seconds=16)).requests
    assert retry.partition_key == key and retry.run_key != request.run_key

    fail_to_launch(connected, retry)  # the broker is still down: back off as any failure does
    evaluate_at(connected, store, utcnow())
    assert retry_delay(store, key) == timedelta(minutes=5)

    row = store.partitions.get("acme", "contacts", key)
    [retry] = evaluate_at(connected, store, from_iso(row.retry_at) + timedelta(seconds=1)).requests
    acme.crash_after_pages = 0
    assert not run_requested(connected, retry).success  # this one started, and failed for the sync's reasons
    evaluate_at(connected, store, utcnow())
    assert retry_delay(store, key) == timedelta(minutes=15)
    assert store.partitions.get("acme", "contacts", key).failures == 3


def test_a_failed_launch_is_described_by_the_launchers_error(connected):
    connected.add_partition("acme", "contacts", "conn-1")
    [request] = tick(connected)

    failure = run_failure(connected.instance, fail_to_launch(connected, request))

    # What /sync/status and the failure webhook say, where Dagster's own message is "marked as failed from outside
    # the execution context".
    assert failure.description == "ConnectionRefusedError: the run could not be launched: [Errno 111] Connection refused"


def test_a_run_whose_worker_was_lost_is_retried_at_once(connected, store, acme):
    key = connected.add_partition("acme", "contacts", "conn-1")
    [request] = tick(connected)
    acme.crash_after_pages = 0
    # What the scale-out launcher tags a run with when its Celery worker stops answering (scaleout/launcher.py).
    request.tags[WORKER_LOST_TAG] = "w1@host"
    assert not run_requested(connected, request).success

    # The tick that learns of the failure asks for the retry: no wait.
    [retry] = evaluate_at(connected, store, utcnow()).requests

    assert retry.partition_key == key and retry.run_key != request.run_key
    assert store.partitions.get("acme", "contacts", key).failures == 1


def test_a_failure_is_counted_once_however_often_the_events_are_read(connected, store, acme):
    key = connected.add_partition("acme", "contacts", "conn-1")
    acme.crash_after_pages = 0
    assert not run_requested(connected, tick(connected)[0]).success

    for _ in range(3):
        evaluate_at(connected, store, utcnow())  # each read from the start: no cursor kept

    assert store.partitions.get("acme", "contacts", key).failures == 1


def test_a_retry_never_comes_later_than_the_regular_schedule(connected, store, acme):
    key = connected.add_partition("acme", "leads", "conn-1")  # every 5 minutes
    acme.crash_after_pages = 0
    [request] = tick(connected)
    regular = from_iso(store.partitions.get("acme", "leads", key).next_due_at)
    for _ in range(3):  # after the third failure the backoff (15 minutes) is longer than the frequency
        assert not run_requested(connected, request).success
        evaluate_at(connected, store, utcnow())
        row = store.partitions.get("acme", "leads", key)
        [request] = evaluate_at(connected, store, from_iso(row.next_due_at) + timedelta(seconds=1)).requests
        regular = from_iso(store.partitions.get("acme", "leads", key).next_due_at)

    assert not run_requested(connected, request).success
    evaluate_at(connected, store, utcnow())
    row = store.partitions.get("acme", "leads", key)
    assert row.failures == 4 and from_iso(row.retry_at) > regular
    assert from_iso(row.next_due_at) == regular
