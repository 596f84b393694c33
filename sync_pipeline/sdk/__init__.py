"""The sync SDK: declare integrations and syncs, and the context a sync function runs with."""

from sync_pipeline.sdk.context import SyncContext
from sync_pipeline.sdk.declaration import Integration, Registry, SyncDefinition
from sync_pipeline.sdk.errors import ProviderError, SyncError
from sync_pipeline.sdk.frequency import InvalidFrequency, describe_frequency, parse_frequency
from sync_pipeline.sdk.http import RetryPolicy, json_envelope_error
from sync_pipeline.sdk.oauth import (
    CredentialsFailed,
    GithubAppRefresh,
    OAuthRefresh,
    RefreshRefused,
    envelope_error,
    expires_in,
    no_expiry,
)
from sync_pipeline.sdk.pagination import (
    CursorPagination,
    LinkPagination,
    NextUrlPagination,
    OffsetPagination,
    Page,
    PagePagination,
    RepeatedCursor,
)
from sync_pipeline.sdk.provider_webhooks import ProviderWebhookContext, UnknownWebhookConnection, WebhookRejected
from sync_pipeline.store import Connection
from sync_pipeline.vocabulary import BASE_VARIANT

__all__ = [
    "BASE_VARIANT",
    "Connection",
    "CredentialsFailed",
    "CursorPagination",
    "GithubAppRefresh",
    "Integration",
    "InvalidFrequency",
    "LinkPagination",
    "NextUrlPagination",
    "OAuthRefresh",
    "OffsetPagination",
    "Page",
    "PagePagination",
    "ProviderError",
    "RefreshRefused",
    "RepeatedCursor",
    "Registry",
    "RetryPolicy",
    "SyncContext",
    "SyncDefinition",
    "SyncError",
    "UnknownWebhookConnection",
    "ProviderWebhookContext",
    "WebhookRejected",
    "describe_frequency",
    "envelope_error",
    "expires_in",
    "no_expiry",
    "parse_frequency",
]
