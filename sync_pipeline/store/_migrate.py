"""Creating and upgrading the sync_pipeline schema: Alembic revisions, applied once and under a lock.

Every process that opens the database migrates it first (`create_database_engine`), so the schema is
complete before anything reads or writes it. Concurrent first starts (the daemon's two sensors in
threads, `serve` and the daemon at the same moment, several workers) queue on a lock: a PostgreSQL
advisory lock held by the migrating transaction, or on SQLite an exclusive lock on a file beside the
database. The first one migrates; the others find the schema at head and go on.
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

VERSION_TABLE = "sp_schema_version"  # not `alembic_version`: Dagster's own storage may share the database
MIGRATIONS = Path(__file__).with_name("migrations")
# Any fixed 64-bit number, the same in every process: b"sp_schem" read as an integer.
ADVISORY_LOCK_KEY = int.from_bytes(b"sp_schem", "big")
_memory_lock = threading.Lock()  # for a database without a file (SQLite in memory): one process only


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for the packaged migrations, run on `connection`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def head_revision() -> str:
    """The newest revision shipped with this version of the package."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at; None for an empty database or one made before versioning."""
    return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def migrate(engine: Engine) -> bool:
    """Bring the schema to head; True when this call changed it, False when it was there already."""
    head = head_revision()
    with engine.connect() as conn:
        if current_revision(conn) == head:  # the usual start: no lock taken
            return False
    with schema_lock(engine) as conn:
        current = current_revision(conn)
        if current == head:  # another process migrated while this one waited
            return False
        if current is not None and current not in known_revisions():
            raise SchemaTooNew(
                f"the sync_pipeline database is at schema revision {current!r}, which this version of "
                f"sync_pipeline does not know (its newest is {head!r}): it was upgraded by a newer release; "
                "run that release, or restore a backup made before the upgrade"
            )
        command.upgrade(alembic_config(conn), "head")
        return True


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer release than the one running."""


@lru_cache(maxsize=1)
def known_revisions() -> frozenset[str]:
    return frozenset(script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions())


@contextmanager
def schema_lock(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction, held by one process (and thread) at a time for this database."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            # Released when the transaction ends; DDL is transactional on PostgreSQL, so a failed
            # migration leaves the schema as it was.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            yield conn
        return
    with file_lock(sqlite_lock_path(engine)):
        with engine.begin() as conn:
            yield conn


@contextmanager
def file_lock(path: Path | None) -> Iterator[None]:
    """An exclusive lock on `path` across processes and threads (each open has its own lock), or a
    process-wide lock when there is no file."""
    if path is None:
        with _memory_lock:
            yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def sqlite_lock_path(engine: Engine) -> Path | None:
    """The file whose lock serializes changes to a SQLite database's schema and file settings; None in memory."""
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database + ".migrate-lock")
