"""Connections: an end user's account at one integration, with its credentials, config and metadata."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from sync_pipeline.json_input import loads_stored
from sync_pipeline.store._database import to_iso, utcnow
from sync_pipeline.store._encryption import (
    ENCRYPTION_KEY_VARIABLE,
    CredentialsError,
    EncryptionKeyError,
    Keyring,
    is_sealed,
)
from sync_pipeline.store._schema import connections

log = logging.getLogger(__name__)
KEY_CHECK_SAMPLE = 100  # the most recently written connections whose secrets the start-up check decrypts
REENCRYPT_CHUNK = 500


@dataclass
class Connection:
    integration: str
    connection_id: str
    credentials: dict[str, Any] = field(default_factory=dict, repr=False)  # never in logs or reprs
    config: dict[str, Any] = field(default_factory=dict, repr=False)  # may hold secrets (webhook_secret...)
    metadata: dict[str, Any] = field(default_factory=dict)
    webhook_url_override: str | None = None
    id: int | None = None
    created_at: str | None = None
    updated_at: str | None = None
    last_fetched_at: str | None = None


@dataclass(frozen=True)
class ConnectionSummary:
    """A connection without its secrets (credentials, connection_config): what listing needs, nothing decrypted."""

    id: int
    integration: str
    connection_id: str
    metadata: dict[str, Any]
    created_at: str
    updated_at: str


@dataclass
class ReencryptReport:
    """What `reencrypt` did: connections re-encrypted with the first key, and those it could not read."""

    reencrypted: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (integration, connection_id)


# Secret columns: stored encrypted (`fernet:...`) when a key is configured, JSON text otherwise.
_SECRET_COLUMNS = ("credentials", "connection_config")


class ConnectionStore:
    def __init__(self, engine: Engine, encryption_key: str | None = None) -> None:
        """`encryption_key`: one key or several, comma-separated (see store.encryption); default: the environment."""
        self.engine = engine
        self._keys = Keyring.from_setting(encryption_key)

    def upsert(self, connection: Connection) -> Connection:
        """Create the connection, or update an existing one with the same (integration, connection_id)."""
        now = to_iso(utcnow())
        values = {
            "credentials": self._keys.seal(json.dumps(connection.credentials)),
            "connection_config": self._keys.seal(json.dumps(connection.config)),
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

    def exists(self, integration: str, connection_id: str) -> bool:
        """Is there such a connection? Reads no secret, so a key problem does not hide it."""
        with self.engine.connect() as conn:
            found = conn.execute(select(connections.c.id).where(_identity(integration, connection_id))).first()
        return found is not None

    def list(self, integration: str | None = None, connection_id: str | None = None) -> list[Connection]:
        """Connections with their secrets; one whose secrets cannot be read is left out, with a warning naming it."""
        out = []
        with self.engine.connect() as conn:
            for row in conn.execute(_filtered(select(connections), integration, connection_id)):
                try:
                    out.append(self._from_row(row))
                except CredentialsError as error:
                    log.warning("connection %r of %r left out: %s", row.connection_id, row.integration, error)
        return out

    def summaries(self, integration: str | None = None, connection_id: str | None = None) -> list[ConnectionSummary]:
        """Connections without their secrets: nothing is decrypted, so one unreadable row cannot break the list."""
        names = ("id", "integration", "connection_id", "metadata", "created_at", "updated_at")
        columns = [connections.c[name] for name in names]
        with self.engine.connect() as conn:
            rows = conn.execute(_filtered(select(*columns), integration, connection_id)).all()
        return [ConnectionSummary(**{**row._mapping, "metadata": loads_stored(row.metadata)}) for row in rows]

    def check_encryption_key(self, sample: int = KEY_CHECK_SAMPLE) -> str | None:
        """Raise EncryptionKeyError when the configured keys read the secrets of none of the most recently written
        connections that have encrypted ones; return a warning when only some, or when secrets are not encrypted."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(*(connections.c[name] for name in _SECRET_COLUMNS))
                .order_by(connections.c.updated_at.desc())
                .limit(sample)
            ).all()
        sealed = [row for row in rows if any(is_sealed(value) for value in row)]
        unreadable = 0
        for row in sealed:
            try:
                for value in row:
                    self._keys.open(value)
            except CredentialsError as error:
                if not self._keys.enabled:
                    raise EncryptionKeyError(str(error)) from None
                unreadable += 1
        if sealed and unreadable == len(sealed):
            raise EncryptionKeyError(
                f"{ENCRYPTION_KEY_VARIABLE} decrypts the secrets of none of the {len(sealed)} most recently written "
                "connections: it is not the key they were encrypted with. To change keys, set it to "
                "'<new key>,<old key>' and run `sync-pipeline rotate-key`"
            )
        if unreadable:
            return (
                f"{ENCRYPTION_KEY_VARIABLE} cannot decrypt the secrets of {unreadable} of the {len(sealed)} most "
                "recently written connections: their syncs fail until the key they were encrypted with is added"
            )
        if self._keys.enabled and len(sealed) < len(rows):
            return (
                f"{len(rows) - len(sealed)} connections store their secrets in plain text although "
                f"{ENCRYPTION_KEY_VARIABLE} is set: run `sync-pipeline rotate-key` to encrypt them"
            )
        return None

    def reencrypt(self) -> ReencryptReport:
        """Encrypt every connection's secrets again with the first configured key (plain ones get encrypted).

        Connections are rewritten a chunk at a time, each in its own transaction; one whose secrets no key can
        read is left as it is and reported.
        """
        report = ReencryptReport()
        for chunk in self._chunks():
            updates = []
            for row in chunk:
                try:
                    updates.append((row.id, {name: self._keys.reseal(getattr(row, name)) for name in _SECRET_COLUMNS}))
                except CredentialsError:
                    report.unreadable.append((row.integration, row.connection_id))
            with self.engine.begin() as conn:
                for row_id, values in updates:
                    conn.execute(update(connections).where(connections.c.id == row_id).values(**values))
            report.reencrypted += len(updates)
        return report

    def _chunks(self) -> Iterator[list]:
        after = 0
        columns = [connections.c[name] for name in ("id", "integration", "connection_id", *_SECRET_COLUMNS)]
        while True:
            with self.engine.connect() as conn:
                chunk = conn.execute(
                    select(*columns).where(connections.c.id > after).order_by(connections.c.id).limit(REENCRYPT_CHUNK)
                ).all()
            if not chunk:
                return
            yield chunk
            after = chunk[-1].id

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
                new = {**loads_stored(current), **metadata} if merge else metadata
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

    def _from_row(self, row) -> Connection:
        """The connection with its secrets decrypted, or CredentialsError naming the connection and the key problem."""
        try:
            credentials, config = (loads_stored(self._keys.open(getattr(row, name))) for name in _SECRET_COLUMNS)
        except CredentialsError as error:
            raise CredentialsError(f"connection {row.connection_id!r} of {row.integration!r}: {error}") from None
        return Connection(
            id=row.id,
            integration=row.integration,
            connection_id=row.connection_id,
            credentials=credentials,
            config=config,
            metadata=loads_stored(row.metadata),
            webhook_url_override=row.webhook_url_override,
            created_at=row.created_at,
            updated_at=row.updated_at,
            last_fetched_at=row.last_fetched_at,
        )


def _identity(integration: str, connection_id: str):
    return (connections.c.integration == integration) & (connections.c.connection_id == connection_id)


def _filtered(statement, integration: str | None, connection_id: str | None):
    if integration is not None:
        statement = statement.where(connections.c.integration == integration)
    if connection_id is not None:
        statement = statement.where(connections.c.connection_id == connection_id)
    return statement.order_by(connections.c.id)
