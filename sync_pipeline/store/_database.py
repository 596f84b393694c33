"""Engine creation and the small time helpers shared by every store module."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.engine import make_url

from sync_pipeline.settings import normalize_database_url
from sync_pipeline.store._migrate import file_lock, migrate, sqlite_lock_path

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def to_iso(moment: datetime) -> str:
    """Fixed-width UTC text: sorts like the moment it names."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    # strftime's %Y does not pad years before 1000 here ("999-..."), which would sort after "2026-...".
    return f"{moment.year:04d}" + moment.strftime(TIMESTAMP_FORMAT[2:])


def from_iso(text: str) -> datetime:
    return datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def create_database_engine(url: str) -> Engine:
    """An engine for SQLite (WAL, waits on locks) or PostgreSQL (batched executemany), its schema migrated to head."""
    url = normalize_database_url(url)
    sqlite = make_url(url).get_backend_name() == "sqlite"
    if sqlite:
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _tune_sqlite_connection)
    else:
        engine = create_engine(url, executemany_mode="values_plus_batch", pool_pre_ping=True)
    try:
        if sqlite:
            _set_up_sqlite_file(engine)
        migrate(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def _set_up_sqlite_file(engine: Engine) -> None:
    # The file's own settings, kept in it: 8 KiB pages for a new database (an existing one keeps its own), as
    # a ~400-byte record row and its index entries take fewer pages to look up and to log; and WAL, which lets
    # the API read while a sync writes. Turning a new file to WAL takes its exclusive lock, and two connections
    # doing it at once deadlock, which SQLite settles by failing one at once with "database is locked" without
    # waiting. So it is done under the migrations' lock, one process or thread at a time.
    with engine.connect() as conn, file_lock(sqlite_lock_path(engine)):
        conn.exec_driver_sql("PRAGMA page_size=8192")
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")


def _tune_sqlite_connection(dbapi_connection, _record) -> None:
    # NORMAL sync is durable across app crashes in WAL mode. Checkpointing every 5,000 pages (~40 MB of WAL)
    # instead of SQLite's 1,000 4 KiB pages halves the checkpoints' fsyncs during a large sync.
    # The figures behind both this and the page size are in benchmarks/README.md.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA wal_autocheckpoint=5000")
    cursor.close()


def dialect_insert(conn: Connection, table: Table):
    """An INSERT with the dialect's ON CONFLICT clauses (SQLite and PostgreSQL spell them alike)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)
