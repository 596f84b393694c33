"""Declaring integrations and their syncs: `Integration(...)` and the `@integration.sync(...)` decorator."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import BaseModel

from sync_pipeline.sdk.deadline import DEFAULT_TIMEOUT, timeout_seconds
from sync_pipeline.sdk.errors import SyncError
from sync_pipeline.sdk.frequency import CRON_PREFIX, Frequency, parse_frequency, read_frequency
from sync_pipeline.sdk.http import DEFAULT_REQUEST_DEADLINE
from sync_pipeline.vocabulary import SYNC_TYPES, SyncType

if TYPE_CHECKING:
    from sync_pipeline.sdk.context import SyncContext
    from sync_pipeline.sdk.oauth import TokenRefresh
    from sync_pipeline.sdk.provider_webhooks import ProviderWebhookContext
    from sync_pipeline.store import Connection

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
MODEL_PATTERN = re.compile(r"^[A-Z][a-zA-Z0-9_-]+$")
DEFAULT_MAX_INVALID_SHARE = 0.5


@dataclass(frozen=True, eq=False)
class SyncDefinition:
    """A declared sync: what it is called, which models it writes and how it is scheduled."""

    integration: "Integration"
    name: str
    fn: Callable[["SyncContext"], None]
    models: tuple[type[BaseModel], ...]
    sync_type: SyncType
    frequency: str
    track_deletes: bool
    backfill: timedelta | None
    auto_start: bool
    description: str
    # Whether a connection gets this sync's base variant, given its metadata: True, or a test of the metadata
    # for syncs whose base variant has nothing to do unless configured (GitHub's needs `repositories`).
    base_variant: "bool | Callable[[Mapping[str, Any]], bool]" = True

    def has_base_variant(self, metadata: Mapping[str, Any]) -> bool:
        """Whether a connection with this metadata gets (and runs) the base variant of this sync."""
        return bool(self.base_variant(metadata)) if callable(self.base_variant) else bool(self.base_variant)
    webhook_subscriptions: tuple[str, ...] = ()
    max_invalid_share: float = DEFAULT_MAX_INVALID_SHARE
    timeout_seconds: float = DEFAULT_TIMEOUT.total_seconds()  # a run's maximum run time

    @property
    def frequency_seconds(self) -> int:
        """Seconds between runs (for a cron frequency, its shortest gap)."""
        return parse_frequency(self.frequency)

    def frequency_for(self, seconds: int | None = None, cron: str | None = None) -> Frequency:
        """A partition's frequency: its own (seconds or a cron expression, set through the API), else the sync's."""
        if cron:
            return read_frequency(f"{CRON_PREFIX} {cron}")
        return Frequency(seconds) if seconds else read_frequency(self.frequency)

    @property
    def model_names(self) -> list[str]:
        return [model.__name__ for model in self.models]

    @property
    def qualified_name(self) -> str:
        """`<integration>__<sync>`: the name of its Dagster asset, job and partitions definition."""
        return f"{self.integration.name}__{self.name}"

    def model(self, name: str | type[BaseModel]) -> type[BaseModel]:
        wanted = name if isinstance(name, str) else name.__name__
        for model in self.models:
            if model.__name__ == wanted:
                return model
        raise SyncError(f"sync {self.qualified_name!r} has no model {wanted!r}; its models: {self.model_names}")


WebhookHandler = Callable[["ProviderWebhookContext"], None]


class Integration:
    """An external API (Slack, Salesforce, ...) and the syncs that read it.

    `base_url` is the API root, or a function of the connection for per-account hosts; a connection's
    `connection_config.base_url` always wins. `error_envelope` turns a 200 response that carries an
    error (Slack's `{"ok": false}`) into that error's message. `refresh` declares how the connections'
    tokens are renewed (`OAuthRefresh(...)`, `GithubAppRefresh()`), with the integration's client credentials.
    `request_deadline` bounds each attempt of a request, body included, in seconds (default 300).
    """

    def __init__(
        self,
        name: str,
        *,
        base_url: str | Callable[["Connection"], str],
        headers: dict[str, str] | None = None,
        api_key_header: tuple[str, str] = ("Authorization", "Bearer "),
        error_envelope: Callable[[httpx.Response], str | None] | None = None,
        refresh: "TokenRefresh | None" = None,
        description: str = "",
        request_deadline: float = DEFAULT_REQUEST_DEADLINE,
    ) -> None:
        if not NAME_PATTERN.match(name):
            raise SyncError(f"integration name {name!r} must match {NAME_PATTERN.pattern}")
        if not request_deadline > 0:
            raise SyncError(f"request_deadline must be a positive number of seconds, not {request_deadline!r}")
        self.name = name
        self.base_url = base_url
        self.headers = dict(headers or {})
        self.api_key_header = api_key_header
        self.error_envelope = error_envelope
        self.refresh = refresh
        self.description = description
        self.request_deadline = float(request_deadline)
        self.syncs: dict[str, SyncDefinition] = {}
        self.webhook_handler: WebhookHandler | None = None

    def __repr__(self) -> str:
        return f"Integration({self.name!r}, syncs={list(self.syncs)})"

    def resolve_base_url(self, connection: "Connection") -> str:
        override = connection.config.get("base_url")
        if override:
            return str(override)
        return self.base_url(connection) if callable(self.base_url) else self.base_url

    def sync(
        self,
        *,
        models: Iterable[type[BaseModel]],
        name: str | None = None,
        sync_type: SyncType = "full",
        frequency: str = "every hour",
        track_deletes: bool = False,
        backfill: timedelta | None = None,
        auto_start: bool = True,
        description: str | None = None,
        base_variant: bool | Callable[[Mapping[str, Any]], bool] = True,
        webhook_subscriptions: Iterable[str] = (),
        max_invalid_share: float = DEFAULT_MAX_INVALID_SHARE,
        timeout: timedelta | float = DEFAULT_TIMEOUT,
    ) -> Callable[[Callable[["SyncContext"], None]], SyncDefinition]:
        """Declare a sync: the decorated function receives a `SyncContext` and saves batches of records.

        `webhook_subscriptions` names the provider's webhook events the integration's handler applies to it.
        A run fails when more than `max_invalid_share` (0 to 1) of one model's records fail validation.
        A run is stopped, and fails saying so, after `timeout` (a timedelta or seconds; 24 hours by default).
        """
        models = tuple(models)
        if not 0 <= max_invalid_share <= 1:
            raise SyncError(f"max_invalid_share is a share between 0 and 1, not {max_invalid_share!r}")
        if sync_type not in SYNC_TYPES:
            raise SyncError(f"sync_type must be 'full' or 'incremental', not {sync_type!r}")
        if track_deletes and sync_type != "full":
            raise SyncError("track_deletes needs a full refresh sync: an incremental run does not see every record")
        if not models:
            raise SyncError("a sync needs at least one model")
        for model in models:
            if not (isinstance(model, type) and issubclass(model, BaseModel)) or "id" not in model.model_fields:
                raise SyncError(f"model {model!r} must be a pydantic model with an `id` field")
            if not MODEL_PATTERN.match(model.__name__):
                raise SyncError(f"model name {model.__name__!r} must match {MODEL_PATTERN.pattern}")
        parse_frequency(frequency)
        max_seconds = timeout_seconds(timeout)

        def decorate(fn: Callable[["SyncContext"], None]) -> SyncDefinition:
            sync_name = name or fn.__name__.replace("_", "-")
            if not NAME_PATTERN.match(sync_name):
                raise SyncError(f"sync name {sync_name!r} must match {NAME_PATTERN.pattern}")
            if sync_name in self.syncs:
                raise SyncError(f"integration {self.name!r} already has a sync named {sync_name!r}")
            taken = {model: other.name for other in self.syncs.values() for model in other.model_names}
            for model in models:
                if model.__name__ in taken:
                    raise SyncError(
                        f"model {model.__name__!r} is already written by sync {taken[model.__name__]!r} of "
                        f"{self.name!r}: a model belongs to one sync (it is one Dagster asset)"
                    )
            definition = SyncDefinition(
                integration=self,
                name=sync_name,
                fn=fn,
                models=models,
                sync_type=sync_type,
                frequency=frequency,
                track_deletes=track_deletes,
                backfill=backfill,
                auto_start=auto_start,
                description=description or (fn.__doc__ or "").strip(),
                base_variant=base_variant,
                webhook_subscriptions=tuple(webhook_subscriptions),
                max_invalid_share=float(max_invalid_share),
                timeout_seconds=max_seconds,
            )
            self.syncs[sync_name] = definition
            return definition

        return decorate

    def webhook(self, handler: WebhookHandler) -> WebhookHandler:
        """Declare the handler of this provider's webhooks (`POST /webhook/<integration>`)."""
        self.webhook_handler = handler
        return handler


@dataclass
class Registry:
    """The integrations a deployment serves, looked up by name."""

    integrations: dict[str, Integration] = field(default_factory=dict)

    @classmethod
    def of(cls, *integrations: Integration) -> "Registry":
        return cls({integration.name: integration for integration in integrations})

    def get(self, name: str) -> Integration | None:
        return self.integrations.get(name)

    def syncs(self) -> list[SyncDefinition]:
        return [sync for integration in self.integrations.values() for sync in integration.syncs.values()]

    def find_sync(self, integration: str, name: str) -> SyncDefinition | None:
        found = self.integrations.get(integration)
        return found.syncs.get(name) if found else None

    def by_qualified_name(self, qualified: str) -> SyncDefinition | None:
        return next((s for s in self.syncs() if s.qualified_name == qualified), None)
