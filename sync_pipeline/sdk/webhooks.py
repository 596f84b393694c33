"""`WebhookContext`: what an integration's webhook handler is given to turn a provider event into records."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from sync_pipeline.json_input import InvalidJson, parse_json
from sync_pipeline.sdk.context import RunLedger, SyncContext
from sync_pipeline.sdk.declaration import Integration, SyncDefinition
from sync_pipeline.sdk.errors import SyncError
from sync_pipeline.store import Connection, Store, StreamKey

BASE_VARIANT = "base"


class WebhookRejected(SyncError):
    """The request is not a genuine or usable event (bad signature: 401; unusable body: 400)."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


class UnknownWebhookConnection(SyncError):
    """No connection of this integration matches the event."""


@dataclass
class WebhookChanges:
    """The changes one webhook made: per connection and sync, a ledger of counts per model, and each
    model's last record sequence number before the first change (its low watermark)."""

    ledgers: dict[tuple[str, str], RunLedger] = field(default_factory=dict)
    low_watermarks: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)


class WebhookContext:
    def __init__(self, integration: Integration, store: Store, headers: Mapping[str, str], body: bytes) -> None:
        self.integration = integration
        self.headers = {key.lower(): value for key, value in headers.items()}
        self.body = body
        self.log = logging.getLogger(f"sync_pipeline.webhooks.{integration.name}")
        self.changes = WebhookChanges()
        self._store = store
        self._connection: Connection | None = None

    def json(self) -> Any:
        try:
            return parse_json(self.body)
        except InvalidJson as error:
            raise WebhookRejected(f"the webhook body is not usable JSON: {error}", status=400) from None

    def connections(self) -> list[Connection]:
        return self._store.connections.list(self.integration.name)

    def use_connection(self, connection: Connection) -> None:
        """The connection the following saves and deletes apply to (its base variant)."""
        self._connection = connection

    def signed_with(self, secret: str, header: str, prefix: str = "sha256=") -> bool:
        """Is this body signed with `secret` in `header` (HMAC-SHA256, hex, e.g. GitHub's X-Hub-Signature-256)?"""
        return hmac_sha256_matches(secret, self.body, self.headers.get(header.lower()), prefix)

    def batch_save(self, records: Sequence[Mapping[str, Any]], model: str | type[BaseModel]) -> None:
        self._sync_context(model).batch_save(records, model)

    def batch_update(self, partials: Sequence[Mapping[str, Any]], model: str | type[BaseModel]) -> None:
        self._sync_context(model).batch_update(partials, model)

    def batch_delete(self, ids_or_records: Iterable[Any], model: str | type[BaseModel]) -> None:
        self._sync_context(model).batch_delete(ids_or_records, model)

    def _sync_context(self, model: str | type[BaseModel]) -> SyncContext:
        if self._connection is None:
            raise SyncError("call use_connection(...) before saving records from a webhook")
        sync = self._sync_of(model)
        subject = (self._connection.connection_id, sync.name)
        if subject not in self.changes.ledgers:
            self.changes.ledgers[subject] = RunLedger()
            self.changes.low_watermarks[subject] = {
                name: self._store.records.last_seq(StreamKey(self.integration.name, subject[0], name, BASE_VARIANT))
                for name in sync.model_names
            }
        ledger = self.changes.ledgers[subject]
        ctx = SyncContext(
            sync=sync,
            connection=self._connection,
            variant=BASE_VARIANT,
            cache=self._store.records,
            last_sync_date=None,
            checkpoint=None,
            on_checkpoint=lambda _checkpoint: None,
            generation=None,
            log=self.log,
        )
        ctx.ledger = ledger
        return ctx

    def _sync_of(self, model: str | type[BaseModel]) -> SyncDefinition:
        name = model if isinstance(model, str) else model.__name__
        for sync in self.integration.syncs.values():
            if name in sync.model_names:
                return sync
        raise SyncError(f"integration {self.integration.name!r} has no sync writing model {name!r}")


def hmac_sha256_matches(secret: str, body: bytes, signature: str | None, prefix: str = "sha256=") -> bool:
    """Does `signature` (e.g. GitHub's `X-Hub-Signature-256: sha256=<hex>`) sign `body` with `secret`?"""
    if not signature or not secret or not signature.startswith(prefix):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature[len(prefix) :])
