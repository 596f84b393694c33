"""A merging strategy (Nango's setMergingStrategy): with `ignore_if_modified_after_cursor` a scheduled poll never
overwrites a record that a provider webhook wrote after the poll began; with the default `override` it does.

The poll reads two pages; between them the provider's webhook arrives (through `POST /webhook/merging`)
with a newer version of a contact the second page still shows in its old version."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from pydantic import BaseModel

from sync_pipeline.sdk import CursorPagination, Integration, ProviderWebhookContext, Registry, SyncContext
from sync_pipeline.store import ChangeQuery, StreamKey
from sync_pipeline_tests.declared import api_over, connect
from sync_pipeline_tests.harness import SyncHarness

merging = Integration("merging", base_url="https://api.acme.invalid")
PAGES = CursorPagination(cursor_path="next", cursor_param="cursor", limit_param="limit", limit=2)
KEY = StreamKey("merging", "conn-1", "MergedContact", "base")
webhooks_between_pages: list[dict] = []  # what the provider's webhook sends while the poll is between pages
api_url: list[str] = []


class MergedContact(BaseModel):
    id: str
    name: str


@merging.sync(models=[MergedContact], name="contacts", sync_type="full", track_deletes=True)
def contacts(ctx: SyncContext) -> None:
    """Every contact; metadata["strategy"] is the merging strategy, when set."""
    if ctx.get_metadata().get("strategy"):
        ctx.set_merging_strategy(ctx.get_metadata()["strategy"], MergedContact)
    for number, page in enumerate(ctx.paginate("/contacts", PAGES, data_path="items")):
        ctx.batch_save([{"id": c["id"], "name": c["name"]} for c in page], MergedContact)
        if number == 0:
            for event in webhooks_between_pages:  # the provider's webhook arrives mid-poll
                httpx.post(f"{api_url[0]}/webhook/merging", json=event, timeout=30).raise_for_status()


@merging.webhook
def on_webhook(ctx: ProviderWebhookContext) -> None:
    event = ctx.json()
    [connection] = [c for c in ctx.connections() if c.connection_id == event["connection_id"]]
    ctx.use_connection(connection)
    if event.get("action") == "delete":
        ctx.batch_delete([event["contact"]["id"]], MergedContact)
    else:
        ctx.batch_save([event["contact"]], MergedContact)


registry = Registry.of(merging)


@pytest.fixture
def api(instance, store) -> Iterator[httpx.Client]:
    with api_over(registry, instance, store) as client:
        api_url[:] = [str(client.base_url).rstrip("/")]
        yield client
    webhooks_between_pages.clear()


@pytest.fixture
def runs(instance, store, database_url) -> SyncHarness:
    return SyncHarness(instance, store, database_url, registry)


def cached(store) -> dict[str, dict]:
    rows = store.records.changes(KEY, ChangeQuery(limit=100))
    return {r.record_id: {"name": json.loads(r.payload)["name"], "action": r.last_action} for r in rows}


def poll_with_a_webhook_mid_run(api, runs, acme, strategy: str | None) -> None:
    for n in range(4):
        acme.put(f"c{n}", f"Contact {n}")
    connect(api, "merging", acme, {"strategy": strategy} if strategy else {})
    # c3 is on the poll's second page; the webhook says it was renamed after the poll read the first page.
    webhooks_between_pages.append({"connection_id": "conn-1", "contact": {"id": "c3", "name": "Renamed by webhook"}})
    assert runs.run("merging", "contacts", "conn-1").success


def test_with_ignore_if_modified_after_cursor_a_poll_never_overwrites_what_a_webhook_wrote_after_it_began(api, runs, acme, store):
    poll_with_a_webhook_mid_run(api, runs, acme, "ignore_if_modified_after_cursor")

    assert cached(store)["c3"]["name"] == "Renamed by webhook"
    assert {record["name"] for record in cached(store).values()} == {"Contact 0", "Contact 1", "Contact 2", "Renamed by webhook"}


def test_with_the_default_override_the_polls_older_version_wins(api, runs, acme, store):
    poll_with_a_webhook_mid_run(api, runs, acme, None)

    assert cached(store)["c3"]["name"] == "Contact 3"


def test_a_poll_still_overwrites_records_no_webhook_touched_and_its_own_earlier_writes(api, runs, acme, store):
    poll_with_a_webhook_mid_run(api, runs, acme, "ignore_if_modified_after")
    acme.put("c0", "Contact 0, renamed at the provider")
    webhooks_between_pages.clear()

    assert runs.run("merging", "contacts", "conn-1").success

    assert cached(store)["c0"]["name"] == "Contact 0, renamed at the provider"
    assert cached(store)["c3"]["name"] == "Contact 3", "a later poll, begun after the webhook, reads the provider as it is"


def test_a_record_a_webhook_deleted_after_the_poll_began_stays_deleted(api, runs, acme, store):
    for n in range(4):
        acme.put(f"c{n}", f"Contact {n}")
    connect(api, "merging", acme, {"strategy": "ignore_if_modified_after_cursor"})
    assert runs.run("merging", "contacts", "conn-1").success
    webhooks_between_pages.append({"connection_id": "conn-1", "action": "delete", "contact": {"id": "c3"}})

    assert runs.run("merging", "contacts", "conn-1").success

    assert cached(store)["c3"]["action"] == "DELETED"


def test_an_unknown_merging_strategy_is_named(api, runs, acme, store):
    connect(api, "merging", acme, {"strategy": "newest_wins"})
    result = runs.run("merging", "contacts", "conn-1")

    assert not result.success
    [status] = api.get("/sync/status", params={"syncs": "contacts", "provider_config_key": "merging", "connection_id": "conn-1"}).json()["syncs"]
    assert "merging strategy 'newest_wins' is not one of" in status["error"]["message"]
