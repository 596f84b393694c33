"""sync_pipeline: keep copies of your customers' SaaS records and tell your app what changed."""

from sync_pipeline.sdk import (
    Integration,
    ProviderError,
    SyncContext,
    SyncDefinition,
    SyncError,
)

__all__ = ["Integration", "ProviderError", "SyncContext", "SyncDefinition", "SyncError"]
