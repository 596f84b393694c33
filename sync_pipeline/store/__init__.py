"""The sync_pipeline database: records cache, connections and their errors, integration client credentials,
partition schedule state, webhook delivery log."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from sqlalchemy import Engine

from sync_pipeline.store.connection_errors import AUTH, SYNC, ConnectionErrorStore
from sync_pipeline.store.connections import Connection, ConnectionPage, ConnectionStore, CredentialsError
from sync_pipeline.store.cursor import MalformedCursor, decode_cursor, encode_cursor
from sync_pipeline.store.database import create_database_engine, from_iso, to_iso, utcnow
from sync_pipeline.store.integrations import IntegrationCredentials, IntegrationCredentialsStore
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

    @cached_property
    def integration_credentials(self) -> IntegrationCredentialsStore:
        return IntegrationCredentialsStore(self.engine)

    @cached_property
    def connection_errors(self) -> ConnectionErrorStore:
        return ConnectionErrorStore(self.engine)


__all__ = [
    "ADDED",
    "AUTH",
    "DELETED",
    "SYNC",
    "UPDATED",
    "ChangeCounts",
    "ChangeQuery",
    "Connection",
    "ConnectionErrorStore",
    "ConnectionPage",
    "ConnectionStore",
    "CredentialsError",
    "IntegrationCredentials",
    "IntegrationCredentialsStore",
    "MalformedCursor",
    "PartitionRow",
    "PartitionStore",
    "PreparedRecord",
    "RecordsCache",
    "Store",
    "StoredRecord",
    "StreamKey",
    "decode_cursor",
    "encode_cursor",
    "from_iso",
    "to_iso",
    "utcnow",
]
