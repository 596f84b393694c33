"""Engine creation and the small time helpers shared by every store module."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Connection, Engine, Table, create_engine, event, inspect, text
from sqlalchemy.engine import make_url

from sync_pipeline.settings import normalize_database_url
from sync_pipeline.store._schema import metadata

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def to_iso(moment: datetime) -> str:
    """Fixed-width UTC text: sorts like the moment it names."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime(TIMESTAMP_FORMAT)


def from_iso(text: str) -> datetime:
    return datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def create_database_engine(url: str) -> Engine:
    """An engine for SQLite (WAL, waits on locks) or PostgreSQL (batched executemany), tables created."""
    url = normalize_database_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _tune_sqlite)
    else:
        engine = create_engine(url, executemany_mode="values_plus_batch", pool_pre_ping=True)
    metadata.create_all(engine)
    _add_new_columns(engine)
    return engine


def _add_new_columns(engine: Engine) -> None:
    """Add columns declared since a table was created (nullable, or with a server default) to the existing table."""
    inspector = inspect(engine)
    for table in metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        missing = [column for column in table.columns if column.name not in present]
        if not missing:
            continue
        with engine.begin() as conn:
            for column in missing:
                kind = column.type.compile(engine.dialect)
                default = f" DEFAULT {column.server_default.arg.text}" if column.server_default is not None else ""
                not_null = " NOT NULL" if not column.nullable and default else ""
                conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}{default}{not_null}'))


def _tune_sqlite(dbapi_connection, _record) -> None:
    # WAL lets the API read while a sync writes; NORMAL sync is durable across app crashes in WAL mode.
    # 8 KiB pages for a new database (an existing one keeps its own): a ~400-byte record row and its index
    # entries take fewer pages to look up and to log. Checkpointing every 5,000 of them (~40 MB of WAL)
    # instead of SQLite's 1,000 4 KiB pages halves the checkpoints' fsyncs during a large sync.
    # The figures behind both are in benchmarks/README.md.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA page_size=8192")
    cursor.execute("PRAGMA journal_mode=WAL")
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
