"""The records cache's hot statements (saving a page, finding unseen records, reading changes) in driver SQL.

SQLAlchemy Core compiles and processes every bound value of every statement; for a page of 1,000
records that costs more than the database work. These statements go straight to the driver: sqlite3's
executemany, psycopg2's execute_values (one round trip per page, not per row), and compare, unpack and
anti-join inside the database, so no per-record Python work is spent on records that did not change.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine

SQLITE_MAX_VARIABLES = 30_000

_UPSERT = (
    "INSERT INTO sp_records (stream_id, record_id, seq, payload, hash, first_seen_at, last_modified_at, last_action) "
    "VALUES {values} ON CONFLICT (stream_id, record_id) DO UPDATE SET seq = excluded.seq, "
    "payload = excluded.payload, hash = excluded.hash, last_modified_at = excluded.last_modified_at, "
    "last_action = excluded.last_action, deleted_at = NULL, pruned_at = NULL, "
    # A record deleted and seen again is a new record to the app (ADDED), first seen now, as in Nango.
    "first_seen_at = CASE WHEN sp_records.deleted_at IS NULL THEN sp_records.first_seen_at "
    "ELSE excluded.first_seen_at END"
)
_RESTORE = "UPDATE sp_records SET payload = {mark}, pruned_at = NULL WHERE stream_id = {mark} AND record_id = {mark}"

# What saving a record does to the stream (see `changed`): a new or deleted record is ADDED, one stored with
# another hash is UPDATED, and a pruned one saved unchanged gets its payload back without being a change.
CHANGE_ADDED, CHANGE_UPDATED, CHANGE_RESTORED = 2, 1, 0

RecordRow = tuple[int, str, int, str, str, str, str, str]


def lock_stream(conn: Connection, sid: int) -> int:
    """Take the stream's row lock for this transaction and return its last sequence number."""
    mark = _mark(conn)
    with _cursor(conn) as cursor:
        cursor.execute(f"UPDATE sp_streams SET last_seq = last_seq WHERE id = {mark} RETURNING last_seq", (sid,))
        row = cursor.fetchone()
    if row is None:
        raise LookupError(f"records stream {sid} no longer exists: its connection or variant was deleted")
    return row[0]


def release_stream(conn: Connection, sid: int, seq: int, live_delta: int) -> None:
    """Store the stream's new last sequence number and adjust its count of live records."""
    mark = _mark(conn)
    with _cursor(conn) as cursor:
        cursor.execute(
            f"UPDATE sp_streams SET last_seq = {mark}, live_count = live_count + {mark} WHERE id = {mark}",
            (seq, live_delta, sid),
        )


def changed(conn: Connection, sid: int, batch: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Of `(id, hash)` pairs, those that would change the stream, compared in the database: each id maps
    to CHANGE_ADDED when it is new or deleted, CHANGE_UPDATED when stored with another hash, CHANGE_RESTORED
    when stored pruned with this hash. Identical records are not returned at all, so an unchanged page costs
    no per-record Python work."""
    if not batch:
        return {}
    kind = (
        f"CASE WHEN r.record_id IS NULL OR r.deleted_at IS NOT NULL THEN {CHANGE_ADDED} "
        f"WHEN r.hash <> {{value}} THEN {CHANGE_UPDATED} ELSE {CHANGE_RESTORED} END"
    )
    differs = "r.record_id IS NULL OR r.hash <> {value} OR r.deleted_at IS NOT NULL OR r.pruned_at IS NOT NULL"
    if _is_postgres(conn):
        # One JSON object parameter, not two text[] arrays: psycopg2 quotes every element of an array into
        # the statement's text, which took longer than the lookups themselves.
        statement = (
            f"SELECT v.key, {kind.format(value='v.value')} FROM json_each_text(%s::json) AS v "
            "LEFT JOIN sp_records AS r ON r.stream_id = %s AND r.record_id = v.key "
            f"WHERE {differs.format(value='v.value')}"
        )
        return dict(conn.exec_driver_sql(statement, (json.dumps(dict(batch), separators=(",", ":")), sid)).all())
    found: dict[str, int] = {}
    with _cursor(conn) as cursor:
        for start in range(0, len(batch), SQLITE_MAX_VARIABLES // 2):
            chunk = batch[start : start + SQLITE_MAX_VARIABLES // 2]
            cursor.execute(
                f"SELECT v.column1, {kind.format(value='v.column2')} "
                f"FROM (VALUES {','.join(['(?,?)'] * len(chunk))}) AS v "
                "LEFT JOIN sp_records AS r ON r.stream_id = ? AND r.record_id = v.column1 "
                f"WHERE {differs.format(value='v.column2')}",
                (*[value for pair in chunk for value in pair], sid),
            )
            found.update(cursor.fetchall())
    return found


def restore_payloads(conn: Connection, sid: int, records: Sequence[tuple[str, str]]) -> None:
    """Give pruned records, saved again unchanged, their `(id, payload)` back (no new cursor: not a change)."""
    if records:
        mark = _mark(conn)
        with _cursor(conn) as cursor:
            cursor.executemany(_RESTORE.format(mark=mark), [(payload, sid, rid) for rid, payload in records])


STORED_COLUMNS = "record_id, seq, payload, first_seen_at, last_modified_at, last_action, deleted_at, pruned_at"


def changes(
    conn: Connection,
    sid: int,
    after_seq: int,
    limit: int,
    actions: Sequence[str],
    modified_after: str | None,
    ids: Sequence[str],
) -> list[tuple]:
    """A page of the stream's changes after `after_seq`, in sequence order (a keyset scan of its index)."""
    mark = _mark(conn)
    clauses, params = [f"stream_id = {mark}", f"seq > {mark}"], [sid, after_seq]
    if actions:
        clauses.append(f"last_action IN ({','.join([mark] * len(actions))})")
        params += actions
    if modified_after:
        clauses.append(f"last_modified_at >= {mark}")
        params.append(modified_after)
    if ids:
        clauses.append(f"record_id IN ({','.join([mark] * len(ids))})")
        params += ids
    statement = (
        f"SELECT {STORED_COLUMNS} FROM sp_records WHERE {' AND '.join(clauses)} ORDER BY seq LIMIT {int(limit)}"
    )
    with _cursor(conn) as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall()


def upsert_records(conn: Connection, rows: Sequence[RecordRow]) -> None:
    """Write new and changed records: one executemany (SQLite) or execute_values (PostgreSQL) a page."""
    if not rows:
        return
    with _cursor(conn) as cursor:
        if _is_postgres(conn):
            from psycopg2.extras import execute_values

            execute_values(cursor, _UPSERT.format(values="%s"), rows, page_size=1000)
        else:
            cursor.executemany(_UPSERT.format(values=f"({','.join('?' * len(rows[0]))})"), rows)


def mark_seen(conn: Connection, sid: int, generation: str, ids: Sequence[str]) -> None:
    """Remember that run `generation` saw `ids` unchanged: one row for the whole batch."""
    if ids:
        mark = _mark(conn)
        with _cursor(conn) as cursor:
            cursor.execute(
                f"INSERT INTO sp_seen_batches (stream_id, generation, record_ids) VALUES ({mark}, {mark}, {mark})",
                (sid, generation, json.dumps(ids, separators=(",", ":"))),
            )


@contextmanager
def seen_by(conn: Connection, sid: int, generation: str) -> Iterator[None]:
    """Within the block, the temporary table `sp_run_seen` holds every id run `generation` saw unchanged.

    The ids are unpacked from their batches inside the database (SQLite's json_each, PostgreSQL's
    json_array_elements_text) into an indexed table on the database's temporary storage, so the anti-join
    of `unseen` probes an index and this process never holds the set.
    """
    run = (sid, generation)
    if _is_postgres(conn):
        # Filled, then indexed: a sorted index build, three times faster than a million unique inserts.
        fill = [
            (
                "CREATE TEMPORARY TABLE sp_run_seen AS "
                "SELECT json_array_elements_text(record_ids::json) COLLATE \"C\" AS record_id "
                "FROM sp_seen_batches WHERE stream_id = %s AND generation = %s",
                run,
            ),
            ("CREATE INDEX ON sp_run_seen (record_id)", ()),
            ("ANALYZE sp_run_seen", ()),  # autovacuum never analyses temporary tables
        ]
    else:
        fill = [
            ("CREATE TEMPORARY TABLE sp_run_seen (record_id VARCHAR(255) NOT NULL PRIMARY KEY) WITHOUT ROWID", ()),
            (
                "INSERT INTO sp_run_seen SELECT j.value FROM sp_seen_batches AS b, json_each(b.record_ids) AS j "
                "WHERE b.stream_id = ? AND b.generation = ? ON CONFLICT DO NOTHING",
                run,
            ),
        ]
    with conn.begin():
        conn.exec_driver_sql("DROP TABLE IF EXISTS sp_run_seen")
        for statement, parameters in fill:
            conn.exec_driver_sql(statement, parameters)
    try:
        yield
    finally:
        with conn.begin():
            conn.exec_driver_sql("DROP TABLE IF EXISTS sp_run_seen")


def unseen(conn: Connection, sid: int, after: str, started: str, limit: int) -> list[str]:
    """Up to `limit` ids after `after`, in id order, of live records written before `started` and not in
    `sp_run_seen` (see `seen_by`)."""
    mark, condition = _unseen_condition(conn)
    with _cursor(conn) as cursor:
        cursor.execute(
            f"SELECT r.record_id FROM sp_records AS r WHERE {condition} AND r.record_id > {mark} "
            f"ORDER BY r.record_id LIMIT {int(limit)}",
            (sid, started, after),
        )
        return [record_id for (record_id,) in cursor.fetchall()]


def count_unseen(conn: Connection, sid: int, started: str) -> int:
    """How many records `unseen` would return in all: what a deletion sweep would delete."""
    _, condition = _unseen_condition(conn)
    with _cursor(conn) as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM sp_records AS r WHERE {condition}", (sid, started))
        return cursor.fetchone()[0]


def _unseen_condition(conn: Connection) -> tuple[str, str]:
    """The parameter marker, and the condition (parameters: stream id, run start) of a record a run did not see."""
    if _is_postgres(conn):
        mark, not_seen = "%s", "NOT EXISTS (SELECT 1 FROM sp_run_seen AS s WHERE s.record_id = r.record_id)"
    else:
        # NOT IN lets SQLite test the id on the index before it reads the row: 0.67 -> 0.39 s a million.
        # (On PostgreSQL a NOT IN over more ids than work_mem holds is re-scanned for every row.)
        mark, not_seen = "?", "r.record_id NOT IN (SELECT record_id FROM sp_run_seen)"
    return mark, (
        f"r.stream_id = {mark} AND r.deleted_at IS NULL AND r.last_modified_at < {mark} AND {not_seen}"
    )


def forget_seen(conn: Connection, sid: int, keep_generation: str | None = None) -> None:
    """Drop the stream's seen batches, except those of `keep_generation`."""
    mark = _mark(conn)
    if keep_generation is None:
        conn.exec_driver_sql(f"DELETE FROM sp_seen_batches WHERE stream_id = {mark}", (sid,))
    else:
        conn.exec_driver_sql(
            f"DELETE FROM sp_seen_batches WHERE stream_id = {mark} AND generation <> {mark}", (sid, keep_generation)
        )


class PlannerStatistics:
    """Keeps PostgreSQL's statistics of the records tables in step with bulk loads.

    A first sync writes a table autovacuum has not analysed yet: the planner then takes the (stream_id, seq)
    index for the per-batch id lookup and filters the whole stream, batch after batch (a million-record
    load went from 1 to 4 minutes). ANALYZE after every doubling of what this process wrote keeps it on
    the primary key, for a handful of ~0.2 s analyses per million records.
    """

    FIRST = 10_000

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._enabled = engine.dialect.name == "postgresql"
        self._written = 0
        self._next = self.FIRST

    def wrote(self, rows: int) -> None:
        if not self._enabled:
            return
        self._written += rows
        if self._written >= self._next:
            self._next = 2 * self._written
            with self._engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE sp_records")


def _is_postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


@contextmanager
def _cursor(conn: Connection) -> Iterator[Any]:
    """The DBAPI cursor under `conn`: plain tuples, no SQLAlchemy result processing."""
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        yield cursor
    finally:
        cursor.close()


def _mark(conn: Connection) -> str:
    """The driver's parameter marker: psycopg2's `%s`, sqlite3's `?`."""
    return "%s" if _is_postgres(conn) else "?"
