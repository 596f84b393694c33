"""Connections: an end user's account at one integration, with its credentials, config and metadata."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Engine, delete, insert, select, update

from sync_pipeline.store._database import to_iso, utcnow
from sync_pipeline.store._schema import connections

_ENCRYPTED = "fernet:"


@dataclass
class Connection:
    integration: str
    connection_id: str
    credentials: dict[str, Any] = field(default_factory=dict, repr=False)  # never in logs or reprs
    config: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    webhook_url_override: str | None = None
    id: int | None = None
    created_at: str | None = None
    updated_at: str | None = None
    last_fetched_at: str | None = None


class CredentialsError(RuntimeError):
    """Stored credentials that cannot be read with the configured encryption key."""


class ConnectionStore:
    def __init__(self, engine: Engine, encryption_key: str | None = None) -> None:
        self.engine = engine
        key = encryption_key if encryption_key is not None else os.environ.get("SYNC_PIPELINE_ENCRYPTION_KEY")
        self._fernet = Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest())) if key else None

    def upsert(self, connection: Connection) -> Connection:
        """Create the connection, or update an existing one with the same (integration, connection_id)."""
        now = to_iso(utcnow())
        values = {
            "credentials": self._seal(connection.credentials),
            "connection_config": json.dumps(connection.config),
            "metadata": json.dumps(connection.metadata),
            "webhook_url_override": connection.webhook_url_override,
            "updated_at": now,
        }
        with self.engine.begin() as conn:
            existing = conn.execute(
                select(connections.c.id).where(
                    connections.c.integration == connection.integration,
                    connections.c.connection_id == connection.connection_id,
                )
            ).scalar()
            if existing is None:
                conn.execute(
                    insert(connections).values(
                        integration=connection.integration,
                        connection_id=connection.connection_id,
                        created_at=now,
                        **values,
                    )
                )
            else:
                conn.execute(update(connections).where(connections.c.id == existing).values(**values))
        stored = self.get(connection.integration, connection.connection_id)
        assert stored is not None
        return stored

    def get(self, integration: str, connection_id: str) -> Connection | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(connections).where(
                    connections.c.integration == integration, connections.c.connection_id == connection_id
                )
            ).first()
        return self._from_row(row) if row is not None else None

    def list(self, integration: str | None = None, connection_id: str | None = None) -> list[Connection]:
        statement = select(connections).order_by(connections.c.id)
        if integration is not None:
            statement = statement.where(connections.c.integration == integration)
        if connection_id is not None:
            statement = statement.where(connections.c.connection_id == connection_id)
        with self.engine.connect() as conn:
            return [self._from_row(row) for row in conn.execute(statement)]

    def set_metadata(self, integration: str, connection_ids: list[str], metadata: dict[str, Any], *, merge: bool) -> bool:
        """Replace (or merge top-level keys of) the metadata of all named connections, or of none."""
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(connections.c.id, connections.c.metadata).where(
                    connections.c.integration == integration, connections.c.connection_id.in_(connection_ids)
                )
            ).all()
            if len(rows) != len(set(connection_ids)):
                return False
            for row_id, current in rows:
                new = {**json.loads(current), **metadata} if merge else metadata
                conn.execute(
                    update(connections)
                    .where(connections.c.id == row_id)
                    .values(metadata=json.dumps(new), updated_at=to_iso(utcnow()))
                )
        return True

    def webhook_url_overrides(self, integration: str) -> dict[str, str]:
        """Each connection's `webhook_url_override`, in one query: no credentials read or decrypted."""
        statement = select(connections.c.connection_id, connections.c.webhook_url_override).where(
            connections.c.integration == integration, connections.c.webhook_url_override.is_not(None)
        )
        with self.engine.connect() as conn:
            return {row.connection_id: row.webhook_url_override for row in conn.execute(statement)}

    def touch_fetched(self, integration: str, connection_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(connections)
                .where(connections.c.integration == integration, connections.c.connection_id == connection_id)
                .values(last_fetched_at=to_iso(utcnow()))
            )

    def delete(self, integration: str, connection_id: str) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(
                delete(connections).where(
                    connections.c.integration == integration, connections.c.connection_id == connection_id
                )
            )
        return result.rowcount > 0

    def _seal(self, credentials: dict[str, Any]) -> str:
        text = json.dumps(credentials)
        if self._fernet is None:
            return text
        return _ENCRYPTED + self._fernet.encrypt(text.encode()).decode()

    def _open(self, stored: str) -> dict[str, Any]:
        if not stored.startswith(_ENCRYPTED):
            return json.loads(stored)
        if self._fernet is None:
            raise CredentialsError("credentials are encrypted: set SYNC_PIPELINE_ENCRYPTION_KEY to read them")
        try:
            return json.loads(self._fernet.decrypt(stored[len(_ENCRYPTED) :].encode()))
        except InvalidToken:
            raise CredentialsError("credentials cannot be decrypted with SYNC_PIPELINE_ENCRYPTION_KEY") from None

    def _from_row(self, row) -> Connection:
        return Connection(
            id=row.id,
            integration=row.integration,
            connection_id=row.connection_id,
            credentials=self._open(row.credentials),
            config=json.loads(row.connection_config),
            metadata=json.loads(row.metadata),
            webhook_url_override=row.webhook_url_override,
            created_at=row.created_at,
            updated_at=row.updated_at,
            last_fetched_at=row.last_fetched_at,
        )
