"""`ProviderWebhookContext`: what an integration's webhook handler is given to turn a provider's event into records."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from sync_pipeline.json_input import InvalidJson, parse_json
from sync_pipeline.sdk.context import RecordWriter, RunLedger
from sync_pipeline.sdk.declaration import Integration, SyncDefinition
from sync_pipeline.sdk.errors import SyncError
from sync_pipeline.store import Connection, Store, StreamKey
from sync_pipeline.vocabulary import BASE_VARIANT


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


class ProviderWebhookContext:
    """One delivery of a provider's webhook: its headers and body, and the records it saves (base variant)."""

    def __init__(self, integration: Integration, store: Store, headers: Mapping[str, str], body: bytes) -> None:
        self.integration = integration
        self.headers = {key.lower(): value for key, value in headers.items()}
        self.body = body
        self.log = logging.getLogger(f"sync_pipeline.provider_webhooks.{integration.name}")
        self.changes = WebhookChanges()
        self._store = store
        self._connection: Connection | None = None
        self.attributed: dict[str, Connection] = {}  # the connections the handler found the event is for, by id
        self._writers: dict[tuple[str, str], RecordWriter] = {}

    def json(self) -> Any:
        try:
            return parse_json(self.body)
        except InvalidJson as error:
            raise WebhookRejected(f"the webhook body is not usable JSON: {error}", status=400) from None

    def connections(self) -> list[Connection]:
        return self._store.connections.list(self.integration.name)

    def connection_signed_by(self, header: str, *, secret_config: str = "webhook_secret", prefix: str = "sha256=") -> Connection:
        """The connection whose `connection_config[secret_config]` signed this body in `header` (HMAC-SHA256, hex).

        Raises UnknownWebhookConnection when the integration has no connection, WebhookRejected when none signed it.
        """
        connections = self.connections()
        if not connections:
            raise UnknownWebhookConnection(f"there is no {self.integration.name} connection to receive this webhook")
        for connection in connections:
            secret = connection.config.get(secret_config)
            if secret and self.signed_with(str(secret), header, prefix):
                self.attributed[connection.connection_id] = connection
                return connection
        raise WebhookRejected(
            f"{header} does not match the connection_config.{secret_config} of any {self.integration.name} connection",
            status=401,
        )

    def use_connection(self, connection: Connection) -> None:
        """The connection the following saves and deletes apply to (its base variant)."""
        self._connection = connection
        self.attributed[connection.connection_id] = connection

    def signed_with(self, secret: str, header: str, prefix: str = "sha256=") -> bool:
        """Is this body signed with `secret` in `header` (HMAC-SHA256, hex, e.g. GitHub's X-Hub-Signature-256)?"""
        return hmac_sha256_matches(secret, self.body, self.headers.get(header.lower()), prefix)

    def batch_save(self, records: Sequence[Mapping[str, Any]], model: str | type[BaseModel]) -> None:
        self._writer(model).save(records, model)

    def batch_update(self, partials: Sequence[Mapping[str, Any]], model: str | type[BaseModel]) -> None:
        self._writer(model).update(partials, model)

    def batch_delete(self, ids_or_records: Iterable[Any], model: str | type[BaseModel]) -> None:
        self._writer(model).delete(ids_or_records, model)

    def _writer(self, model: str | type[BaseModel]) -> RecordWriter:
        """The writer of the current connection and the sync writing `model`; the first records each low watermark."""
        if self._connection is None:
            raise SyncError("call use_connection(...) before saving records from a webhook")
        sync = self._sync_of(model)
        subject = (self._connection.connection_id, sync.name)
        if subject not in self._writers:
            self.changes.low_watermarks[subject] = {
                name: self._store.records.last_seq(StreamKey(self.integration.name, subject[0], name, BASE_VARIANT))
                for name in sync.model_names
            }
            writer = RecordWriter(sync, subject[0], BASE_VARIANT, self._store.records, generation=None, log=self.log)
            self._writers[subject] = writer
            self.changes.ledgers[subject] = writer.ledger
        return self._writers[subject]

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
