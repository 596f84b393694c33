"""OAuth client credentials of each integration (client id and secret, or a GitHub App's id and key), sealed at rest."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select, update

from sync_pipeline.store._database import dialect_insert, to_iso, utcnow
from sync_pipeline.store._schema import integration_credentials
from sync_pipeline.store._sealing import Sealer


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
