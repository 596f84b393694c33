"""Runs that cannot hang: a paginator that is handed the same cursor twice, a run past its maximum run time,
and a `reset` trigger while a run of the partition is in progress."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from dagster import DagsterRunStatus, RunsFilter
from pydantic import BaseModel

from sync_pipeline.orchestration.assets import run_tags
from sync_pipeline.orchestration.failures import run_failure
from sync_pipeline.orchestration.notifications import run_webhook_tick
from sync_pipeline.orchestration.scheduling import evaluate_schedule, runs_in_flight
from sync_pipeline.sdk import CursorPagination, Integration, Registry, SyncContext, SyncError
from sync_pipeline.settings import WebhookSettings
from sync_pipeline.store import utcnow
from sync_pipeline.vocabulary import CANCELED_BY_TAG, MODE_TAG
from sync_pipeline_tests.api.conftest import import_acme
from sync_pipeline_tests.declared import api_over, connect
from sync_pipeline_tests.harness import SyncHarness

KEY = {"provider_config_key": "acme", "connection_id": "conn-1"}
PAGES = CursorPagination(cursor_path="next", cursor_param="cursor", limit_param="limit", limit=2)


def status_of(client, sync: str = "contacts") -> dict:
    [status] = client.get("/sync/status", params={"syncs": sync, **KEY}).json()["syncs"]
    return status


def test_a_paginator_handed_the_same_cursor_twice_fails_the_run_naming_the_cursor(client, acme, harness):
    for n in range(5):
        acme.put(f"c{n}", f"Contact {n}")
    acme.stuck_cursor = "2"  # the provider answers every page with "next: 2"
    import_acme(client, acme)

    result = harness.run("acme", "contacts", "conn-1")

    assert not result.success
    pages_read = [r for r in acme.requests if r.url.path == "/contacts"]
    assert len(pages_read) == 2, "the page at cursor 2 is read once, then the run stops"
    status = status_of(client)
    assert status["status"] == "ERROR"
    assert status["error"]["type"] == "RepeatedCursor"
    assert "'2'" in status["error"]["message"] and "/contacts" in status["error"]["message"]


# -- a maximum run time --------------------------------------------------------------------------------------

patient = Integration("patient", base_url="https://api.acme.invalid")


class PatientContact(BaseModel):
    id: str
    name: str


@patient.sync(models=[PatientContact], name="contacts", timeout=timedelta(seconds=2))
def patient_contacts(ctx: SyncContext) -> None:
    """Every contact, within two seconds."""
    for page in ctx.paginate("/contacts", PAGES, data_path="items"):
        ctx.batch_save([{"id": c["id"], "name": c["name"]} for c in page], PatientContact)


patient_registry = Registry.of(patient)


@pytest.fixture
def patient_api(instance, store) -> Iterator[httpx.Client]:
    with api_over(patient_registry, instance, store) as client:
        yield client


@pytest.fixture
def patient_runs(instance, store, database_url) -> SyncHarness:
    return SyncHarness(instance, store, database_url, patient_registry)


def test_a_run_past_its_maximum_run_time_is_stopped_fails_saying_so_and_frees_its_partition(
    patient_api, patient_runs, acme, instance, store, webhook_receiver
):
    acme.put("c1", "Ada")
    connect(patient_api, "patient", acme)
    acme.stall_next(10)  # the provider holds the first request unanswered for 10 seconds

    started = time.monotonic()
    result = patient_runs.run("patient", "contacts", "conn-1")

    assert not result.success
    assert time.monotonic() - started < 8, "stopped at its 2 second timeout, not when the provider answered"
    [status] = patient_api.get("/sync/status", params={"syncs": "contacts", "provider_config_key": "patient", "connection_id": "conn-1"}).json()["syncs"]
    assert status["status"] == "ERROR"
    assert status["error"]["type"] == "RunTimedOut"
    assert "maximum run time of 2 seconds" in status["error"]["message"]

    settings = WebhookSettings(url=webhook_receiver.url, signing_key="k", send_empty=False)
    run_webhook_tick(instance, store, patient_registry, settings, 0)
    [(_, body)] = webhook_receiver.received()
    sent = json.loads(body)
    assert sent["success"] is False
    assert sent["error"]["description"].startswith("RunTimedOut: the run went past the sync's maximum run time of 2 seconds")

    # The partition is free again: nothing holds it, and the next run (the provider answers now) succeeds.
    assert runs_in_flight(instance, {"patient__contacts"}) == set()
    assert patient_runs.run("patient", "contacts", "conn-1").success


def test_every_scheduled_run_carries_its_maximum_run_time_for_dagsters_run_monitoring(patient_api, acme, instance, store):
    connect(patient_api, "patient", acme)

    tick = evaluate_schedule(instance, store, patient_registry, utcnow())

    [request] = tick.requests
    # Dagster's run monitoring terminates a run stuck where the sync's own deadline is never checked.
    assert request.tags["dagster/max_runtime"] == str(2 + 120)
    assert acme_contacts_tag() == str(24 * 3600 + 120), "a sync that declares no timeout has Nango's 24 hours"


def acme_contacts_tag() -> str:
    from sync_pipeline_tests.acme import acme as acme_integration

    return run_tags(acme_integration.syncs["contacts"], "conn-1", "base")["dagster/max_runtime"]


@pytest.mark.parametrize("timeout", [0, -5, "1h", timedelta(0)])
def test_a_timeout_that_is_not_a_positive_duration_is_refused(timeout):
    with pytest.raises(SyncError, match="timeout is a positive timedelta or number of seconds"):
        patient.sync(models=[PatientContact], name="bad", timeout=timeout)


# -- a reset trigger replaces the run in progress -------------------------------------------------------------


def test_a_reset_trigger_cancels_the_partitions_queued_run_and_queues_the_new_one(client, acme, harness, instance, store):
    import_acme(client, acme)
    import_acme(client, acme, "conn-2")
    queued = harness.queue_run("acme", "contacts", "conn-1")
    other = harness.queue_run("acme", "contacts", "conn-2")

    response = client.post("/sync/trigger", json={"syncs": ["contacts"], **KEY, "opts": {"reset": True}})

    assert response.json() == {"success": True}
    canceled = instance.get_run_by_id(queued)
    assert canceled.status == DagsterRunStatus.CANCELED
    assert "full_refresh trigger" in canceled.tags[CANCELED_BY_TAG]
    assert instance.get_run_by_id(other).status == DagsterRunStatus.QUEUED, "another connection's run is left alone"
    requests = evaluate_schedule(instance, store, harness.registry, utcnow()).requests
    [new] = [r for r in requests if r.partition_key == "conn-1::base" and r.job_name == "acme__contacts"]
    assert new.tags[MODE_TAG] == "full_refresh"


def test_an_incremental_trigger_leaves_the_run_in_progress_alone(client, acme, harness, instance):
    import_acme(client, acme)
    queued = harness.queue_run("acme", "contacts", "conn-1")

    assert client.post("/sync/trigger", json={"syncs": ["contacts"], **KEY}).json() == {"success": True}

    assert instance.get_run_by_id(queued).status == DagsterRunStatus.QUEUED


def test_a_reset_trigger_stops_the_partitions_started_run_and_the_new_one_runs_next(client, acme, harness, instance, store):
    for n in range(40):
        acme.put(f"c{n:02}", f"Contact {n}")
    import_acme(client, acme)
    acme.stall_next(0.3, times=20)  # 20 pages, each answered after 0.3 s: a run of 6 s or more
    outcome: dict = {}
    running = threading.Thread(target=lambda: outcome.update(result=harness.run("acme", "contacts", "conn-1")))
    running.start()
    started = wait_until(lambda: instance.get_runs(RunsFilter(job_name="acme__contacts", statuses=[DagsterRunStatus.STARTED])))

    client.post("/sync/trigger", json={"syncs": ["contacts"], **KEY, "opts": {"reset": True}})
    running.join(timeout=60)

    assert not outcome["result"].success
    assert len([r for r in acme.requests if r.url.path == "/contacts"]) < 20, "stopped before its last page"
    # Canceled, not failed: no failure webhook, no retry backoff; Dagster's UI shows the run's reason.
    assert instance.get_run_by_id(started[0].run_id).status == DagsterRunStatus.CANCELED
    assert status_of(client)["status"] == "STOPPED"
    reason = run_failure(instance, started[0].run_id)
    assert reason.type == "RunCanceled" and "canceled by a full_refresh trigger" in reason.message
    assert client.get("/connections", params={"integrationId": "acme"}).json()["connections"][0]["errors"] == []
    assert runs_in_flight(instance, {"acme__contacts"}) == set(), "the partition is free for the new run"
    [new] = [r for r in evaluate_schedule(instance, store, harness.registry, utcnow()).requests if r.job_name == "acme__contacts"]
    assert new.tags[MODE_TAG] == "full_refresh"
    assert harness.run("acme", "contacts", "conn-1", mode="full_refresh").success


def wait_until(probe, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s")
