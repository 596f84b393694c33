"""The records cache: every record of every (integration, connection, model, variant), and its changes.

Each change takes the next number of its stream's sequence (`sp_streams.last_seq`), so reading "changes
after cursor N" is a keyset scan of the (stream_id, seq) index. Writers of one stream are serialised by
locking the stream row first in each transaction, so sequence numbers commit in order and a reader never
sees change N+1 before change N.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Connection, Engine, and_, bindparam, delete, func, insert, select, update

from sync_pipeline.store import _bulk as bulk
from sync_pipeline.store import _tallies as tallies
from sync_pipeline.store._database import to_iso
from sync_pipeline.store._schema import records, run_tallies, seen_batches, streams
from sync_pipeline.vocabulary import BASE_VARIANT

if TYPE_CHECKING:
    import pandas as pd

ADDED, UPDATED, DELETED = "ADDED", "UPDATED", "DELETED"
ACTIONS = (ADDED, UPDATED, DELETED)
SHADOW_PREFIX = "#"  # a shadow stream's variant: `#<run generation>`, which no variant name can be


@dataclass(frozen=True)
class StreamKey:
    """Where a record lives: one model of one variant of one connection."""

    integration: str
    connection_id: str
    model: str
    variant: str = BASE_VARIANT


class PreparedRecord(NamedTuple):
    """A validated record ready for the cache: its id, canonical JSON and the hash of that JSON."""

    id: str
    payload: str
    hash: str


@dataclass
class ChangeCounts:
    added: int = 0
    updated: int = 0
    deleted: int = 0

    def __iadd__(self, other: "ChangeCounts") -> "ChangeCounts":
        self.added += other.added
        self.updated += other.updated
        self.deleted += other.deleted
        return self

    def as_dict(self) -> dict[str, int]:
        return {"added": self.added, "updated": self.updated, "deleted": self.deleted}


class StoredRecord(NamedTuple):
    record_id: str
    seq: int
    payload: str | None
    first_seen_at: str
    last_modified_at: str
    last_action: str
    deleted_at: str | None
    pruned_at: str | None


@dataclass(frozen=True)
class ChangeQuery:
    """A page of changes after a cursor, as the records API asks for it."""

    after_seq: int = 0
    limit: int = 100
    actions: Sequence[str] = field(default_factory=tuple)
    modified_after: str | None = None
    ids: Sequence[str] = field(default_factory=tuple)


@dataclass
class WriteGuard:
    """A run's merging strategy `ignore_if_modified_after_cursor` (Nango's) on one stream: records another
    writer (a provider webhook) changed after `after_seq`, the stream's last sequence number when the run
    began, are left as they are. The run's own writes (`written`: id -> its seq) it may overwrite again."""

    after_seq: int
    written: dict[str, int] = field(default_factory=dict)
    kept: int = 0  # writes skipped because someone else had changed the record since

    def unguarded(self, conn: Connection, sid: int, ids: Sequence[str]) -> set[str]:
        """The ids among `ids` that another writer changed after `after_seq` (call under the stream lock)."""
        rows = conn.execute(
            select(records.c.record_id, records.c.seq).where(
                records.c.stream_id == sid, records.c.seq > self.after_seq, records.c.record_id.in_(list(ids))
            )
        ).all()
        newer = {record_id for record_id, seq in rows if seq > self.written.get(record_id, self.after_seq)}
        self.kept += len(newer)
        return newer


class RecordsCache:
    """Reads and writes records through one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._stream_ids: dict[StreamKey, int] = {}
        self._statistics = bulk.PlannerStatistics(engine)

    # -- streams ---------------------------------------------------------------------------------

    def stream_id(self, key: StreamKey, *, create: bool = True) -> int | None:
        if key in self._stream_ids:
            return self._stream_ids[key]
        with self.engine.begin() as conn:
            found = conn.execute(select(streams.c.id).where(_identity(key))).scalar()
            if found is None and create:
                found = conn.execute(
                    insert(streams).values(**key.__dict__, last_seq=0, live_count=0).returning(streams.c.id)
                ).scalar_one()
        if found is not None:
            self._stream_ids[key] = found
        return found

    def forget_streams(self) -> None:
        """Forget the stream ids cached by this process (after the tables were emptied behind its back)."""
        self._stream_ids.clear()

    def last_seq(self, key: StreamKey) -> int:
        sid = self.stream_id(key, create=False)
        if sid is None:
            return 0
        with self.engine.connect() as conn:
            return conn.execute(select(streams.c.last_seq).where(streams.c.id == sid)).scalar_one()

    # -- writes ----------------------------------------------------------------------------------

    def save(
        self,
        key: StreamKey,
        batch: Sequence[PreparedRecord],
        now: datetime,
        *,
        generation: str | None = None,
        tally: str | None = None,
        guard: WriteGuard | None = None,
    ) -> ChangeCounts:
        """Insert new records, replace changed ones, leave identical ones alone.

        With a `generation` (a full refresh tracking deletes), identical records are marked seen by it;
        written ones need no mark: their `last_modified_at` is within the run. With `tally` (a run's
        generation, see `begin_tally`) the changes are added to its counts in the same transaction.
        With a `guard`, records someone else changed since the run began are left alone.
        """
        sid = self.stream_id(key)
        stamp = to_iso(now)
        with self.engine.begin() as conn:
            seq = bulk.lock_stream(conn, sid)
            if guard is not None:
                newer = guard.unguarded(conn, sid, [record.id for record in batch])
                batch = [record for record in batch if record.id not in newer] if newer else batch
            changes = bulk.changed(conn, sid, [(record.id, record.hash) for record in batch])
            written = [record for record in batch if changes.get(record.id) in (bulk.CHANGE_ADDED, bulk.CHANGE_UPDATED)]
            rows: list[bulk.RecordRow] = [
                (sid, r.id, seq + n, r.payload, r.hash, stamp, stamp, ADDED if changes[r.id] == bulk.CHANGE_ADDED else UPDATED)
                for n, r in enumerate(written, start=1)
            ]
            added = sum(1 for kind in changes.values() if kind == bulk.CHANGE_ADDED)
            updated = len(rows) - added
            if rows:
                bulk.upsert_records(conn, rows)
                bulk.release_stream(conn, sid, seq + len(rows), live_delta=added)
                if guard is not None:
                    guard.written.update((row[1], row[2]) for row in rows)
            bulk.restore_payloads(conn, sid, [(r.id, r.payload) for r in batch if changes.get(r.id) == bulk.CHANGE_RESTORED])
            if generation is not None:
                written_ids = {record.id for record in written}
                bulk.mark_seen(conn, sid, generation, [record.id for record in batch if record.id not in written_ids])
            if tally is not None:
                tallies.add(conn, sid, tally, added=added, updated=updated)
        self._statistics.wrote(len(rows))
        return ChangeCounts(added=added, updated=updated)

    def merge(
        self,
        key: StreamKey,
        partials: Sequence[dict[str, Any]],
        prepare: "PrepareFn",
        now: datetime,
        *,
        tally: str | None = None,
        guard: WriteGuard | None = None,
    ) -> ChangeCounts:
        """Merge partial records into the stored ones; ids not stored (or deleted) are skipped."""
        sid = self.stream_id(key)
        with self.engine.begin() as conn:
            bulk.lock_stream(conn, sid)
            ids = [str(p["id"]) for p in partials]
            rows = conn.execute(
                select(records.c.record_id, records.c.payload).where(
                    records.c.stream_id == sid,
                    records.c.record_id.in_(ids),
                    records.c.deleted_at.is_(None),
                    records.c.payload.is_not(None),
                )
            ).all()
        current = {record_id: json.loads(payload) for record_id, payload in rows}
        merged = [deep_merge(current[str(p["id"])], p) for p in partials if str(p["id"]) in current]
        return self.save(key, prepare(merged), now, tally=tally, guard=guard) if merged else ChangeCounts()

    def delete(
        self, key: StreamKey, ids: Iterable[str], now: datetime, *, tally: str | None = None, guard: WriteGuard | None = None
    ) -> int:
        """Soft-delete the given ids that are stored and not yet deleted; returns how many were."""
        sid = self.stream_id(key)
        stamp = to_iso(now)
        with self.engine.begin() as conn:
            seq = bulk.lock_stream(conn, sid)
            if guard is not None:
                ids = list(dict.fromkeys(ids))
                newer = guard.unguarded(conn, sid, ids)
                ids = [record_id for record_id in ids if record_id not in newer]
            live = conn.execute(
                select(records.c.record_id)
                .where(
                    records.c.stream_id == sid,
                    records.c.record_id.in_(list(dict.fromkeys(ids))),
                    records.c.deleted_at.is_(None),
                )
                .order_by(records.c.record_id)
            ).scalars().all()
            seq = _mark_deleted(conn, sid, live, seq, stamp)
            if tally is not None:
                tallies.add(conn, sid, tally, deleted=len(live))
        return len(live)

    def delete_unseen(
        self,
        key: StreamKey,
        generation: str,
        started_at: datetime,
        now: datetime,
        chunk: int = 1000,
        *,
        tally: bool = False,
        check: Callable[[int], None] | None = None,
    ) -> int:
        """Soft-delete live records the run `generation` (started at `started_at`) neither wrote nor saw.

        `check` is first given how many that is, and deletes nothing by raising (the mass-deletion guard):
        counted on the same table of seen ids, not a second one. The run's seen batches are kept until a
        later generation finishes: a run that crashes after this and resumes still has them. Older
        generations' batches are dropped.
        """
        sid = self.stream_id(key)
        stamp, started = to_iso(now), to_iso(started_at)
        deleted, after = 0, ""
        with self.engine.connect() as conn:
            with bulk.seen_by(conn, sid, generation):
                if check is not None:
                    with conn.begin():
                        check(bulk.count_unseen(conn, sid, started))
                while True:
                    with conn.begin():
                        seq = bulk.lock_stream(conn, sid)
                        ids = bulk.unseen(conn, sid, after, started, chunk)
                        _mark_deleted(conn, sid, ids, seq, stamp)
                        if tally:
                            tallies.add(conn, sid, generation, deleted=len(ids))
                    deleted += len(ids)
                    if len(ids) < chunk:
                        break
                    after = ids[-1]
            with conn.begin():
                bulk.forget_seen(conn, sid, keep_generation=generation)
        return deleted

    def count_unseen(self, key: StreamKey, generation: str, started_at: datetime) -> int:
        """How many records `delete_unseen` would delete now (the mass-deletion guard asks first)."""
        sid = self.stream_id(key)
        with self.engine.connect() as conn:
            with bulk.seen_by(conn, sid, generation):
                with conn.begin():
                    return bulk.count_unseen(conn, sid, to_iso(started_at))

    def begin_tally(self, key: StreamKey, generation: str) -> int:
        """Count the changes of run `generation` (kept if already counting it: a resumed attempt); returns
        the stream's last sequence number when the generation's first attempt began."""
        sid = self.stream_id(key)
        with self.engine.begin() as conn:
            return tallies.begin(conn, sid, generation, bulk.lock_stream(conn, sid))

    def tally(self, key: StreamKey, generation: str) -> ChangeCounts:
        """The changes of every attempt of run `generation` so far."""
        sid = self.stream_id(key)
        with self.engine.connect() as conn:
            counted = tallies.read(conn, sid, generation)
        return ChangeCounts(*counted) if counted else ChangeCounts()

    # -- shadows: what a cache-clearing run writes until it succeeds ----------------------------------

    def shadow(self, key: StreamKey, generation: str) -> StreamKey:
        """The stream a cache-clearing run `generation` writes instead of `key`: empty at first, invisible to
        readers (its variant `#<generation>` is no variant's name), and moved into `key` by `replace_with_shadows`
        when the run succeeds. Shadows of `key` left by earlier runs that failed are dropped."""
        sid = self.stream_id(key)
        shadow_key = _shadow_key(key, generation)
        with self.engine.begin() as conn:
            bulk.lock_stream(conn, sid)
            stale = conn.execute(
                select(streams.c.id).where(streams.c.shadow_of == sid, streams.c.variant != shadow_key.variant)
            ).scalars().all()
            _drop_stream_rows(conn, stale)
            if conn.execute(select(streams.c.id).where(_identity(shadow_key))).first() is None:
                conn.execute(insert(streams).values(**shadow_key.__dict__, last_seq=0, live_count=0, shadow_of=sid))
        self._stream_ids = {k: v for k, v in self._stream_ids.items() if v not in stale}
        return shadow_key

    def has_shadow(self, key: StreamKey, generation: str) -> bool:
        """Whether run `generation` was a cache-clearing run writing a shadow of `key` (not yet swapped in)."""
        return self.stream_id(_shadow_key(key, generation), create=False) is not None

    def count_replaced_away(self, key: StreamKey, shadow_key: StreamKey) -> int:
        """Live records of `key` that its shadow does not have: what replacing it would remove."""
        sid, shadow_sid = self.stream_id(key), self.stream_id(shadow_key, create=False)
        live = records.alias("live")
        kept = select(records.c.record_id).where(
            records.c.stream_id == shadow_sid, records.c.deleted_at.is_(None), records.c.record_id == live.c.record_id
        )
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.count()).select_from(live).where(live.c.stream_id == sid, live.c.deleted_at.is_(None), ~kept.exists())
            ).scalar_one()

    def replace_with_shadows(self, shadows: Mapping[StreamKey, StreamKey], generation: str) -> dict[StreamKey, int]:
        """In one transaction, each stream becomes what its shadow holds: the shadow's live records move in, each
        ADDED with a new cursor after the stream's last one (an app reading changes gets every record again, as
        Nango's emptyCache gives it); the stream's other records are gone; its run tally of `generation` counts
        them all as added. Returns how many records each stream now has."""
        moved: dict[StreamKey, int] = {}
        with self.engine.begin() as conn:
            for key, shadow_key in shadows.items():
                sid, shadow_sid = self.stream_id(key), self.stream_id(shadow_key, create=False)
                seq = bulk.lock_stream(conn, sid)
                shadow_seq = bulk.lock_stream(conn, shadow_sid)
                conn.execute(delete(records).where(records.c.stream_id == sid))
                conn.execute(delete(records).where(records.c.stream_id == shadow_sid, records.c.deleted_at.is_not(None)))
                count = conn.execute(
                    update(records)
                    .where(records.c.stream_id == shadow_sid)
                    .values(stream_id=sid, seq=records.c.seq + seq, last_action=ADDED)
                ).rowcount
                conn.execute(update(streams).where(streams.c.id == sid).values(last_seq=seq + shadow_seq, live_count=count))
                bulk.forget_seen(conn, sid)
                conn.execute(
                    update(run_tallies)
                    .where(run_tallies.c.stream_id == sid, run_tallies.c.generation == generation)
                    .values(added=count, updated=0, deleted=0)
                )
                _drop_stream_rows(conn, [shadow_sid])
                moved[key] = count
        self._stream_ids = {k: v for k, v in self._stream_ids.items() if k not in shadows.values()}
        return moved

    def clear(self, key: StreamKey) -> None:
        """Forget every record of a stream (and its sequence): used when a partition is emptied or deleted."""
        sid = self.stream_id(key, create=False)
        if sid is None:
            return
        with self.engine.begin() as conn:
            bulk.lock_stream(conn, sid)
            conn.execute(delete(records).where(records.c.stream_id == sid))
            bulk.forget_seen(conn, sid)
            conn.execute(update(streams).where(streams.c.id == sid).values(live_count=0))

    def drop_streams(self, integration: str, connection_id: str, variant: str | None = None) -> int:
        """Remove the streams (and records) of a connection, or of one of its variants; returns how many records went."""
        condition = and_(streams.c.integration == integration, streams.c.connection_id == connection_id)
        if variant is not None:
            condition = and_(condition, streams.c.variant == variant)
        removed = 0
        with self.engine.begin() as conn:
            ids = conn.execute(select(streams.c.id).where(condition)).scalars().all()
            if ids and variant is not None:  # the shadows of a variant's streams carry no variant of theirs
                ids += conn.execute(select(streams.c.id).where(streams.c.shadow_of.in_(ids))).scalars().all()
            if ids:
                removed = _drop_stream_rows(conn, ids)
        self._stream_ids = {k: v for k, v in self._stream_ids.items() if v not in ids}
        return removed

    def prune(self, key: StreamKey, until_seq: int, now: datetime, limit: int = 1000) -> tuple[int, bool]:
        """Empty the payload of records up to a cursor, keeping their metadata."""
        sid = self.stream_id(key, create=False)
        if sid is None:
            return 0, False
        with self.engine.begin() as conn:
            ids = conn.execute(
                select(records.c.record_id)
                .where(records.c.stream_id == sid, records.c.seq <= until_seq, records.c.pruned_at.is_(None))
                .order_by(records.c.seq)
                .limit(limit + 1)
            ).scalars().all()
            chosen = ids[:limit]
            if chosen:
                conn.execute(
                    update(records)
                    .where(records.c.stream_id == sid, records.c.record_id.in_(chosen))
                    .values(payload=None, pruned_at=to_iso(now))
                )
        return len(chosen), len(ids) > limit

    # -- reads -----------------------------------------------------------------------------------

    def changes(self, key: StreamKey, query: ChangeQuery) -> list[StoredRecord]:
        """Up to `query.limit` records changed after `query.after_seq`, oldest change first."""
        sid = self.stream_id(key, create=False)
        if sid is None:
            return []
        with self.engine.connect() as conn:
            rows = bulk.changes(
                conn, sid, query.after_seq, query.limit, query.actions, query.modified_after, query.ids
            )
        return list(map(StoredRecord._make, rows))

    def count_live(self, key: StreamKey) -> int:
        """Records not deleted: a counter kept with every write, so no scan of the stream."""
        sid = self.stream_id(key, create=False)
        if sid is None:
            return 0
        with self.engine.connect() as conn:
            return conn.execute(select(streams.c.live_count).where(streams.c.id == sid)).scalar_one()

    def iter_live_payloads(self, key: StreamKey, chunk: int = 10_000) -> Iterator[list[dict[str, Any]]]:
        """Current (non-deleted, non-pruned) records in id order, `chunk` at a time."""
        sid = self.stream_id(key, create=False)
        if sid is None:
            return
        after = ""
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(records.c.record_id, records.c.payload)
                    .where(
                        records.c.stream_id == sid,
                        records.c.record_id > after,
                        records.c.deleted_at.is_(None),
                        records.c.payload.is_not(None),
                    )
                    .order_by(records.c.record_id)
                    .limit(chunk)
                ).all()
            if not rows:
                return
            after, payloads = rows[-1][0], [payload for _, payload in rows]
            del rows  # the consumer holds the decoded page; keep only its text here
            yield [json.loads(payload) for payload in payloads]

    def dataframe(self, key: StreamKey) -> "pd.DataFrame":
        """A sync's current records as a DataFrame, for downstream assets (read in chunks)."""
        import pandas as pd  # imported here: pandas (and the pyarrow it loads) costs a sync 30-100 MB

        frames = [pd.DataFrame.from_records(chunk) for chunk in self.iter_live_payloads(key)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def deep_merge(stored: dict[str, Any], partial: Mapping[str, Any]) -> dict[str, Any]:
    """`partial` merged into `stored` as Nango merges: nested objects key by key, anything else replaced."""
    merged = dict(stored)
    for name, value in partial.items():
        inner = merged.get(name)
        merged[name] = deep_merge(inner, value) if isinstance(inner, dict) and isinstance(value, Mapping) else value
    return merged


class PrepareFn:  # pragma: no cover - typing aid only
    def __call__(self, records: Sequence[dict[str, Any]]) -> list[PreparedRecord]: ...


def _shadow_key(key: StreamKey, generation: str) -> StreamKey:
    return StreamKey(key.integration, key.connection_id, key.model, SHADOW_PREFIX + generation)


def _identity(key: StreamKey):
    return and_(
        streams.c.integration == key.integration,
        streams.c.connection_id == key.connection_id,
        streams.c.model == key.model,
        streams.c.variant == key.variant,
    )


def _drop_stream_rows(conn: Connection, ids: Sequence[int]) -> int:
    """Remove streams with their records, seen batches and tallies; returns how many records went."""
    if not ids:
        return 0
    removed = conn.execute(delete(records).where(records.c.stream_id.in_(ids))).rowcount
    conn.execute(delete(seen_batches).where(seen_batches.c.stream_id.in_(ids)))
    conn.execute(delete(run_tallies).where(run_tallies.c.stream_id.in_(ids)))
    conn.execute(delete(streams).where(streams.c.id.in_(ids)))
    return removed


def _mark_deleted(conn: Connection, sid: int, ids: Sequence[str], seq: int, stamp: str) -> int:
    if not ids:
        return seq
    conn.execute(
        update(records)
        .where(records.c.stream_id == sid, records.c.record_id == bindparam("rid"))
        .values(seq=bindparam("new_seq"), last_action=DELETED, deleted_at=stamp, last_modified_at=stamp),
        [{"rid": record_id, "new_seq": seq + n} for n, record_id in enumerate(ids, start=1)],
    )
    seq += len(ids)
    bulk.release_stream(conn, sid, seq, live_delta=-len(ids))
    return seq
