"""The delivery log (`sp_webhook_deliveries`) and delivery: signed POSTs, concurrent, retried with backoff
(or later, when the receiver's Retry-After asks for longer)."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import Engine, bindparam, delete, select, update

from sync_pipeline.sdk.http import server_wait
from sync_pipeline.store import to_iso, utcnow
from sync_pipeline.store.database import dialect_insert
from sync_pipeline.store.schema import deliveries
from sync_pipeline.webhooks.payloads import signature_headers

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
DELIVERY_ID_HEADER = "X-Sync-Pipeline-Delivery-Id"
MAX_ATTEMPTS = 8
BACKOFF_SECONDS = 10
MAX_BACKOFF_SECONDS = 3600
TIMEOUT = httpx.Timeout(5.0, connect=2.0)
WORKERS = 16
RETRYABLE_STATUSES = {408, 429}
ERROR_TEXT_LIMIT = 500
INSERT_CHUNK = 500
KEEP_DELIVERED = timedelta(days=7)
KEEP_FAILED = timedelta(days=30)  # longer: a failure is what someone comes to look at
PRUNE_CHUNK = 10_000

log = logging.getLogger(__name__)


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

    def enqueue_many(self, items: list[tuple[str, str, str]], now: datetime | None = None) -> int:
        """`enqueue` for many (delivery_id, url, body) in one statement; returns how many were new."""
        if not items:
            return 0
        stamp = to_iso(now or utcnow())
        rows = [
            {"delivery_id": delivery_id, "url": url, "body": body, "status": PENDING, "attempts": 0,
             "next_attempt_at": stamp, "created_at": stamp, "updated_at": stamp}
            for delivery_id, url, body in items
        ]  # fmt: skip
        added = 0
        with self.engine.begin() as conn:
            for start in range(0, len(rows), INSERT_CHUNK):  # SQLite caps the bound parameters of one statement
                statement = dialect_insert(conn, deliveries).values(rows[start : start + INSERT_CHUNK])
                added += conn.execute(statement.on_conflict_do_nothing()).rowcount
        return added

    def due(self, now: datetime, limit: int = 1000) -> list[Delivery]:
        """Pending deliveries whose next attempt has come, the oldest first."""
        statement = (
            select(deliveries)
            .where(deliveries.c.status == PENDING, deliveries.c.next_attempt_at <= to_iso(now))
            .order_by(deliveries.c.next_attempt_at, deliveries.c.delivery_id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [Delivery(**row._mapping) for row in conn.execute(statement)]

    def record_attempt(
        self, delivery_id: str, attempt: Attempt, now: datetime, *, max_attempts: int = MAX_ATTEMPTS
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
        self, outcomes: list[tuple[Delivery, Attempt]], now: datetime, *, max_attempts: int = MAX_ATTEMPTS
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


def post(client: httpx.Client, delivery: Delivery, signing_key: str | None) -> Attempt:
    """POST one delivery's body, signed; never raises."""
    body = delivery.body.encode()
    headers = {
        "Content-Type": "application/json",
        DELIVERY_ID_HEADER: delivery.delivery_id,
        **signature_headers(body, signing_key),
    }
    try:
        response = client.post(delivery.url, content=body, headers=headers)
    except httpx.TransportError as error:  # timeouts, refused connections, resets
        return Attempt(False, f"{type(error).__name__}: {error}"[:ERROR_TEXT_LIMIT], retryable=True)
    if response.is_success:
        return Attempt(True)
    retryable = response.status_code >= 500 or response.status_code in RETRYABLE_STATUSES
    return Attempt(
        False,
        f"HTTP {response.status_code}: {response.text[:200]}",
        retryable=retryable,
        retry_after=server_wait(response) if retryable else None,
    )


def deliver_due(
    log_: DeliveryLog,
    signing_key: str | None,
    *,
    now: datetime | None = None,
    budget_seconds: float = 30.0,
    limit: int = 5000,
) -> dict[str, int]:
    """Attempt every due delivery concurrently (a dead receiver only holds one worker); counts per new status.

    Deliveries not started within `budget_seconds` stay due for the next call.
    """
    now = now or utcnow()
    due = log_.due(now, limit)
    counts = {DELIVERED: 0, PENDING: 0, FAILED: 0}
    if not due:
        return counts
    deadline = time.monotonic() + budget_seconds

    def attempt(delivery: Delivery) -> tuple[Delivery, Attempt] | None:
        if time.monotonic() > deadline:
            return None  # left due for the next call
        outcome = post(client, delivery, signing_key)
        if not outcome.delivered:
            log.warning(
                "webhook delivery %s to %s failed: %s", delivery.delivery_id, _host(delivery.url), outcome.error
            )
        return delivery, outcome

    with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as client:
        with ThreadPoolExecutor(max_workers=min(WORKERS, len(due))) as pool:
            outcomes = [outcome for outcome in pool.map(attempt, due) if outcome is not None]
    # Backoff counts from when the attempts ended, not from the tick's start (or a later `now` given by a test).
    for status in log_.record_attempts(outcomes, max(now, utcnow())):
        counts[status] += 1
    return counts


def _host(url: str) -> str:
    """Where a delivery went, for logs: a webhook URL may carry a token in its path or query."""
    try:
        return httpx.URL(url).host or "?"
    except httpx.InvalidURL:
        return "?"


def deliveries_table(rows: list[Delivery]) -> str:
    """A plain-text table of deliveries for `sync-pipeline deliveries` (bodies left out; they can be large)."""
    if not rows:
        return "no deliveries"
    header = ("DELIVERY ID", "STATUS", "ATTEMPTS", "NEXT ATTEMPT", "CREATED", "URL", "LAST ERROR")
    lines = [
        (
            r.delivery_id,
            r.status,
            str(r.attempts),
            r.next_attempt_at if r.status == PENDING else "-",
            r.created_at,
            r.url,
            r.last_error or "",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line[:-1], widths)) + "  " + line[-1].replace("\n", " ")
        for line in [header, *lines]
    )
