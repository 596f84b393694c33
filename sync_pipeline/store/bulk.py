"""The hot path of saving a batch, in plain driver SQL: no statement compilation per batch.

SQLAlchemy Core compiles and processes every bound value of every statement; for a page of 1,000
records that costs more than the database work. These statements go straight to the driver: sqlite3's
executemany, psycopg2's execute_values (one round trip per page, not per row).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Engine

SQLITE_MAX_VARIABLES = 30_000

_UPSERT = (
    "INSERT INTO sp_records (stream_id, record_id, seq, payload, hash, first_seen_at, last_modified_at, last_action) "
    "VALUES {values} ON CONFLICT (stream_id, record_id) DO UPDATE SET seq = excluded.seq, "
    "payload = excluded.payload, hash = excluded.hash, last_modified_at = excluded.last_modified_at, "
    "last_action = excluded.last_action, deleted_at = NULL, pruned_at = NULL"
)
_MARK_SEEN = (
    "INSERT INTO sp_seen (stream_id, record_id, generation) VALUES {values} "
    "ON CONFLICT (stream_id, record_id) DO UPDATE SET generation = excluded.generation"
)

RecordRow = tuple[int, str, int, str, str, str, str, str]


def changed(conn: Connection, sid: int, batch: Sequence[tuple[str, str]]) -> dict[str, bool]:
    """Of `(id, hash)` pairs, those that would change the stream, compared in the database: each id maps
    to True when it is new or deleted (it will be ADDED), False when stored with another hash (UPDATED).
    Identical records are not returned at all, so an unchanged page costs no per-record Python work."""
    if not batch:
        return {}
    if _is_postgres(conn):
        statement = (
            "SELECT v.id, r.record_id IS NULL OR r.deleted_at IS NOT NULL "
            "FROM unnest(%s::text[], %s::text[]) AS v(id, hash) "
            "LEFT JOIN sp_records AS r ON r.stream_id = %s AND r.record_id = v.id "
            "WHERE r.record_id IS NULL OR r.hash <> v.hash OR r.deleted_at IS NOT NULL"
        )
        ids, hashes = zip(*batch)
        return dict(conn.exec_driver_sql(statement, (list(ids), list(hashes), sid)).all())
    found: dict[str, bool] = {}
    cursor = conn.connection.dbapi_connection.cursor()  # plain tuples, no Row objects
    try:
        for start in range(0, len(batch), SQLITE_MAX_VARIABLES // 2):
            chunk = batch[start : start + SQLITE_MAX_VARIABLES // 2]
            cursor.execute(
                "SELECT v.column1, r.record_id IS NULL OR r.deleted_at IS NOT NULL "
                f"FROM (VALUES {','.join(['(?,?)'] * len(chunk))}) AS v "
                "LEFT JOIN sp_records AS r ON r.stream_id = ? AND r.record_id = v.column1 "
                "WHERE r.record_id IS NULL OR r.hash <> v.column2 OR r.deleted_at IS NOT NULL",
                (*[value for pair in chunk for value in pair], sid),
            )
            found.update((record_id, bool(added)) for record_id, added in cursor.fetchall())
    finally:
        cursor.close()
    return found


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
    mark = "%s" if _is_postgres(conn) else "?"
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
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(statement, params)
        return cursor.fetchall()
    finally:
        cursor.close()


def upsert_records(conn: Connection, rows: Sequence[RecordRow]) -> None:
    _execute_many(conn, _UPSERT, rows, width=8)


def mark_seen(conn: Connection, sid: int, generation: str, ids: Sequence[str]) -> None:
    _execute_many(conn, _MARK_SEEN, [(sid, record_id, generation) for record_id in ids], width=3)


def _execute_many(conn: Connection, template: str, rows: Sequence[tuple], width: int) -> None:
    if not rows:
        return
    if _is_postgres(conn):
        from psycopg2.extras import execute_values

        with conn.connection.dbapi_connection.cursor() as cursor:
            execute_values(cursor, template.format(values="%s"), rows, page_size=1000)
    else:
        conn.exec_driver_sql(template.format(values=f"({','.join('?' * width)})"), rows)


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
                conn.exec_driver_sql("ANALYZE sp_records, sp_seen")


def _is_postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"
