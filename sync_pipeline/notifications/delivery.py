"""Delivering change webhooks: signed POSTs, concurrent across partitions and in order within one, retried
with backoff (or later, when the receiver's Retry-After asks for longer), each recorded in the store's delivery log."""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import httpx

from sync_pipeline.destinations import RefusedDestination, check_url, guarded_client
from sync_pipeline.notifications.payloads import signature_headers
from sync_pipeline.sdk.http import server_wait
from sync_pipeline.settings import private_webhook_urls_allowed
from sync_pipeline.store import DELIVERED, FAILED, PENDING, Attempt, Delivery, DeliveryLog, utcnow

DELIVERY_ID_HEADER = "X-Sync-Pipeline-Delivery-Id"
TIMEOUT = httpx.Timeout(5.0, connect=2.0)
WORKERS = 16
RETRYABLE_STATUSES = {408, 429}
ERROR_TEXT_LIMIT = 500

log = logging.getLogger(__name__)


def post(client: httpx.Client, delivery: Delivery, signing_key: str | None, *, allow_private: bool = True) -> Attempt:
    """POST one delivery's body, signed; never raises. A destination sync_pipeline.destinations refuses fails at once."""
    try:
        check_url(delivery.url, allow_private=allow_private)
    except RefusedDestination as error:
        return Attempt(False, str(error)[:ERROR_TEXT_LIMIT], retryable=False)
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
    trusted_url: str | Collection[str] | None = None,
    now: datetime | None = None,
    budget_seconds: float = 30.0,
    limit: int = 5000,
) -> dict[str, int]:
    """Attempt every due delivery concurrently (a dead receiver only holds one worker); counts per new status.

    Each round sends the first pending delivery of every partition; once one is delivered, the next of its
    partition is due in the following round, so a backlog drains in order within the call. Deliveries not
    started within `budget_seconds` stay due for the next call. Only `trusted_url` (the operator's
    SYNC_PIPELINE_WEBHOOK_URL; a collection of URLs: the secondary one too) may reach a private address,
    unless they are allowed for all URLs.
    """
    now = now or utcnow()
    counts = {DELIVERED: 0, PENDING: 0, FAILED: 0}
    deadline = time.monotonic() + budget_seconds
    tried: set[str] = set()
    options = {"timeout": TIMEOUT, "follow_redirects": False}
    with guarded_client(allow_private=True, **options) as private_client, \
            guarded_client(allow_private=False, **options) as public_client:
        senders = _Senders(private_client, public_client, trusted_url, private_webhook_urls_allowed())
        while time.monotonic() < deadline:
            due = [delivery for delivery in log_.due(now, limit) if delivery.delivery_id not in tried]
            if not due:
                break
            tried.update(delivery.delivery_id for delivery in due)
            round_counts = _deliver_round(log_, senders, due, signing_key, now, deadline)
            for status, n in round_counts.items():
                counts[status] += n
            if not round_counts[DELIVERED]:
                break  # nothing new became due
    return counts


class _Senders:
    """Which guarded client posts a delivery: the private-capable one only for a trusted URL."""

    def __init__(
        self, private: httpx.Client, public: httpx.Client, trusted_url: str | Collection[str] | None, allow_private: bool
    ) -> None:
        trusted = {trusted_url} if isinstance(trusted_url, str) else set(trusted_url or ())
        self.private, self.public, self.trusted_urls, self.allow_private = private, public, trusted, allow_private

    def post(self, delivery: Delivery, signing_key: str | None) -> Attempt:
        trusted = self.allow_private or delivery.url in self.trusted_urls
        return post(self.private if trusted else self.public, delivery, signing_key, allow_private=trusted)


def _deliver_round(
    log_: DeliveryLog, senders: _Senders, due: list[Delivery], signing_key: str | None, now: datetime, deadline: float
) -> dict[str, int]:
    """One concurrent attempt of each of `due`; counts per new status."""
    counts = {DELIVERED: 0, PENDING: 0, FAILED: 0}

    def attempt(delivery: Delivery) -> tuple[Delivery, Attempt] | None:
        if time.monotonic() > deadline:
            return None  # left due for the next call
        outcome = senders.post(delivery, signing_key)
        if not outcome.delivered:
            log.warning(
                "webhook delivery %s to %s failed: %s", delivery.delivery_id, _host(delivery.url), outcome.error
            )
        return delivery, outcome

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
