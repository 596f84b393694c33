"""`SyncContext` record operations against the real cache: duplicates, partial updates, deletes, backfill."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from sync_pipeline.sdk import Integration, SyncError
from sync_pipeline.sdk.context import SyncContext
from sync_pipeline.sdk.runner import PartitionState, run_sync
from sync_pipeline.store import ChangeQuery, Connection, StreamKey, utcnow
from sync_pipeline_tests.acme import AcmeContact, AcmeDomain, AcmeEmail, acme

KEY = StreamKey("acme", "conn-1", "AcmeContact", "base")


@pytest.fixture
def ctx(store) -> SyncContext:
    connection = Connection("acme", "conn-1", metadata={"backfill_days": 7})
    return SyncContext(
        sync=acme.syncs["contacts"],
        connection=connection,
        variant="base",
        cache=store.records,
        last_sync_date=None,
        checkpoint=None,
        on_checkpoint=lambda checkpoint: None,
        generation=None,
        log=logging.getLogger("test"),
    )


def contact(record_id: str, name: str) -> dict:
    return {"id": record_id, "name": name, "email": f"{name}@x.io", "updated_at": "2026-01-01"}


def stored(store) -> dict[str, dict]:
    return {r.record_id: json.loads(r.payload) for r in store.records.changes(KEY, ChangeQuery(limit=100))}


def test_a_duplicate_id_in_one_batch_keeps_the_first_and_says_so(ctx, store, caplog):
    with caplog.at_level(logging.WARNING):
        ctx.batch_save([contact("1", "first"), contact("1", "second"), contact("2", "bob")], AcmeContact)

    assert stored(store)["1"]["name"] == "first"
    assert ctx.ledger.counts["AcmeContact"].added == 2
    assert "1 duplicate id(s)" in caplog.text and "['1']" in caplog.text


def test_batch_update_merges_into_the_stored_record(ctx, store):
    ctx.batch_save([contact("1", "ann")], "AcmeContact")

    ctx.batch_update([{"id": "1", "name": "anne"}, {"id": "404", "name": "nobody"}], "AcmeContact")

    assert stored(store) == {"1": {**contact("1", "ann"), "name": "anne"}}
    assert ctx.ledger.counts["AcmeContact"].updated == 1


def test_batch_update_without_ids_is_refused(ctx):
    with pytest.raises(Exception, match="have no 'id'"):
        ctx.batch_update([{"name": "x"}], "AcmeContact")


def test_batch_delete_takes_ids_or_records(ctx, store):
    ctx.batch_save([contact("1", "a"), contact("2", "b"), contact("3", "c")], AcmeContact)

    ctx.batch_delete(["1", {"id": "2"}], AcmeContact)

    assert ctx.ledger.counts["AcmeContact"].deleted == 2
    assert store.records.count_live(KEY) == 1


def test_an_unknown_model_is_named(ctx):
    with pytest.raises(Exception, match="has no model 'Nope'"):
        ctx.batch_save([], "Nope")


def test_sync_since_uses_the_backfill_window_from_metadata_on_the_first_run(ctx):
    assert abs((utcnow() - timedelta(days=7)) - ctx.sync_since) < timedelta(seconds=5)
    ctx.last_sync_date = utcnow() - timedelta(hours=1)
    assert ctx.sync_since == ctx.last_sync_date


def test_a_partial_update_that_fails_validation_changes_nothing(ctx, store):
    ctx.batch_save([contact("1", "ann")], AcmeContact)

    ctx.batch_update([{"id": "1", "email": None}], AcmeContact)  # email is required

    assert stored(store)["1"]["email"] == "ann@x.io"
    assert ctx.ledger.invalid["AcmeContact"] == 1


def run_with_limit(store, share: float, records: list[dict]):
    integration = Integration("limits", base_url="http://127.0.0.1:9")

    @integration.sync(models=[AcmeContact], max_invalid_share=share)
    def contacts(ctx: SyncContext) -> None:
        ctx.batch_save(records, AcmeContact)

    return run_sync(contacts, Connection("limits", "conn-1"), "base", store.records, PartitionState())


def test_the_invalid_share_a_run_tolerates_is_set_per_sync(store):
    records = [contact("1", "ann"), {"id": "2"}, {"id": "3"}]  # two of three invalid

    assert run_with_limit(store, 0.9, records).invalid == {"AcmeContact": 2}
    with pytest.raises(SyncError, match="2 of 3 AcmeContact records"):
        run_with_limit(store, 0.5, records)


@pytest.mark.parametrize("share", [-0.1, 1.5])
@pytest.mark.parametrize("limit", ["max_invalid_share", "max_deleted_share"])
def test_an_invalid_share_outside_0_to_1_is_refused(share, limit):
    with pytest.raises(SyncError, match=limit):
        Integration("limits", base_url="http://x").sync(models=[AcmeContact], **{limit: share})


def test_the_share_of_records_a_run_may_delete_is_set_per_sync(store):
    from sync_pipeline.sdk import MassDeletionBlocked

    integration = Integration("guarded", base_url="http://127.0.0.1:9")
    offered = [contact(str(n), f"n{n}") for n in range(20)]

    @integration.sync(models=[AcmeContact], track_deletes=True, max_deleted_share=0.25)
    def contacts(ctx: SyncContext) -> None:
        ctx.batch_save(offered, AcmeContact)

    key = StreamKey("guarded", "conn-1", "AcmeContact", "base")
    run_sync(contacts, Connection("guarded", "conn-1"), "base", store.records, PartitionState())
    offered = offered[:14]  # 6 of 20 vanish: 30%, over this sync's 25%
    with pytest.raises(MassDeletionBlocked, match="6 of 20 AcmeContact records .30%.*limit of 25% .the sync's max_deleted_share"):
        run_sync(contacts, Connection("guarded", "conn-1"), "base", store.records, PartitionState())
    assert store.records.count_live(key) == 20


def test_batch_update_merges_nested_objects_deeply_as_nango_does(store):
    from pydantic import BaseModel

    integration = Integration("nested", base_url="http://127.0.0.1:9")

    class Profile(BaseModel):
        id: str
        info: dict
        tags: list[str] = []

    @integration.sync(models=[Profile])
    def profiles(ctx: SyncContext) -> None:
        ctx.batch_save([{"id": "1", "info": {"a": 1, "b": 2, "deep": {"x": 1, "y": 2}}, "tags": ["t1", "t2"]}], Profile)
        ctx.batch_update([{"id": "1", "info": {"b": 3, "deep": {"y": 9}}, "tags": ["t3"]}], Profile)

    run_sync(profiles, Connection("nested", "conn-1"), "base", store.records, PartitionState())

    [record] = store.records.changes(StreamKey("nested", "conn-1", "Profile", "base"), ChangeQuery(limit=10))
    assert json.loads(record.payload) == {"id": "1", "info": {"a": 1, "b": 3, "deep": {"x": 1, "y": 9}}, "tags": ["t3"]}


def clearing_sync(offered: list[dict], during: list, fail: bool = False):
    """A full sync that saves `offered` in two batches, noting between them what readers of the cache see."""
    integration = Integration("clearing", base_url="http://127.0.0.1:9")

    @integration.sync(models=[AcmeContact], track_deletes=True)
    def contacts(ctx: SyncContext) -> None:
        ctx.batch_save(offered[:1], AcmeContact)
        during.append(live(ctx._writer._cache, CLEARING))
        ctx.batch_save(offered[1:], AcmeContact)
        if fail:
            raise RuntimeError("the provider went away")

    return contacts


CLEARING = StreamKey("clearing", "conn-1", "AcmeContact", "base")


def live(cache, key) -> dict[str, str]:
    return {r.record_id: json.loads(r.payload).get("name") for r in cache.changes(key, ChangeQuery(limit=100)) if r.deleted_at is None}


def test_clearing_the_cache_keeps_the_old_records_until_the_run_succeeds_then_swaps_them_at_once(store):
    from sync_pipeline.sdk.runner import RunMode
    from sync_pipeline.store import decode_cursor, encode_cursor

    connection = Connection("clearing", "conn-1")
    old = [contact("a", "ann"), contact("b", "bob"), contact("c", "cid")]
    run_sync(clearing_sync(old, []), connection, "base", store.records, PartitionState())
    app_cursor = store.records.last_seq(CLEARING)  # the app has read everything so far
    during: list = []

    outcome = run_sync(
        clearing_sync([contact("a", "ann"), contact("d", "dan")], during), connection, "base", store.records,
        PartitionState(), mode=RunMode.from_name("full_refresh_and_clear_cache"),
    )  # fmt: skip

    assert during == [{"a": "ann", "b": "bob", "c": "cid"}], "readers saw the old records while the run went on"
    assert live(store.records, CLEARING) == {"a": "ann", "d": "dan"}
    after = store.records.changes(CLEARING, ChangeQuery(after_seq=app_cursor, limit=100))
    assert [(r.record_id, r.last_action) for r in after] == [("a", "ADDED"), ("d", "ADDED")], "every record ADDED"
    assert len(store.records.changes(CLEARING, ChangeQuery(limit=100))) == 2, "the old ones are gone"
    assert store.records.count_live(CLEARING) == 2
    assert outcome.kind == "INITIAL" and outcome.counts["AcmeContact"].as_dict() == {"added": 2, "updated": 0, "deleted": 0}
    assert decode_cursor(encode_cursor(outcome.low_watermarks["AcmeContact"], CLEARING), CLEARING) == app_cursor


def test_a_cache_clearing_run_that_fails_changes_nothing(store):
    from sync_pipeline.sdk.runner import RunMode
    from sync_pipeline.store import schema

    connection = Connection("clearing", "conn-1")
    run_sync(clearing_sync([contact("a", "ann"), contact("b", "bob")], []), connection, "base", store.records, PartitionState())
    last_seq = store.records.last_seq(CLEARING)

    with pytest.raises(RuntimeError, match="went away"):
        run_sync(clearing_sync([contact("z", "zed")], [], fail=True), connection, "base", store.records,
                 PartitionState(), mode=RunMode.from_name("full_refresh_and_clear_cache"))  # fmt: skip

    assert live(store.records, CLEARING) == {"a": "ann", "b": "bob"} and store.records.last_seq(CLEARING) == last_seq
    run_sync(clearing_sync([contact("z", "zed")], []), connection, "base", store.records, PartitionState(),
             mode=RunMode.from_name("full_refresh_and_clear_cache"))  # fmt: skip
    assert live(store.records, CLEARING) == {"z": "zed"}
    with store.engine.connect() as conn:
        variants = {row.variant for row in conn.execute(schema.tables["sp_streams"].select())}
    assert variants == {"base"}, "no shadow is left behind"


def test_track_deletes_works_per_model_of_a_multi_model_sync(store):
    integration = Integration("multi", base_url="http://127.0.0.1:9")
    offered = {"emails": ["e1", "e2", "e3"], "domains": ["d1", "d2", "d3"]}

    @integration.sync(models=[AcmeEmail, AcmeDomain], track_deletes=[AcmeEmail])
    def directory(ctx: SyncContext) -> None:
        ctx.batch_save([{"id": i, "address": f"{i}@x.io"} for i in offered["emails"]], AcmeEmail)
        ctx.batch_save([{"id": i} for i in offered["domains"]], AcmeDomain)

    connection = Connection("multi", "conn-1")
    run_sync(directory, connection, "base", store.records, PartitionState())
    offered = {"emails": ["e1"], "domains": ["d1"]}

    outcome = run_sync(directory, connection, "base", store.records, PartitionState())

    emails, domains = (StreamKey("multi", "conn-1", model, "base") for model in ("AcmeEmail", "AcmeDomain"))
    assert live(store.records, emails).keys() == {"e1"}, "the tracked model's unseen records are deleted"
    assert store.records.count_live(domains) == 3, "the other model's are kept"
    assert outcome.counts["AcmeEmail"].deleted == 2 and outcome.counts["AcmeDomain"].deleted == 0
    assert directory.deleted_models == ("AcmeEmail",) and directory.track_deletes


def test_track_deletes_names_only_models_of_the_sync():
    with pytest.raises(SyncError, match="not models of this sync"):
        Integration("multi", base_url="http://x").sync(models=[AcmeEmail], track_deletes=["AcmeDomain"])


def test_an_incremental_sync_paging_through_everything_sweeps_deletions_between_start_and_end(store):
    integration = Integration("sweeping", base_url="http://127.0.0.1:9")
    offered = [contact(i, f"n{i}") for i in ("a", "b", "c")]

    @integration.sync(models=[AcmeContact], sync_type="incremental")
    def contacts(ctx: SyncContext) -> None:
        everything = ctx.last_sync_date is None  # the first run, or one after a full_refresh trigger
        if everything:
            ctx.track_deletes_start(AcmeContact)
        ctx.batch_save(offered, AcmeContact)
        if everything:
            ctx.track_deletes_end(AcmeContact)

    connection, key = Connection("sweeping", "conn-1"), StreamKey("sweeping", "conn-1", "AcmeContact", "base")
    first = run_sync(contacts, connection, "base", store.records, PartitionState())
    offered = [contact("d", "nd")]  # an incremental run sees only what changed: nothing is deleted
    run_sync(contacts, connection, "base", store.records, PartitionState(last_sync_date=first.started_at))
    assert live(store.records, key).keys() == {"a", "b", "c", "d"}

    offered = [contact("a", "na"), contact("d", "nd")]  # a full refresh: b and c are gone at the provider
    outcome = run_sync(contacts, connection, "base", store.records, PartitionState())

    assert live(store.records, key).keys() == {"a", "d"}
    assert outcome.counts["AcmeContact"].as_dict() == {"added": 0, "updated": 0, "deleted": 2}
    assert outcome.totals["AcmeContact"] == 2


def test_track_deletes_end_without_start_is_refused(store):
    integration = Integration("sweeping", base_url="http://127.0.0.1:9")

    @integration.sync(models=[AcmeContact], sync_type="incremental")
    def contacts(ctx: SyncContext) -> None:
        ctx.track_deletes_end(AcmeContact)

    with pytest.raises(SyncError, match=r"track_deletes_end\('AcmeContact'\) without track_deletes_start"):
        run_sync(contacts, Connection("sweeping", "conn-1"), "base", store.records, PartitionState())
