"""The delivery log and delivery rules: idempotent enqueue, what is retried, backoff, giving up, the CLI table."""

from __future__ import annotations

from datetime import timedelta

from sync_pipeline.notifications.delivery import deliver_due, deliveries_table
from sync_pipeline.notifications.payloads import signature_headers
from sync_pipeline.store import DELIVERED, FAILED, MAX_DELIVERY_ATTEMPTS, PENDING, Attempt, from_iso, utcnow


def test_enqueue_is_idempotent_by_delivery_id(store):
    log = store.deliveries

    assert log.enqueue("m-1", "http://app/hooks", '{"a":1}') is True
    assert log.enqueue("m-1", "http://other/hooks", '{"a":2}') is False

    [delivery] = log.list()
    assert (delivery.url, delivery.body, delivery.status, delivery.attempts) == ("http://app/hooks", '{"a":1}', PENDING, 0)


def test_retryable_errors_back_off_exponentially_then_fail_and_stay_in_the_log(store):
    log = store.deliveries
    now = utcnow()
    log.enqueue("m-1", "http://app/hooks", "{}", now)
    gaps = []
    for _ in range(MAX_DELIVERY_ATTEMPTS - 1):
        assert log.record_attempt("m-1", Attempt(False, "HTTP 503", retryable=True), now) == PENDING
        gaps.append((from_iso(log.get("m-1").next_attempt_at) - now).total_seconds())

    assert gaps == [10, 20, 40, 80, 160, 320, 640]
    assert log.due(now, 10) == [] and len(log.due(now + timedelta(seconds=641), 10)) == 1
    assert log.record_attempt("m-1", Attempt(False, "HTTP 503", retryable=True), now) == FAILED
    assert [d.delivery_id for d in log.list(status=FAILED)] == ["m-1"]
    assert log.list(status=PENDING) == []


def test_a_client_error_fails_at_once(store, webhook_receiver):
    log = store.deliveries
    log.enqueue("m-1", webhook_receiver.url, "{}")
    webhook_receiver.fail_next(400)

    assert deliver_due(log, "key") == {DELIVERED: 0, PENDING: 0, FAILED: 1}
    assert log.get("m-1").last_error.startswith("HTTP 400")


def test_429_and_408_are_retried(store, webhook_receiver):
    log = store.deliveries
    log.enqueue("m-1", webhook_receiver.url, "{}")
    log.enqueue("m-2", webhook_receiver.url, "{}")
    webhook_receiver.fail_next(429)
    webhook_receiver.fail_next(408)

    assert deliver_due(log, "key") == {DELIVERED: 0, PENDING: 2, FAILED: 0}


def test_a_receivers_retry_after_is_honoured_when_longer_than_the_backoff(store, webhook_receiver):
    log = store.deliveries
    waits = {}
    for delivery_id, status, retry_after in [("slow", 503, "300"), ("fast", 429, "1"), ("far", 503, "86400")]:
        log.enqueue(delivery_id, webhook_receiver.url, "{}")
        webhook_receiver.fail_next(status, headers={"Retry-After": retry_after})
        before = utcnow()
        assert deliver_due(log, "key") == {DELIVERED: 0, PENDING: 1, FAILED: 0}
        waits[delivery_id] = (from_iso(log.get(delivery_id).next_attempt_at) - before).total_seconds()

    assert 300 <= waits["slow"] < 310  # asked for 300 s, more than the first backoff of 10 s
    assert 10 <= waits["fast"] < 20  # asked for 1 s: the backoff still applies
    assert 3600 <= waits["far"] < 3610  # asked for a day: capped at the longest backoff


def test_finished_deliveries_are_forgotten_after_a_week_failures_after_a_month(store):
    log = store.deliveries
    now = utcnow()
    finished = {
        "delivered-8-days-ago": (Attempt(True), 8),
        "delivered-yesterday": (Attempt(True), 1),
        "failed-8-days-ago": (Attempt(False, "HTTP 404"), 8),
        "failed-31-days-ago": (Attempt(False, "HTTP 404"), 31),
    }
    for delivery_id, (attempt, days_ago) in finished.items():
        log.enqueue(delivery_id, "http://app/hooks", "{}", now - timedelta(days=days_ago))
        log.record_attempt(delivery_id, attempt, now - timedelta(days=days_ago))
    log.enqueue("pending-40-days", "http://app/hooks", "{}", now - timedelta(days=40))

    assert log.prune(now) == 2

    assert sorted(d.delivery_id for d in log.list()) == ["delivered-yesterday", "failed-8-days-ago", "pending-40-days"]


def test_no_signing_key_sends_no_signature_headers():
    assert signature_headers(b"{}", None) == {}


def test_the_deliveries_table_lists_status_attempts_and_errors(store):
    log = store.deliveries
    log.enqueue("m-1", "http://app/hooks", "{}")
    log.record_attempt("m-1", Attempt(False, "HTTP 404: nope"), utcnow())

    table = deliveries_table(log.list(status="failed"))

    header, row = table.splitlines()
    assert header.split()[:4] == ["DELIVERY", "ID", "STATUS", "ATTEMPTS"]
    assert row.split()[:3] == ["m-1", "failed", "1"] and row.endswith("HTTP 404: nope")
    assert deliveries_table([]) == "no deliveries"
