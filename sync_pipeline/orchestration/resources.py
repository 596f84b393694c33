"""The `sync_pipeline` Dagster resource: the sync_pipeline database, as assets and sensors reach it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dagster import ConfigurableResource
from pydantic import Field

from sync_pipeline.settings import database_url
from sync_pipeline.store import Store, StreamKey, store_for
from sync_pipeline.vocabulary import BASE_VARIANT

if TYPE_CHECKING:
    import pandas as pd

class SyncPipelineResource(ConfigurableResource):
    """Where the records cache and connections live (default: SYNC_PIPELINE_DATABASE_URL, else SQLite)."""

    database_url: str | None = Field(default=None, description="SQLAlchemy URL of the sync_pipeline database.")

    def store(self) -> Store:
        return store_for(self.database_url or database_url())

    def records_frame(self, integration: str, model: str, connection_id: str, variant: str = BASE_VARIANT) -> "pd.DataFrame":
        """The current (non-deleted) records of one model of one partition, as a DataFrame."""
        return self.store().records.dataframe(StreamKey(integration, connection_id, model, variant))
