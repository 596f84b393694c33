"""The records cache: what counts as a change, cursors, filters, pruning and deletes of unseen records."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from datetime import timedelta

import pytest

from sync_pipeline.store import (
    ChangeQuery,
    ForeignCursor,
    MalformedCursor,
    PreparedRecord,
    StreamKey,
    decode_cursor,
    encode_cursor,
    to_iso,
    utcnow,
)

KEY = StreamKey("acme", "conn-1", "Contact", "base")


def prepared(record_id: str, **fields) -> PreparedRecord:
    payload = json.dumps({"id": record_id, **fields})
    return PreparedRecord(record_id, payload, hashlib.blake2b(payload.encode(), digest_size=16).hexdigest())


def changes(store, key=KEY, **query) -> list:
    return store.records.changes(key, ChangeQuery(limit=10_000, **query))


def test_saving_an_identical_payload_changes_nothing(store):
    store.records.save(KEY, [prepared("1", name="Ann")], utcnow())
    seq = store.records.last_seq(KEY)

    counts = store.records.save(KEY, [prepared("1", name="Ann")], utcnow())

    assert counts.as_dict() == {"added": 0, "updated": 0, "deleted": 0}
    assert store.records.last_seq(KEY) == seq


def test_a_changed_payload_is_updated_with_a_new_cursor_and_keeps_first_seen(store):
    first = utcnow()
    store.records.save(KEY, [prepared("1", name="Ann"), prepared("2", name="Bob")], first)

    counts = store.records.save(KEY, [prepared("1", name="Anne")], first + timedelta(seconds=5))

    assert counts.updated == 1
    [one, two] = sorted(changes(store), key=lambda r: r.record_id)
    assert one.last_action == "UPDATED" and one.seq > two.seq
    assert one.first_seen_at == to_iso(first) and one.last_modified_at > one.first_seen_at
    assert json.loads(one.payload)["name"] == "Anne"


def test_a_record_that_comes_back_after_deletion_is_added_again(store):
    store.records.save(KEY, [prepared("1", name="Ann")], utcnow())
    assert store.records.delete(KEY, ["1", "missing"], utcnow()) == 1
    assert changes(store)[0].last_action == "DELETED"

    counts = store.records.save(KEY, [prepared("1", name="Ann")], utcnow())

    assert counts.added == 1
    [record] = changes(store)
    assert record.last_action == "ADDED" and record.deleted_at is None


def test_deleting_twice_counts_once(store):
    store.records.save(KEY, [prepared("1")], utcnow())
    assert store.records.delete(KEY, ["1"], utcnow()) == 1
    assert store.records.delete(KEY, ["1"], utcnow()) == 0


def test_changes_after_a_cursor_are_exactly_the_later_changes_in_order(store):
    store.records.save(KEY, [prepared(str(n)) for n in range(5)], utcnow())
    middle = changes(store)[2]

    store.records.save(KEY, [prepared("0", v=2)], utcnow())
    after = changes(store, after_seq=middle.seq)

    assert [r.record_id for r in after] == ["3", "4", "0"]


def test_cursors_grow_per_stream_and_streams_do_not_mix(store):
    other = StreamKey("acme", "conn-1", "Contact", "eu")
    store.records.save(KEY, [prepared("1"), prepared("2")], utcnow())
    store.records.save(other, [prepared("1")], utcnow())

    assert [r.seq for r in changes(store)] == [1, 2]
    assert [r.seq for r in changes(store, other)] == [1]


def test_filters_on_action_modified_after_and_ids(store):
    early = utcnow() - timedelta(hours=1)
    store.records.save(KEY, [prepared("1"), prepared("2"), prepared("3")], early)
    now = utcnow()
    store.records.save(KEY, [prepared("2", v=2)], now)
    store.records.delete(KEY, ["3"], now)

    assert [r.record_id for r in changes(store, actions=("ADDED",))] == ["1"]
    assert [r.record_id for r in changes(store, actions=("UPDATED", "DELETED"))] == ["2", "3"]
    assert [r.record_id for r in changes(store, modified_after=to_iso(now))] == ["2", "3"]
    assert [r.record_id for r in changes(store, ids=("1", "3"))] == ["1", "3"]


def test_pages_are_limited_and_continue_from_the_last_cursor(store):
    store.records.save(KEY, [prepared(f"{n:03}") for n in range(25)], utcnow())
    seen, cursor = [], 0
    while page := store.records.changes(KEY, ChangeQuery(after_seq=cursor, limit=10)):
        seen += [r.record_id for r in page]
        cursor = page[-1].seq
    assert seen == [f"{n:03}" for n in range(25)]


def test_prune_empties_payloads_up_to_a_cursor_and_keeps_metadata(store):
    store.records.save(KEY, [prepared(str(n)) for n in range(5)], utcnow())
    until = changes(store)[2].seq

    assert store.records.prune(KEY, until, utcnow(), limit=2) == (2, True)
    assert store.records.prune(KEY, until, utcnow(), limit=2) == (1, False)

    records = changes(store)
    assert [r.payload is None for r in records] == [True, True, True, False, False]
    assert all(r.pruned_at for r in records[:3]) and records[0].last_action == "ADDED"


def test_delete_unseen_removes_only_live_records_the_run_neither_saw_nor_wrote(store):
    store.records.save(KEY, [prepared(str(n)) for n in range(2500)], utcnow() - timedelta(hours=1), generation="g1")
    store.records.delete(KEY, ["7"], utcnow() - timedelta(hours=1))
    started = utcnow()
    store.records.save(KEY, [prepared(str(n)) for n in range(0, 2000, 2)], utcnow(), generation="g2")  # seen
    store.records.save(KEY, [prepared(str(n), v=2) for n in range(2000, 2500, 2)], utcnow(), generation="g2")  # written

    deleted = store.records.delete_unseen(KEY, "g2", started, utcnow())

    assert deleted == 1249  # odd ids, less the already-deleted "7"
    live = {r.record_id for r in changes(store) if r.deleted_at is None}
    assert live == {str(n) for n in range(0, 2500, 2)}


def test_a_run_resumed_after_its_deletes_still_knows_what_its_first_attempt_saw(store):
    """A crash between the deletes and the run's materialization resumes the same generation."""
    store.records.save(KEY, [prepared(str(n)) for n in range(10)], utcnow() - timedelta(hours=1))
    started = utcnow()
    store.records.save(KEY, [prepared(str(n)) for n in range(8)], utcnow(), generation="g")
    assert store.records.delete_unseen(KEY, "g", started, utcnow()) == 2

    store.records.save(KEY, [prepared("7")], utcnow(), generation="g")  # the resumed attempt sees only "7"

    assert store.records.delete_unseen(KEY, "g", started, utcnow()) == 0
    assert store.records.count_live(KEY) == 8


def test_ids_that_json_escapes_are_still_recognised_as_seen(store):
    ids = ['quote"d', "back\\slash", "ünïcødé-👍", "tab\tand\nnewline", "comma,{brace}[bracket]"]
    store.records.save(KEY, [prepared(i) for i in ids], utcnow() - timedelta(hours=1))
    started = utcnow()
    store.records.save(KEY, [prepared(i) for i in ids], utcnow(), generation="g")

    assert store.records.delete_unseen(KEY, "g", started, utcnow()) == 0
    assert store.records.count_live(KEY) == len(ids)


def test_saving_into_a_stream_deleted_by_another_process_says_so(store):
    from sync_pipeline.store import RecordsCache

    store.records.save(KEY, [prepared("1")], utcnow())
    RecordsCache(store.engine).drop_streams(KEY.integration, KEY.connection_id)  # e.g. the API deleting it

    with pytest.raises(LookupError, match="no longer exists"):
        store.records.save(KEY, [prepared("2")], utcnow())


def test_seen_marks_of_finished_runs_do_not_accumulate(store):
    from sqlalchemy import func, select

    from sync_pipeline.store._schema import seen_batches

    store.records.save(KEY, [prepared(str(n)) for n in range(3000)], utcnow() - timedelta(hours=1))
    for generation in ("g1", "g2", "g3"):
        started = utcnow()
        for start in range(0, 3000, 1000):
            store.records.save(KEY, [prepared(str(n)) for n in range(start, start + 1000)], utcnow(), generation=generation)
        assert store.records.delete_unseen(KEY, generation, started, utcnow()) == 0

    with store.engine.connect() as conn:
        kept = conn.execute(select(seen_batches.c.generation, func.count()).group_by(seen_batches.c.generation)).all()
    assert kept == [("g3", 3)]  # the last run's marks only, one row per batch


def test_a_reader_following_cursors_during_writes_sees_every_change_once(store):
    """The records API promise: no change missed, none twice, even while a sync is writing."""
    done = threading.Event()

    def write() -> None:
        for batch in range(40):
            store.records.save(KEY, [prepared(str(n), v=batch) for n in range(batch % 7, 60, 3)], utcnow())
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    cursor, latest = 0, {}
    while True:
        finished = done.is_set()
        page = store.records.changes(KEY, ChangeQuery(after_seq=cursor, limit=17))
        for record in page:
            assert record.seq > cursor
            cursor = record.seq
            latest[record.record_id] = record.payload
        if finished and not page:
            break
    writer.join()

    final = {r.record_id: r.payload for r in changes(store)}
    assert latest == final


def test_dataframe_holds_the_current_records_only(store):
    store.records.save(KEY, [prepared("1", name="Ann"), prepared("2", name="Bob")], utcnow())
    store.records.delete(KEY, ["2"], utcnow())

    frame = store.records.dataframe(KEY)

    assert list(frame["id"]) == ["1"] and list(frame["name"]) == ["Ann"]


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_cursor_round_trip_and_malformed_cursors():
    assert decode_cursor(encode_cursor(12345, KEY), KEY) == 12345
    assert decode_cursor(encode_cursor(2**63 - 1, KEY), KEY) == 2**63 - 1
    too_big, zeros = _b64("sp1:9223372036854775808"), _b64("sp1:" + "0" * 5000)
    # "c3AxOsKy" is "sp1:²": a digit to str.isdigit(), not to int().
    for bad in ["", "abc", "!!!", encode_cursor(1, KEY)[:-2] + "zz", "c3AxOi0x", "c3AxOsKy", too_big, zeros, "é"]:
        with pytest.raises(MalformedCursor):
            decode_cursor(bad, KEY)


def test_a_cursor_is_refused_by_any_other_stream_and_old_unbound_cursors_still_read():
    cursor = encode_cursor(7, KEY)
    for other in (
        StreamKey(KEY.integration, "someone-else", KEY.model, KEY.variant),
        StreamKey(KEY.integration, KEY.connection_id, "OtherModel", KEY.variant),
        StreamKey(KEY.integration, KEY.connection_id, KEY.model, "v2"),
        StreamKey("other-integration", KEY.connection_id, KEY.model, KEY.variant),
    ):
        with pytest.raises(ForeignCursor):
            decode_cursor(cursor, other)
    assert decode_cursor(_b64("sp1:7"), KEY) == 7  # handed out before cursors were bound


def test_the_live_count_follows_adds_deletes_returns_and_clears(store):
    started = utcnow()
    store.records.save(KEY, [prepared(str(n)) for n in range(10)], started - timedelta(minutes=1))
    store.records.delete(KEY, ["1", "2"], utcnow())
    store.records.save(KEY, [prepared("1"), prepared("3", v=2)], utcnow())  # one back, one changed
    store.records.save(KEY, [prepared(str(n)) for n in range(4, 8)], utcnow(), generation="g")
    store.records.delete_unseen(KEY, "g", started, utcnow())  # 0, 8 and 9 were not seen

    assert store.records.count_live(KEY) == len({r.record_id for r in changes(store) if r.deleted_at is None}) == 6

    store.records.clear(KEY)
    assert store.records.count_live(KEY) == 0


def test_a_batch_larger_than_sqlites_bound_parameter_limit_is_compared_in_chunks(store):
    batch = [prepared(str(n)) for n in range(40_000)]
    assert store.records.save(KEY, batch, utcnow()).added == 40_000

    batch[39_999] = prepared("39999", v=2)
    counts = store.records.save(KEY, batch, utcnow())

    assert counts.as_dict() == {"added": 0, "updated": 1, "deleted": 0}


def test_saving_a_pruned_record_unchanged_restores_its_payload_without_reporting_a_change(store):
    store.records.save(KEY, [prepared("1", name="Ann"), prepared("2", name="Bob")], utcnow())
    seq = store.records.last_seq(KEY)
    assert store.records.prune(KEY, seq, utcnow()) == (2, False)

    counts = store.records.save(KEY, [prepared("1", name="Ann")], utcnow())

    assert counts.as_dict() == {"added": 0, "updated": 0, "deleted": 0}
    assert store.records.last_seq(KEY) == seq, "the app is not told: nothing changed"
    records = {r.record_id: r for r in changes(store)}
    assert json.loads(records["1"].payload) == {"id": "1", "name": "Ann"} and records["1"].pruned_at is None
    assert records["2"].payload is None and records["2"].pruned_at is not None


def test_a_record_deleted_and_seen_again_is_added_with_a_new_first_seen_at(store):
    first = utcnow()
    store.records.save(KEY, [prepared("1", name="Ann")], first)
    store.records.delete(KEY, ["1"], first + timedelta(seconds=1))
    again = first + timedelta(seconds=2)

    store.records.save(KEY, [prepared("1", name="Ann")], again)

    [record] = changes(store)
    assert record.last_action == "ADDED" and record.first_seen_at == to_iso(again)


def test_a_shadow_is_invisible_to_readers_and_goes_with_its_variant(store):
    real = StreamKey("acme", "conn-1", "Contact", "v1")
    store.records.save(real, [prepared("1", name="Ann")], utcnow())
    shadow = store.records.shadow(real, "g1")
    store.records.save(shadow, [prepared("2", name="Bob")], utcnow())

    assert [r.record_id for r in changes(store, real)] == ["1"], "readers of the stream see the old records"
    assert store.records.has_shadow(real, "g1") and not store.records.has_shadow(real, "g2")

    store.records.drop_streams("acme", "conn-1", variant="v1")

    assert not store.records.has_shadow(real, "g1")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM sp_records").scalar_one() == 0
