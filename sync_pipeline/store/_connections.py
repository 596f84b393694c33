"""Connections: an end user's account at one integration, with its credentials, config and metadata."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, delete, func, insert, or_, select, update

from sync_pipeline.store._database import to_iso, utcnow
from sync_pipeline.store._schema import connections
from sync_pipeline.store._sealing import CredentialsError, Sealer

__all__ = ["Connection", "ConnectionPage", "ConnectionStore", "CredentialsError"]


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


class ConnectionStore:
    def __init__(self, engine: Engine, encryption_key: str | None = None) -> None:
        self.engine = engine
        self._sealer = Sealer(encryption_key)

    def upsert(self, connection: Connection) -> Connection:
        """Create the connection, or update an existing one with the same (integration, connection_id).

        New credentials get a new version, so a refresh that read the old ones does not overwrite them.
        """
        now = to_iso(utcnow())
        values = {
            "credentials": self._sealer.seal(connection.credentials),
            "connection_config": json.dumps(connection.config),
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

    def list(self, integration: str | None = None, connection_id: str | None = None) -> list[Connection]:
        return self.page(ConnectionPage(integrations=(integration,) if integration else (), connection_id=connection_id))

    def page(self, query: ConnectionPage) -> list[Connection]:
        """The connections matching `query`, oldest first, one page of them."""
        statement = select(connections).order_by(connections.c.id)
        for condition in _filters(query):
            statement = statement.where(condition)
        if query.limit is not None:
            statement = statement.limit(query.limit).offset(query.page * query.limit)
        with self.engine.connect() as conn:
            return [self._from_row(row) for row in conn.execute(statement)]

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
                    connection_config=json.dumps(config),
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
        return Connection(
            id=row.id,
            integration=row.integration,
            connection_id=row.connection_id,
            credentials=self._sealer.open(row.credentials),
            config=json.loads(row.connection_config),
            metadata=json.loads(row.metadata),
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
