"""The sync_pipeline database: records cache, connections, partition schedule state, webhook delivery log."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from sqlalchemy import Engine

from sync_pipeline.store.connections import Connection, ConnectionStore, ConnectionSummary, ReencryptReport
from sync_pipeline.store.cursor import ForeignCursor, MalformedCursor, cursor_encoder, decode_cursor, encode_cursor
from sync_pipeline.store.database import create_database_engine, from_iso, to_iso, utcnow
from sync_pipeline.store.encryption import ENCRYPTION_KEY_VARIABLE, CredentialsError, EncryptionKeyError, Keyring
from sync_pipeline.store.partitions import PartitionRow, PartitionStore
from sync_pipeline.store.records import (
    ADDED,
    DELETED,
    UPDATED,
    ChangeCounts,
    ChangeQuery,
    PreparedRecord,
    RecordsCache,
    StoredRecord,
    StreamKey,
)


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


__all__ = [
    "ENCRYPTION_KEY_VARIABLE",
    "ConnectionSummary",
    "EncryptionKeyError",
    "Keyring",
    "ReencryptReport",
    "ADDED",
    "DELETED",
    "UPDATED",
    "ChangeCounts",
    "ChangeQuery",
    "Connection",
    "ConnectionStore",
    "CredentialsError",
    "ForeignCursor",
    "MalformedCursor",
    "PartitionRow",
    "PartitionStore",
    "PreparedRecord",
    "RecordsCache",
    "Store",
    "StoredRecord",
    "StreamKey",
    "cursor_encoder",
    "decode_cursor",
    "encode_cursor",
    "from_iso",
    "to_iso",
    "utcnow",
]
