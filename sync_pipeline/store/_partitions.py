"""Schedule state of each sync partition (connection x variant): creation time, pause, frequency, triggers,
and the retries of a partition whose runs failed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, delete, func, or_, select, update

from sync_pipeline.keys import make_partition_key
from sync_pipeline.store._database import dialect_insert, from_iso, to_iso, utcnow
from sync_pipeline.store._schema import connections, partitions, run_progress
from sync_pipeline.vocabulary import BASE_VARIANT, MODE_CLEAR_CACHE, MODE_FULL_REFRESH, MODE_INCREMENTAL

PARTITION_ADDED, PARTITION_EXISTS, PARTITION_CAPPED = "added", "exists", "capped"


@dataclass(frozen=True)
class PartitionRow:
    integration: str
    sync_name: str
    partition_key: str
    connection_id: str
    variant: str
    created_at: str
    paused: bool
    frequency_seconds: int | None
    next_due_at: str | None
    trigger_mode: str | None
    triggered_at: str | None
    failures: int = 0  # consecutive failed runs
    failed_at: str | None = None
    retry_at: str | None = None
    retry_mode: str | None = None
    frequency_cron: str | None = None  # the partition's own frequency as a cron expression (UTC)


@dataclass(frozen=True)
class RunProgress:
    """A partition's unfinished run: the generation and start time it keeps across attempts, and its checkpoint."""

    generation: str
    started_at: datetime
    checkpoint: dict[str, Any] | None


class PartitionStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def ensure(
        self,
        integration: str,
        sync_name: str,
        connection_id: str,
        variant: str,
        now: datetime,
        *,
        due_now: bool,
        cap: int | None = None,
    ) -> str:
        """Record a partition's creation: PARTITION_ADDED, PARTITION_EXISTS (idempotent), or PARTITION_CAPPED when the connection
        already has `cap` partitions of this sync. `due_now` schedules its first run at once."""
        key = make_partition_key(connection_id, variant)
        with self.engine.begin() as conn:
            if cap is not None:
                # Lock the connection's row first, so concurrent creations are counted one after another.
                conn.execute(
                    update(connections)
                    .where(connections.c.integration == integration, connections.c.connection_id == connection_id)
                    .values(updated_at=connections.c.updated_at)
                )
                if conn.execute(select(partitions.c.variant).where(_identity(integration, sync_name, key))).first():
                    return PARTITION_EXISTS
                count = conn.execute(
                    select(func.count()).where(
                        partitions.c.integration == integration,
                        partitions.c.sync_name == sync_name,
                        partitions.c.connection_id == connection_id,
                    )
                ).scalar_one()
                if count >= cap:
                    return PARTITION_CAPPED
            statement = dialect_insert(conn, partitions).values(
                integration=integration,
                sync_name=sync_name,
                partition_key=key,
                connection_id=connection_id,
                variant=variant,
                created_at=to_iso(now),
                paused=False,
                next_due_at=to_iso(now) if due_now else None,
            )
            return PARTITION_ADDED if conn.execute(statement.on_conflict_do_nothing()).rowcount else PARTITION_EXISTS

    def get(self, integration: str, sync_name: str, key: str) -> PartitionRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(partitions).where(_identity(integration, sync_name, key))).first()
        return PartitionRow(**row._mapping) if row is not None else None

    def list(
        self, integration: str, sync_name: str | None = None, connection_id: str | None = None
    ) -> list[PartitionRow]:
        statement = select(partitions).where(partitions.c.integration == integration)
        if sync_name is not None:
            statement = statement.where(partitions.c.sync_name == sync_name)
        if connection_id is not None:
            statement = statement.where(partitions.c.connection_id == connection_id)
        with self.engine.connect() as conn:
            return [PartitionRow(**row._mapping) for row in conn.execute(statement.order_by(partitions.c.partition_key))]

    def syncs_with_variants(self) -> set[tuple[str, str]]:
        """(integration, sync) pairs that have a variant other than the base one, in any connection."""
        statement = select(partitions.c.integration, partitions.c.sync_name).where(partitions.c.variant != BASE_VARIANT).distinct()
        with self.engine.connect() as conn:
            return {(row.integration, row.sync_name) for row in conn.execute(statement)}

    def remove(self, integration: str, sync_name: str, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(partitions).where(_identity(integration, sync_name, key)))
            conn.execute(delete(run_progress).where(_identity(integration, sync_name, key, run_progress)))

    def remove_connection(self, integration: str, connection_id: str) -> None:
        with self.engine.begin() as conn:
            keys = select(partitions.c.partition_key).where(
                partitions.c.integration == integration, partitions.c.connection_id == connection_id
            )
            conn.execute(
                delete(run_progress).where(
                    run_progress.c.integration == integration, run_progress.c.partition_key.in_(keys)
                )
            )
            conn.execute(
                delete(partitions).where(
                    partitions.c.integration == integration, partitions.c.connection_id == connection_id
                )
            )

    # -- the unfinished run ----------------------------------------------------------------------

    def save_progress(
        self,
        integration: str,
        sync_name: str,
        key: str,
        *,
        generation: str,
        started_at: datetime,
        checkpoint: dict[str, Any] | None,
    ) -> None:
        """Record the checkpoint of the partition's run in progress (one row per partition, replaced)."""
        values = {
            "generation": generation,
            "started_at": to_iso(started_at),
            "checkpoint": json.dumps(checkpoint) if checkpoint is not None else None,
            "updated_at": to_iso(utcnow()),
        }
        with self.engine.begin() as conn:
            statement = dialect_insert(conn, run_progress).values(
                integration=integration, sync_name=sync_name, partition_key=key, **values
            )
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["integration", "sync_name", "partition_key"], set_=values
                )
            )

    def progress(self, integration: str, sync_name: str, key: str) -> RunProgress | None:
        """The partition's unfinished run, if one saved a checkpoint and has not finished since."""
        statement = select(run_progress).where(_identity(integration, sync_name, key, run_progress))
        with self.engine.connect() as conn:
            row = conn.execute(statement).first()
        if row is None:
            return None
        checkpoint = json.loads(row.checkpoint) if row.checkpoint is not None else None
        return RunProgress(row.generation, from_iso(row.started_at), checkpoint)

    def clear_progress(self, integration: str, sync_name: str, key: str, generation: str) -> None:
        """The run of `generation` finished: forget its progress (a newer run's progress stays)."""
        identity = _identity(integration, sync_name, key, run_progress)
        with self.engine.begin() as conn:
            conn.execute(delete(run_progress).where(identity, run_progress.c.generation == generation))

    def set_paused(self, integration: str, sync_name: str, key: str, paused: bool, now: datetime) -> None:
        """Pause or resume; resuming a partition that never ran makes it due at once."""
        values: dict = {"paused": paused}
        with self.engine.begin() as conn:
            row = conn.execute(select(partitions.c.next_due_at).where(_identity(integration, sync_name, key))).first()
            if row is not None and not paused and row.next_due_at is None:
                values["next_due_at"] = to_iso(now)
            conn.execute(update(partitions).where(_identity(integration, sync_name, key)).values(**values))

    def set_frequency(
        self,
        integration: str,
        sync_name: str,
        key: str,
        seconds: int | None,
        *,
        next_due: datetime,
        cron: str | None = None,
    ) -> None:
        """Override the frequency with `seconds` or a `cron` expression (both None: the sync's own again);
        a run due later than `next_due` (the new frequency's next run) is brought forward to it."""
        soonest = to_iso(next_due)
        with self.engine.begin() as conn:
            row = conn.execute(select(partitions.c.next_due_at).where(_identity(integration, sync_name, key))).first()
            values: dict = {"frequency_seconds": seconds, "frequency_cron": cron}
            if row is not None and row.next_due_at is not None and row.next_due_at > soonest:
                values["next_due_at"] = soonest
            conn.execute(update(partitions).where(_identity(integration, sync_name, key)).values(**values))

    def trigger(self, integration: str, sync_name: str, key: str, mode: str, now: datetime) -> None:
        """Ask for a run at the next scheduler tick; a stronger pending mode (a reset) is kept."""
        with self.engine.begin() as conn:
            row = conn.execute(select(partitions.c.trigger_mode).where(_identity(integration, sync_name, key))).first()
            if row is None:
                return
            if TRIGGER_STRENGTH.get(row.trigger_mode, -1) > TRIGGER_STRENGTH[mode]:
                mode = row.trigger_mode
            conn.execute(
                update(partitions)
                .where(_identity(integration, sync_name, key))
                .values(trigger_mode=mode, triggered_at=to_iso(now))
            )

    def due(self, now: datetime, integration: str | None = None, sync_name: str | None = None) -> list[PartitionRow]:
        """Partitions to run now: triggered ones, and unpaused ones whose next due time has come."""
        statement = select(partitions).where(
            or_(
                partitions.c.trigger_mode.is_not(None),
                and_(partitions.c.paused.is_(False), partitions.c.next_due_at <= to_iso(now)),
            )
        )
        if integration is not None:
            statement = statement.where(partitions.c.integration == integration)
        if sync_name is not None:
            statement = statement.where(partitions.c.sync_name == sync_name)
        with self.engine.connect() as conn:
            return [PartitionRow(**row._mapping) for row in conn.execute(statement)]

    def mark_requested(self, row: PartitionRow, next_due_at: datetime) -> None:
        """A run was requested for `row` as read: schedule the next run and clear the trigger and the
        pending retry it answered (if it fails too, another retry is scheduled).

        A trigger that arrived after `row` was read has a newer `triggered_at` and stays pending.
        """
        identity = _identity(row.integration, row.sync_name, row.partition_key)
        with self.engine.begin() as conn:
            conn.execute(
                update(partitions).where(identity).values(next_due_at=to_iso(next_due_at), retry_at=None, retry_mode=None)
            )
            if row.triggered_at is not None:
                conn.execute(
                    update(partitions)
                    .where(identity, partitions.c.triggered_at == row.triggered_at)
                    .values(trigger_mode=None, triggered_at=None)
                )

    def record_failure(
        self, integration: str, sync_name: str, key: str, failed_at: datetime, mode: str, backoff: Sequence[timedelta]
    ) -> PartitionRow | None:
        """A run of the partition failed: count it and schedule a retry after the next step of `backoff`
        (the last step repeats), or at the regular due time when that comes sooner.

        A failure already counted (not after `failed_at`) or from before the partition's (re)creation
        changes nothing and returns None.
        """
        stamp = to_iso(failed_at)
        with self.engine.begin() as conn:
            row = conn.execute(select(partitions).where(_identity(integration, sync_name, key))).first()
            if row is None or stamp < row.created_at or (row.failed_at is not None and stamp <= row.failed_at):
                return None
            failures = row.failures + 1
            retry_at = to_iso(failed_at + backoff[min(failures, len(backoff)) - 1])
            values = {"failures": failures, "failed_at": stamp, "retry_at": retry_at, "retry_mode": mode}
            if row.next_due_at is None or row.next_due_at > retry_at:
                values["next_due_at"] = retry_at
            conn.execute(update(partitions).where(_identity(integration, sync_name, key)).values(**values))
            return PartitionRow(**{**row._mapping, **values})

    def record_success(self, integration: str, sync_name: str, key: str, succeeded_at: datetime) -> None:
        """A run of the partition succeeded after its last failure: no retry is pending any more."""
        with self.engine.begin() as conn:
            conn.execute(
                update(partitions)
                .where(
                    _identity(integration, sync_name, key),
                    partitions.c.failures > 0,
                    partitions.c.failed_at <= to_iso(succeeded_at),
                )
                .values(failures=0, retry_at=None, retry_mode=None)
            )


# A pending trigger is replaced only by one that forgets at least as much.
TRIGGER_STRENGTH = {MODE_INCREMENTAL: 0, MODE_FULL_REFRESH: 1, MODE_CLEAR_CACHE: 2}


def _identity(integration: str, sync_name: str, key: str, table=partitions):
    return and_(table.c.integration == integration, table.c.sync_name == sync_name, table.c.partition_key == key)
