"""OAuth client credentials of each integration (client id and secret, or a GitHub App's id and key), sealed at rest."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select, update

from sync_pipeline.store._database import dialect_insert, to_iso, utcnow
from sync_pipeline.store._schema import integration_credentials
from sync_pipeline.store._sealing import CredentialsError, Sealer


@dataclass
class IntegrationCredentials:
    integration: str
    credentials: dict[str, Any] = field(repr=False)  # never in logs or reprs
    created_at: str
    updated_at: str


class IntegrationCredentialsStore:
    def __init__(self, engine: Engine, encryption_key: str | None = None) -> None:
        self.engine = engine
        self._sealer = Sealer(encryption_key)

    def put(self, integration: str, credentials: dict[str, Any]) -> IntegrationCredentials:
        """Set (or replace) an integration's client credentials."""
        now = to_iso(utcnow())
        sealed = self._sealer.seal(credentials)
        with self.engine.begin() as conn:
            statement = dialect_insert(conn, integration_credentials).values(
                integration=integration, credentials=sealed, created_at=now, updated_at=now
            )
            if not conn.execute(statement.on_conflict_do_nothing()).rowcount:
                conn.execute(
                    update(integration_credentials)
                    .where(integration_credentials.c.integration == integration)
                    .values(credentials=sealed, updated_at=now)
                )
        found = self.get(integration)
        assert found is not None
        return found

    def get(self, integration: str) -> IntegrationCredentials | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(integration_credentials).where(integration_credentials.c.integration == integration)
            ).first()
        if row is None:
            return None
        return IntegrationCredentials(row.integration, self._sealer.open(row.credentials), row.created_at, row.updated_at)

    def reencrypt(self) -> tuple[int, list[str]]:
        """Encrypt every integration's client credentials again with the first configured key; returns how many
        were, and the integrations whose credentials no configured key reads (left as they were)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(integration_credentials.c.integration, integration_credentials.c.credentials)).all()
        done, unreadable = 0, []
        for integration, stored in rows:  # one row per integration: a handful
            try:
                sealed = self._sealer.keys.reseal(stored)
            except CredentialsError:
                unreadable.append(integration)
                continue
            with self.engine.begin() as conn:
                conn.execute(
                    update(integration_credentials)
                    .where(integration_credentials.c.integration == integration)
                    .values(credentials=sealed)
                )
            done += 1
        return done, unreadable
