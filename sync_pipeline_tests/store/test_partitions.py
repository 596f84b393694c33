"""Schedule state of partitions: what is due, and triggers that must not be lost."""

from __future__ import annotations

from datetime import timedelta

from sync_pipeline.store import utcnow

KEY = "conn-1::base"


def test_a_trigger_arriving_while_a_run_is_requested_stays_pending(store):
    now = utcnow()
    store.partitions.ensure("acme", "contacts", "conn-1", "base", now, due_now=False)
    store.partitions.trigger("acme", "contacts", KEY, "incremental", now)
    [seen] = store.partitions.due(now)

    store.partitions.trigger("acme", "contacts", KEY, "full_refresh", now + timedelta(seconds=1))
    store.partitions.mark_requested(seen, now + timedelta(hours=1))

    [still_due] = store.partitions.due(now + timedelta(seconds=2))
    assert still_due.trigger_mode == "full_refresh"


def test_a_requested_run_clears_its_trigger_and_schedules_the_next(store):
    now = utcnow()
    store.partitions.ensure("acme", "contacts", "conn-1", "base", now, due_now=True)
    store.partitions.trigger("acme", "contacts", KEY, "incremental", now)
    [seen] = store.partitions.due(now)

    store.partitions.mark_requested(seen, now + timedelta(hours=1))

    assert store.partitions.due(now + timedelta(minutes=59)) == []
    assert [row.partition_key for row in store.partitions.due(now + timedelta(hours=1))] == [KEY]


def test_paused_partitions_are_not_due_but_a_trigger_still_is(store):
    now = utcnow()
    store.partitions.ensure("acme", "contacts", "conn-1", "base", now, due_now=True)
    store.partitions.set_paused("acme", "contacts", KEY, True, now)
    assert store.partitions.due(now) == []

    store.partitions.trigger("acme", "contacts", KEY, "full_refresh", now)
    assert [row.trigger_mode for row in store.partitions.due(now)] == ["full_refresh"]


def test_concurrent_variant_creations_never_pass_the_cap(store):
    from concurrent.futures import ThreadPoolExecutor

    from sync_pipeline.store import Connection
    from sync_pipeline.store import PARTITION_ADDED as ADDED, PARTITION_CAPPED as CAPPED

    store.connections.upsert(Connection("acme", "conn-1"))
    now = utcnow()
    for n in range(96):  # the base variant and 95 more
        store.partitions.ensure("acme", "directory", "conn-1", f"v{n}" if n else "base", now, due_now=False, cap=100)

    def create(n: int) -> str:
        return store.partitions.ensure("acme", "directory", "conn-1", f"late{n}", now, due_now=False, cap=100)

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(create, range(10)))

    assert sorted(outcomes) == [ADDED] * 4 + [CAPPED] * 6
    assert len(store.partitions.list("acme", "directory", "conn-1")) == 100
