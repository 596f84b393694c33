"""The sync_pipeline database: records cache, connections and their errors, integration client credentials,
partition schedule state, webhook delivery log.

Every table is the store's own; other packages use only the names exported here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property, lru_cache

from sqlalchemy import Engine

from sync_pipeline.store._connection_errors import AUTH, SYNC, ConnectionErrorStore, ConnectionProblem
from sync_pipeline.store._connections import (
    Connection,
    ConnectionPage,
    ConnectionStore,
    ConnectionSummary,
    CredentialsError,
    ReencryptReport,
)
from sync_pipeline.store._cursor import ForeignCursor, MalformedCursor, cursor_encoder, decode_cursor, encode_cursor
from sync_pipeline.store._database import create_database_engine, from_iso, to_iso, utcnow
from sync_pipeline.store._integrations import IntegrationCredentials, IntegrationCredentialsStore
from sync_pipeline.store._migrate import VERSION_TABLE as SCHEMA_VERSION_TABLE
from sync_pipeline.store._migrate import SchemaTooNew
from sync_pipeline.store._migrate import current_revision as schema_revision
from sync_pipeline.store._migrate import file_lock, head_revision
from sync_pipeline.store._migrate import migrate as migrate_schema
from sync_pipeline.store._deliveries import (
    DELIVERED,
    FAILED,
    MAX_DELIVERY_ATTEMPTS,
    PENDING,
    Attempt,
    Delivery,
    DeliveryLog,
)
from sync_pipeline.store._encryption import ENCRYPTION_KEY_VARIABLE, EncryptionKeyError, Keyring
from sync_pipeline.store._partitions import (
    PARTITION_ADDED,
    PARTITION_CAPPED,
    PARTITION_EXISTS,
    PartitionRow,
    PartitionStore,
    RunProgress,
)
from sync_pipeline.store._records import (
    ACTIONS,
    ADDED,
    DELETED,
    UPDATED,
    ChangeCounts,
    ChangeQuery,
    PreparedRecord,
    RecordsCache,
    StoredRecord,
    StreamKey,
    WriteGuard,
)
from sync_pipeline.store._schema import metadata as schema

log = logging.getLogger(__name__)


@dataclass
class Store:
    """Every table of the sync_pipeline database behind one engine."""

    engine: Engine

    @classmethod
    def from_url(cls, url: str) -> "Store":
        return cls(create_database_engine(url))

    @cached_property
    def records(self) -> RecordsCache:
        return RecordsCache(self.engine)

    @cached_property
    def connections(self) -> ConnectionStore:
        return ConnectionStore(self.engine)

    @cached_property
    def partitions(self) -> PartitionStore:
        return PartitionStore(self.engine)

    @cached_property
    def deliveries(self) -> DeliveryLog:
        return DeliveryLog(self.engine)

    @cached_property
    def integration_credentials(self) -> IntegrationCredentialsStore:
        return IntegrationCredentialsStore(self.engine)

    @cached_property
    def connection_errors(self) -> ConnectionErrorStore:
        return ConnectionErrorStore(self.engine)

    def empty(self) -> None:
        """Delete every row of every table (tests and benchmarks start from nothing)."""
        with self.engine.begin() as conn:
            for table in reversed(schema.sorted_tables):
                conn.execute(table.delete())
        if "records" in self.__dict__:
            self.records.forget_streams()


@lru_cache(maxsize=8)
def store_for(url: str) -> Store:
    """One store (one engine and pool) per database URL and process."""
    return Store.from_url(url)


@lru_cache(maxsize=8)
def checked_store(url: str) -> Store:
    """`store_for(url)` once its encryption key is checked: EncryptionKeyError says what is wrong with it.

    A failed check is not cached: the next call checks again. A partial problem is logged as a warning.
    """
    store = store_for(url)
    warning = store.connections.check_encryption_key()
    if warning:
        log.warning("%s", warning)
    return store


__all__ = [
    "ACTIONS",
    "ENCRYPTION_KEY_VARIABLE",
    "ConnectionSummary",
    "EncryptionKeyError",
    "Keyring",
    "ReencryptReport",
    "ADDED",
    "AUTH",
    "DELETED",
    "DELIVERED",
    "FAILED",
    "MAX_DELIVERY_ATTEMPTS",
    "PARTITION_ADDED",
    "PARTITION_CAPPED",
    "PARTITION_EXISTS",
    "PENDING",
    "SCHEMA_VERSION_TABLE",
    "SYNC",
    "UPDATED",
    "Attempt",
    "ChangeCounts",
    "ChangeQuery",
    "Connection",
    "ConnectionErrorStore",
    "ConnectionPage",
    "ConnectionProblem",
    "ConnectionStore",
    "CredentialsError",
    "Delivery",
    "DeliveryLog",
    "ForeignCursor",
    "IntegrationCredentials",
    "IntegrationCredentialsStore",
    "MalformedCursor",
    "PartitionRow",
    "PartitionStore",
    "PreparedRecord",
    "RecordsCache",
    "RunProgress",
    "SchemaTooNew",
    "Store",
    "StoredRecord",
    "StreamKey",
    "WriteGuard",
    "checked_store",
    "create_database_engine",
    "cursor_encoder",
    "decode_cursor",
    "encode_cursor",
    "file_lock",
    "from_iso",
    "head_revision",
    "migrate_schema",
    "schema",
    "schema_revision",
    "store_for",
    "to_iso",
    "utcnow",
]
