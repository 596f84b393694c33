"""Runs that cannot hang: a paginator that is handed the same cursor twice, a run past its maximum run time,
and a `reset` trigger while a run of the partition is in progress."""

from __future__ import annotations

from sync_pipeline_tests.api.conftest import import_acme

KEY = {"provider_config_key": "acme", "connection_id": "conn-1"}


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
