"""The delivery log (`sp_webhook_deliveries`): each change webhook to the app, until delivered or given up;
those of one sync partition in the order of their events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, bindparam, delete, exists, select, update

from sync_pipeline.store._database import dialect_insert, to_iso, utcnow
from sync_pipeline.store._schema import deliveries

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
MAX_DELIVERY_ATTEMPTS = 8
BACKOFF_SECONDS = 10
MAX_BACKOFF_SECONDS = 3600
INSERT_CHUNK = 500
KEEP_DELIVERED = timedelta(days=7)
KEEP_FAILED = timedelta(days=30)  # longer: a failure is what someone comes to look at
PRUNE_CHUNK = 10_000


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    url: str
    status: str
    attempts: int
    next_attempt_at: str
    last_error: str | None
    created_at: str
    updated_at: str
    body: str
    partition_id: str | None = None  # deliveries of one sync partition go out in event_seq order
    event_seq: int | None = None


@dataclass(frozen=True)
class Attempt:
    """The outcome of one POST: delivered, or an error that may be retried."""

    delivered: bool
    error: str | None = None
    retryable: bool = False
    retry_after: float | None = None  # seconds the receiver asked for (Retry-After), if it did


class DeliveryLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def enqueue(self, delivery_id: str, url: str, body: str, now: datetime | None = None) -> bool:
        """Add a pending delivery, due at once; False (and nothing changed) when the id is already logged."""
        return self.enqueue_many([(delivery_id, url, body)], now) == 1

    def enqueue_many(self, items: list[tuple], now: datetime | None = None) -> int:
        """`enqueue` for many (delivery_id, url, body[, partition_id, event_seq]) in one statement; returns
        how many were new. Deliveries with a partition id go out in event_seq order within it."""
        if not items:
            return 0
        stamp = to_iso(now or utcnow())
        rows = [
            {"delivery_id": delivery_id, "url": url, "body": body, "status": PENDING, "attempts": 0,
             "next_attempt_at": stamp, "created_at": stamp, "updated_at": stamp,
             "partition_id": order[0] if order else None, "event_seq": order[1] if order else None}
            for delivery_id, url, body, *order in items
        ]  # fmt: skip
        added = 0
        with self.engine.begin() as conn:
            for start in range(0, len(rows), INSERT_CHUNK):  # SQLite caps the bound parameters of one statement
                statement = dialect_insert(conn, deliveries).values(rows[start : start + INSERT_CHUNK])
                added += conn.execute(statement.on_conflict_do_nothing()).rowcount
        return added

    def due(self, now: datetime, limit: int = 1000) -> list[Delivery]:
        """Pending deliveries whose next attempt has come and that wait for no earlier pending one of their
        partition, the oldest first."""
        earlier = deliveries.alias("earlier")
        waits = exists().where(  # found through the (status, partition_id, event_seq) index
            earlier.c.status == PENDING,
            earlier.c.partition_id == deliveries.c.partition_id,
            earlier.c.event_seq < deliveries.c.event_seq,
        )
        statement = (
            select(deliveries)
            .where(deliveries.c.status == PENDING, deliveries.c.next_attempt_at <= to_iso(now), ~waits)
            .order_by(deliveries.c.next_attempt_at, deliveries.c.delivery_id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [Delivery(**row._mapping) for row in conn.execute(statement)]

    def record_attempt(
        self, delivery_id: str, attempt: Attempt, now: datetime, *, max_attempts: int = MAX_DELIVERY_ATTEMPTS
    ) -> str:
        """Count an attempt; returns the new status (retryable errors stay pending, backing off, until the last)."""
        with self.engine.begin() as conn:
            attempts = conn.execute(
                select(deliveries.c.attempts).where(deliveries.c.delivery_id == delivery_id)
            ).scalar_one()
            values = _after_attempt(attempts + 1, attempt, now, max_attempts)
            conn.execute(update(deliveries).where(deliveries.c.delivery_id == delivery_id).values(**values))
        return values["status"]

    def record_attempts(
        self, outcomes: list[tuple[Delivery, Attempt]], now: datetime, *, max_attempts: int = MAX_DELIVERY_ATTEMPTS
    ) -> list[str]:
        """`record_attempt` for many deliveries read by `due` in this tick (their attempt counts), in one statement."""
        rows = [
            {"key": delivery.delivery_id, **_after_attempt(delivery.attempts + 1, attempt, now, max_attempts)}
            for delivery, attempt in outcomes
        ]
        if rows:
            # Bound names must differ from the column names an UPDATE's SET clause binds itself.
            statement = (
                update(deliveries)
                .where(deliveries.c.delivery_id == bindparam("key"))
                .values({name: bindparam("new_" + name) for name in rows[0] if name != "key"})
            )
            bound = [{("new_" + k if k != "key" else k): v for k, v in row.items()} for row in rows]
            with self.engine.begin() as conn:
                conn.execute(statement, bound)
        return [row["status"] for row in rows]

    def prune(self, now: datetime) -> int:
        """Forget finished deliveries: delivered ones after 7 days, failed ones after 30; pending ones never.

        At most `PRUNE_CHUNK` of each per call, so a first prune of a long log does not hold a tick.
        """
        removed = 0
        with self.engine.begin() as conn:
            for status, keep in ((DELIVERED, KEEP_DELIVERED), (FAILED, KEEP_FAILED)):
                # A finished delivery's next_attempt_at is when it finished (see _after_attempt): the
                # (status, next_attempt_at) index finds the old ones.
                old = (
                    select(deliveries.c.delivery_id)
                    .where(deliveries.c.status == status, deliveries.c.next_attempt_at < to_iso(now - keep))
                    .limit(PRUNE_CHUNK)
                )
                removed += conn.execute(delete(deliveries).where(deliveries.c.delivery_id.in_(old))).rowcount
        return removed

    def get(self, delivery_id: str) -> Delivery | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(deliveries).where(deliveries.c.delivery_id == delivery_id)).first()
        return Delivery(**row._mapping) if row is not None else None

    def retry(self, delivery_id: str, now: datetime | None = None) -> Delivery | None:
        """Make a failed or pending delivery due now with a fresh series of attempts; None if it is unknown.

        A delivered one is left as it is (returned unchanged): sending it again is the receiver's business.
        """
        stamp = to_iso(now or utcnow())
        with self.engine.begin() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.delivery_id == delivery_id, deliveries.c.status != DELIVERED)
                .values(status=PENDING, attempts=0, next_attempt_at=stamp, updated_at=stamp)
            )
        return self.get(delivery_id)

    def list(self, status: str | None = None, limit: int = 100) -> list[Delivery]:
        """Deliveries, the newest first, optionally of one status."""
        statement = select(deliveries).order_by(deliveries.c.created_at.desc(), deliveries.c.delivery_id.desc())
        if status is not None:
            statement = statement.where(deliveries.c.status == status)
        with self.engine.connect() as conn:
            return [Delivery(**row._mapping) for row in conn.execute(statement.limit(limit))]


def _after_attempt(attempts: int, attempt: Attempt, now: datetime, max_attempts: int) -> dict:
    if attempt.delivered:
        status, next_at = DELIVERED, now
    elif attempt.retryable and attempts < max_attempts:
        status, next_at = PENDING, now + max(backoff(attempts), _asked_wait(attempt))
    else:
        status, next_at = FAILED, now
    return {
        "status": status,
        "attempts": attempts,
        "next_attempt_at": to_iso(next_at),
        "last_error": attempt.error,
        "updated_at": to_iso(now),
    }


def _asked_wait(attempt: Attempt) -> timedelta:
    """A receiver's Retry-After, honoured up to the longest backoff so a far date cannot park a delivery."""
    return timedelta(seconds=min(attempt.retry_after or 0.0, MAX_BACKOFF_SECONDS))


def backoff(attempts: int) -> timedelta:
    """10 s after the first failed attempt, doubling, capped."""
    return timedelta(seconds=min(BACKOFF_SECONDS * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS))
