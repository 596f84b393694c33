"""Running a sync once for one partition: state in, records into the cache, an outcome out."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from sync_pipeline.sdk.context import Checkpoint, MetadataSink, SyncContext
from sync_pipeline.sdk.deadline import RunDeadline
from sync_pipeline.sdk.declaration import SyncDefinition
from sync_pipeline.sdk.progress import Progress, ProgressSink
from sync_pipeline.sdk.oauth import TokenSource
from sync_pipeline.store import ChangeCounts, Connection, RecordsCache, StreamKey, utcnow
from sync_pipeline.vocabulary import FULL, INCREMENTAL, INITIAL, MODE_CLEAR_CACHE, MODE_FULL_REFRESH


@dataclass(frozen=True)
class Resume:
    """A run that stopped half way: its checkpoint, and the generation and start time it had."""

    checkpoint: Checkpoint | None
    generation: str
    started_at: datetime


@dataclass(frozen=True)
class PartitionState:
    """What the previous runs of a partition left: the last sync date, checkpoint, an unfinished run."""

    last_sync_date: datetime | None = None
    checkpoint: Checkpoint | None = None
    resume: Resume | None = None


@dataclass(frozen=True)
class RunMode:
    """How a run was asked for: `reset` forgets state (INITIAL run), `clear_cache` also empties records."""

    reset: bool = False
    clear_cache: bool = False

    @classmethod
    def from_name(cls, name: str | None) -> "RunMode":
        return {
            MODE_FULL_REFRESH: cls(reset=True),
            MODE_CLEAR_CACHE: cls(reset=True, clear_cache=True),
        }.get(name or "", cls())


@dataclass
class RunOutcome:
    kind: str  # INITIAL, INCREMENTAL or FULL
    started_at: datetime
    generation: str
    checkpoint_from: Checkpoint | None
    checkpoint_to: Checkpoint | None
    counts: dict[str, ChangeCounts]
    invalid: dict[str, int]
    low_watermarks: dict[str, int]
    totals: dict[str, int] = field(default_factory=dict)
    progress: dict[str, Any] = field(default_factory=dict)  # pages, requests, retries, records fetched and saved


CheckpointSink = Callable[[Checkpoint | None, str, datetime], None]


def run_sync(
    sync: SyncDefinition,
    connection: Connection,
    variant: str,
    cache: RecordsCache,
    state: PartitionState,
    *,
    mode: RunMode = RunMode(),
    on_checkpoint: CheckpointSink = lambda checkpoint, generation, started_at: None,
    log: Any = None,
    transport: httpx.BaseTransport | None = None,
    on_progress: ProgressSink | None = None,
    tokens: TokenSource | None = None,
    on_metadata: MetadataSink | None = None,
    stop_requested: Callable[[], str | None] | None = None,
) -> RunOutcome:
    """Run `sync` for one connection and variant; raises whatever the sync raises, deleting nothing then.

    The run stops with `RunTimedOut` past the sync's `timeout`, and with `RunCanceled` once `stop_requested`
    gives a reason (both checked at every request, page, save and checkpoint).
    """
    if mode.reset:
        state = PartitionState()
    resume = state.resume
    started_at = resume.started_at if resume else utcnow()
    generation = resume.generation if resume else uuid.uuid4().hex
    checkpoint_from = resume.checkpoint if resume else state.checkpoint
    streams = {model: StreamKey(sync.integration.name, connection.connection_id, model, variant) for model in sync.model_names}
    if mode.clear_cache:
        for key in streams.values():
            cache.clear(key)
    # Counted in the database per generation: a resumed run's webhook covers its earlier attempts too.
    low_watermarks = {model: cache.begin_tally(key, generation) for model, key in streams.items()}
    # Where this attempt began, for the merging strategy: a resumed attempt starts after its earlier ones' writes.
    began_at_seq = {model: cache.last_seq(key) for model, key in streams.items()} if resume else low_watermarks

    with SyncContext(
        sync=sync,
        connection=connection,
        variant=variant,
        cache=cache,
        last_sync_date=state.last_sync_date,
        checkpoint=checkpoint_from,
        on_checkpoint=lambda checkpoint: on_checkpoint(checkpoint, generation, started_at),
        generation=generation if sync.track_deletes else None,
        log=log,
        transport=transport,
        progress=Progress(sync.name, log or logging.getLogger(f"sync_pipeline.{sync.qualified_name}"), sink=on_progress),
        tokens=tokens,
        tally=generation,
        on_metadata=on_metadata,
        deadline=RunDeadline(sync.timeout_seconds, stop_requested),
        began_at_seq=began_at_seq,
    ) as ctx:
        try:
            sync.fn(ctx)
        finally:
            ctx.progress.report()  # the last line says where the run got, finished or not
            for model, kept in ctx.records_kept.items():
                ctx.log.info(f"{model}: {kept} write(s) left out: a webhook had changed those records since the run began")
            summary = ctx.ledger.invalid_summary()
            if summary:
                ctx.log.warning(summary)
    # Before deleting unseen records: a run that mostly failed validation has not seen what it should have.
    ctx.ledger.check_invalid_share(sync.max_invalid_share)
    if sync.track_deletes:
        for model, key in streams.items():
            deleted = cache.delete_unseen(key, generation, started_at, utcnow(), tally=True)
            ctx.ledger.add(model, ChangeCounts(deleted=deleted))

    return RunOutcome(
        kind=INITIAL if state.last_sync_date is None else (FULL if sync.sync_type == "full" else INCREMENTAL),
        started_at=started_at,
        generation=generation,
        checkpoint_from=checkpoint_from,
        checkpoint_to=ctx.get_checkpoint(),
        counts={model: cache.tally(key, generation) for model, key in streams.items()},
        invalid=dict(ctx.ledger.invalid),
        low_watermarks=low_watermarks,
        totals={model: cache.count_live(key) for model, key in streams.items()},
        progress=ctx.progress.snapshot(),
    )
