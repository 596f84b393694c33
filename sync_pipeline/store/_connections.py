"""Connections: an end user's account at one integration, with its credentials, config and metadata."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, delete, func, insert, or_, select, update

from sync_pipeline.json_input import loads_stored
from sync_pipeline.store._database import to_iso, utcnow
from sync_pipeline.store._encryption import ENCRYPTION_KEY_VARIABLE, EncryptionKeyError, is_sealed
from sync_pipeline.store._schema import connections
from sync_pipeline.store._sealing import CredentialsError, Sealer

__all__ = ["Connection", "ConnectionPage", "ConnectionStore", "ConnectionSummary", "CredentialsError", "ReencryptReport"]

log = logging.getLogger(__name__)
KEY_CHECK_SAMPLE = 100  # the most recently written connections whose secrets the start-up check decrypts
REENCRYPT_CHUNK = 500
# Secret columns: stored encrypted (`fernet:...`) when a key is configured, JSON text otherwise.
_SECRET_COLUMNS = ("credentials", "connection_config")


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
    tags: dict[str, str] | None = None  # None when importing: keep the stored tags
    end_user: dict[str, Any] | None = None
    credentials_version: int = 0


@dataclass(frozen=True)
class ConnectionPage:
    """Which connections to list: filters, then `limit` of them from page `page` (0-based), oldest first."""

    integrations: tuple[str, ...] = ()
    connection_id: str | None = None
    search: str | None = None  # part of the connection id, any case
    tags: tuple[tuple[str, str], ...] = ()  # every tag must match
    end_user_id: str | None = None
    end_user_organization_id: str | None = None
    limit: int | None = None
    page: int = 0


@dataclass(frozen=True)
class ConnectionSummary:
    """A connection without its secrets (credentials, connection_config): what listing needs, nothing decrypted."""

    id: int
    integration: str
    connection_id: str
    metadata: dict[str, Any]
    created_at: str
    updated_at: str
    tags: dict[str, str]
    end_user: dict[str, Any] | None


@dataclass
class ReencryptReport:
    """What `reencrypt` did: connections re-encrypted with the first key, and those it could not read."""

    reencrypted: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (integration, connection_id)


class ConnectionStore:
    def __init__(self, engine: Engine, encryption_key: str | None = None) -> None:
        """`encryption_key`: one key or several, comma-separated (see store._encryption); default: the environment."""
        self.engine = engine
        self._sealer = Sealer(encryption_key)
        self._keys = self._sealer.keys

    def upsert(self, connection: Connection) -> Connection:
        """Create the connection, or update an existing one with the same (integration, connection_id).

        New credentials get a new version, so a refresh that read the old ones does not overwrite them.
        """
        now = to_iso(utcnow())
        values = {
            "credentials": self._sealer.seal(connection.credentials),
            "connection_config": self._sealer.seal(connection.config),
            "metadata": json.dumps(connection.metadata),
            "webhook_url_override": connection.webhook_url_override,
            "updated_at": now,
        }
        if connection.tags is not None:
            values["tags"] = connection.tags
        if connection.end_user is not None:
            values["end_user"] = connection.end_user
        with self.engine.begin() as conn:
            existing = conn.execute(select(connections.c.id).where(_identity(connection.integration, connection.connection_id))).scalar()
            if existing is None:
                conn.execute(
                    insert(connections).values(
                        integration=connection.integration,
                        connection_id=connection.connection_id,
                        created_at=now,
                        **{"tags": {}, **values},
                    )
                )
            else:
                conn.execute(
                    update(connections)
                    .where(connections.c.id == existing)
                    .values(credentials_version=connections.c.credentials_version + 1, **values)
                )
        stored = self.get(connection.integration, connection.connection_id)
        assert stored is not None
        return stored

    def get(self, integration: str, connection_id: str) -> Connection | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(connections).where(_identity(integration, connection_id))).first()
        return self._from_row(row) if row is not None else None

    def exists(self, integration: str, connection_id: str) -> bool:
        """Is there such a connection? Reads no secret, so a key problem does not hide it."""
        with self.engine.connect() as conn:
            found = conn.execute(select(connections.c.id).where(_identity(integration, connection_id))).first()
        return found is not None

    def list(self, integration: str | None = None, connection_id: str | None = None) -> list[Connection]:
        return self.page(ConnectionPage(integrations=(integration,) if integration else (), connection_id=connection_id))

    def page(self, query: ConnectionPage) -> list[Connection]:
        """The connections matching `query`, oldest first, one page of them, with their secrets; one whose secrets
        cannot be read is left out, with a warning naming it."""
        out = []
        with self.engine.connect() as conn:
            for row in conn.execute(_paged(select(connections), query)):
                try:
                    out.append(self._from_row(row))
                except CredentialsError as error:
                    log.warning("%s: left out", error)
        return out

    def summaries(self, query: ConnectionPage = ConnectionPage()) -> list[ConnectionSummary]:
        """`page` without the secrets: nothing is decrypted, so one unreadable row cannot break a listing."""
        names = ("id", "integration", "connection_id", "metadata", "created_at", "updated_at", "tags", "end_user")
        with self.engine.connect() as conn:
            rows = conn.execute(_paged(select(*(connections.c[name] for name in names)), query)).all()
        return [
            ConnectionSummary(**{**row._mapping, "metadata": loads_stored(row.metadata), "tags": row.tags or {}})
            for row in rows
        ]

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
        read is left as it is and reported. The credentials version is kept: the secrets did not change.
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

    def set_profile(
        self,
        integration: str,
        connection_id: str,
        *,
        tags: dict[str, str] | None = None,
        end_user: dict[str, Any] | None = None,
        webhook_url_override: str | None = None,
    ) -> bool:
        """Change the given ones of tags, end user and webhook URL override; False if there is no such connection."""
        values: dict[str, Any] = {"updated_at": to_iso(utcnow())}
        if tags is not None:
            values["tags"] = tags
        if end_user is not None:
            values["end_user"] = end_user
        if webhook_url_override is not None:
            values["webhook_url_override"] = webhook_url_override
        with self.engine.begin() as conn:
            result = conn.execute(update(connections).where(_identity(integration, connection_id)).values(**values))
        return result.rowcount > 0

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

    # -- token refresh: a lease per connection, and a save over the version read -------------------

    def try_lease(self, integration: str, connection_id: str, owner: str, now: datetime, until: datetime) -> bool:
        """Take the connection's refresh lease unless another owner holds an unexpired one.

        One conditional UPDATE: atomic on SQLite and PostgreSQL alike, and no transaction stays open
        while the token endpoint answers. A crashed holder's lease expires at `until`.
        """
        free = or_(
            connections.c.refresh_owner.is_(None),
            connections.c.refresh_owner == owner,
            connections.c.refresh_until < to_iso(now),
        )
        with self.engine.begin() as conn:
            result = conn.execute(
                update(connections)
                .where(_identity(integration, connection_id), free)
                .values(refresh_owner=owner, refresh_until=to_iso(until))
            )
        return result.rowcount > 0

    def release_lease(self, integration: str, connection_id: str, owner: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(connections)
                .where(_identity(integration, connection_id), connections.c.refresh_owner == owner)
                .values(refresh_owner=None, refresh_until=None)
            )

    def save_refreshed(
        self, connection: Connection, credentials: dict[str, Any], config: dict[str, Any], owner: str
    ) -> Connection | None:
        """Save refreshed credentials (and config) over the version `connection` was read at, releasing the
        lease; None (nothing saved) when the credentials changed since, e.g. re-imported by the app."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(connections)
                .where(
                    _identity(connection.integration, connection.connection_id),
                    connections.c.credentials_version == connection.credentials_version,
                )
                .values(
                    credentials=self._sealer.seal(credentials),
                    connection_config=self._sealer.seal(config),
                    credentials_version=connections.c.credentials_version + 1,
                    refresh_owner=None,
                    refresh_until=None,
                    updated_at=to_iso(utcnow()),
                )
            )
        if result.rowcount == 0:
            self.release_lease(connection.integration, connection.connection_id, owner)
            return None
        return self.get(connection.integration, connection.connection_id)

    def _from_row(self, row) -> Connection:
        """The connection with its secrets decrypted, or CredentialsError naming the connection and the key problem."""
        try:
            credentials, config = (self._sealer.open(getattr(row, name)) for name in _SECRET_COLUMNS)
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
            tags=row.tags or {},
            end_user=row.end_user,
            credentials_version=row.credentials_version,
        )


def _identity(integration: str, connection_id: str):
    return and_(connections.c.integration == integration, connections.c.connection_id == connection_id)


def _paged(statement, query: ConnectionPage):
    statement = statement.order_by(connections.c.id)
    for condition in _filters(query):
        statement = statement.where(condition)
    if query.limit is not None:
        statement = statement.limit(query.limit).offset(query.page * query.limit)
    return statement


def _filters(query: ConnectionPage) -> list:
    conditions = []
    if query.integrations:
        conditions.append(connections.c.integration.in_(query.integrations))
    if query.connection_id is not None:
        conditions.append(connections.c.connection_id == query.connection_id)
    if query.search:
        escaped = query.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(func.lower(connections.c.connection_id).like(f"%{escaped.lower()}%", escape="\\"))
    for key, value in query.tags:
        conditions.append(connections.c.tags[key].as_string() == value)
    if query.end_user_id is not None:
        conditions.append(connections.c.end_user["id"].as_string() == query.end_user_id)
    if query.end_user_organization_id is not None:
        conditions.append(connections.c.end_user["organization"]["id"].as_string() == query.end_user_organization_id)
    return conditions
