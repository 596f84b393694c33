"""The `sync_pipeline` Dagster resource: the sync_pipeline database, as assets and sensors reach it."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import TYPE_CHECKING

from dagster import ConfigurableResource
from pydantic import Field

from sync_pipeline.settings import database_url
from sync_pipeline.store import Store, StreamKey

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


@lru_cache(maxsize=8)
def store_for(url: str) -> Store:
    """One store (one engine and pool) per database URL and process."""
    return Store.from_url(url)


@lru_cache(maxsize=8)
def checked_store(url: str) -> Store:
    """`store_for(url)` once its encryption key is checked: EncryptionKeyError says what is wrong with it.

    A failed check is not cached: the next call checks again.
    """
    store = store_for(url)
    warning = store.connections.check_encryption_key()
    if warning:
        log.warning("%s", warning)
    return store


class SyncPipelineResource(ConfigurableResource):
    """Where the records cache and connections live (default: SYNC_PIPELINE_DATABASE_URL, else SQLite)."""

    database_url: str | None = Field(default=None, description="SQLAlchemy URL of the sync_pipeline database.")

    def store(self) -> Store:
        """The store, its encryption key checked (a wrong key fails sensors and runs with EncryptionKeyError)."""
        return checked_store(self.database_url or database_url())

    def records_frame(self, integration: str, model: str, connection_id: str, variant: str = "base") -> "pd.DataFrame":
        """The current (non-deleted) records of one model of one partition, as a DataFrame."""
        return self.store().records.dataframe(StreamKey(integration, connection_id, model, variant))
