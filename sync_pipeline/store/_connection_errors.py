"""What is wrong with each connection (failed credentials, failed sync runs), as `GET /connections` lists it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, and_, delete, select, tuple_

from sync_pipeline.store._database import dialect_insert, to_iso, utcnow
from sync_pipeline.store._schema import connection_errors

AUTH, SYNC = "auth", "sync"


@dataclass(frozen=True)
class ConnectionProblem:
    integration: str
    connection_id: str
    kind: str  # auth or sync
    subject: str  # "" for auth; the sync partition's id for sync
    message: str
    log_id: str
    created_at: str


class ConnectionErrorStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, integration: str, connection_id: str, kind: str, message: str, *, subject: str = "", log_id: str = "") -> None:
        """Set the error of (kind, subject), replacing an earlier one."""
        row = {
            "integration": integration, "connection_id": connection_id, "kind": kind, "subject": subject,
            "message": message, "log_id": log_id, "created_at": to_iso(utcnow()),
        }  # fmt: skip
        with self.engine.begin() as conn:
            conn.execute(delete(connection_errors).where(_key(integration, connection_id, kind, subject)))
            conn.execute(dialect_insert(conn, connection_errors).values(row).on_conflict_do_nothing())

    def clear(self, integration: str, connection_id: str, kind: str | None = None, *, subject: str | None = None) -> None:
        """Forget errors of the connection: all, of one kind, or of one (kind, subject)."""
        condition = and_(connection_errors.c.integration == integration, connection_errors.c.connection_id == connection_id)
        if kind is not None:
            condition = and_(condition, connection_errors.c.kind == kind)
        if subject is not None:
            condition = and_(condition, connection_errors.c.subject == subject)
        with self.engine.begin() as conn:
            conn.execute(delete(connection_errors).where(condition))

    def get(self, integration: str, connection_id: str, kind: str, subject: str = "") -> ConnectionProblem | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(connection_errors).where(_key(integration, connection_id, kind, subject))).first()
        return ConnectionProblem(**row._mapping) if row is not None else None

    def of(self, connections: list[tuple[str, str]]) -> dict[tuple[str, str], list[ConnectionProblem]]:
        """The errors of many (integration, connection_id) pairs, in one query per 500 pairs."""
        found: dict[tuple[str, str], list[ConnectionProblem]] = {pair: [] for pair in connections}
        pairs = list(found)
        with self.engine.connect() as conn:
            for start in range(0, len(pairs), 500):
                chunk = pairs[start : start + 500]
                statement = (
                    select(connection_errors)
                    .where(tuple_(connection_errors.c.integration, connection_errors.c.connection_id).in_(chunk))
                    .order_by(connection_errors.c.kind, connection_errors.c.subject)
                )
                for row in conn.execute(statement):
                    found[(row.integration, row.connection_id)].append(ConnectionProblem(**row._mapping))
        return found


def _key(integration: str, connection_id: str, kind: str, subject: str):
    return and_(
        connection_errors.c.integration == integration,
        connection_errors.c.connection_id == connection_id,
        connection_errors.c.kind == kind,
        connection_errors.c.subject == subject,
    )
