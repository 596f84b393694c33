"""What Nango's sync scripts can do, a sync function can do too: read back saved records by id, and write the
connection's metadata. Each runs through the sync's Dagster job, its effects read through the HTTP API."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from pydantic import BaseModel

from sync_pipeline.sdk import CursorPagination, Integration, Registry, SyncContext
from sync_pipeline_tests.declared import api_over
from sync_pipeline_tests.declared import connect as connect_to
from sync_pipeline_tests.harness import SyncHarness

scripted = Integration("scripted", base_url="https://api.acme.invalid")
PAGES = CursorPagination(cursor_path="next", cursor_param="cursor", limit_param="limit", limit=2)
seen_by_id: list[dict] = []  # what each run of `enriched` read back with get_records_by_id


class ScriptedContact(BaseModel):
    id: str
    name: str


@scripted.sync(models=[ScriptedContact], name="enriched", sync_type="full")
def enriched(ctx: SyncContext) -> None:
    """Saves the provider's contacts, deletes the ids in metadata["drop"], and first reads back metadata["look_up"]."""
    seen_by_id.append(ctx.get_records_by_id(ctx.get_metadata().get("look_up", []), ScriptedContact))
    for page in ctx.paginate("/contacts", PAGES, data_path="items"):
        ctx.batch_save([{"id": c["id"], "name": c["name"]} for c in page], ScriptedContact)
    ctx.batch_delete(ctx.get_metadata().get("drop", []), ScriptedContact)
    writes = ctx.get_metadata().get("write")
    if writes == "update":
        ctx.update_metadata({"cursor_hint": "page-9", "look_up": ["c1"]})
    elif writes == "set":
        ctx.set_metadata({"only": "this"})


registry = Registry.of(scripted)


@pytest.fixture
def runs(instance, store, database_url) -> SyncHarness:
    return SyncHarness(instance, store, database_url, registry)


@pytest.fixture
def api(instance, store) -> Iterator[httpx.Client]:
    with api_over(registry, instance, store) as client:
        yield client


def connect(api: httpx.Client, acme, metadata: dict) -> None:
    connect_to(api, "scripted", acme, metadata)


def metadata_of(api: httpx.Client) -> dict:
    response = api.get("/connection/conn-1", params={"provider_config_key": "scripted"})
    assert response.status_code == 200, response.text
    return response.json()["metadata"]


def test_get_records_by_id_returns_the_cached_records_with_those_ids(api, runs, acme):
    for n in (1, 2, 3):
        acme.put(f"c{n}", f"Contact {n}")
    connect(api, acme, {"drop": ["c3"]})
    assert runs.run("scripted", "enriched", "conn-1").success
    seen_by_id.clear()
    api.patch("/connection/metadata", json={
        "provider_config_key": "scripted", "connection_id": "conn-1", "metadata": {"look_up": ["c1", "c3", "c9", "c2"]},
    })  # fmt: skip

    assert runs.run("scripted", "enriched", "conn-1").success

    # c3 was deleted, c9 never saved: only the cached records come back, by id.
    assert seen_by_id == [{"c1": {"id": "c1", "name": "Contact 1"}, "c2": {"id": "c2", "name": "Contact 2"}}]


def test_update_metadata_from_a_sync_merges_into_the_connections_metadata(api, runs, acme):
    connect(api, acme, {"write": "update", "team": "T1"})

    assert runs.run("scripted", "enriched", "conn-1").success

    assert metadata_of(api) == {"write": "update", "team": "T1", "cursor_hint": "page-9", "look_up": ["c1"]}


def test_set_metadata_from_a_sync_replaces_the_connections_metadata(api, runs, acme):
    connect(api, acme, {"write": "set", "team": "T1"})

    assert runs.run("scripted", "enriched", "conn-1").success

    assert metadata_of(api) == {"only": "this"}


def test_metadata_that_is_not_json_fails_the_run_and_changes_nothing(api, runs, acme, store):
    from sync_pipeline.sdk.context import SyncContext as Context

    connect(api, acme, {"team": "T1"})
    connection = store.connections.get("scripted", "conn-1")
    written: list = []
    ctx = Context(
        sync=enriched, connection=connection, variant="base", cache=store.records, last_sync_date=None,
        checkpoint=None, on_checkpoint=lambda checkpoint: None, generation=None,
        on_metadata=lambda metadata, merge: written.append(metadata),
    )  # fmt: skip

    with pytest.raises(Exception, match="connection metadata must be JSON"):
        ctx.update_metadata({"when": object()})

    assert written == [] and metadata_of(api) == {"team": "T1"}
