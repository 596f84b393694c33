"""Running a sync once for one partition: state in, records into the cache, an outcome out."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import httpx

from sync_pipeline.sdk.context import Checkpoint, MetadataSink, SyncContext
from sync_pipeline.sdk.deadline import RunDeadline
from sync_pipeline.sdk.declaration import SyncDefinition
from sync_pipeline.sdk.deletions import DEFAULT_MAX_DELETED_SHARE, DeletionSweeper, Sweep, deletion_limit, guard
from sync_pipeline.sdk.progress import REPORT_EVERY_SECONDS, Progress
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
    """How a run was asked for: `reset` forgets state (INITIAL run), `clear_cache` also empties records,
    `allow_mass_delete` lets it delete more than the mass-deletion guard allows."""

    reset: bool = False
    clear_cache: bool = False
    allow_mass_delete: bool = False

    @classmethod
    def from_name(cls, name: str | None, *, allow_mass_delete: bool = False) -> "RunMode":
        mode = {
            MODE_FULL_REFRESH: cls(reset=True),
            MODE_CLEAR_CACHE: cls(reset=True, clear_cache=True),
        }.get(name or "", cls())
        return replace(mode, allow_mass_delete=allow_mass_delete)


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
    max_deleted_share: float = DEFAULT_MAX_DELETED_SHARE  # the mass-deletion guard's limit for this run
    mass_delete_allowed: bool = False  # the run's trigger let it through the guard


CheckpointSink = Callable[[Checkpoint | None, str, datetime], None]
# Progress so far (a `Progress.snapshot()`), with the run's checkpoint, generation and start: written beside it.
ProgressRecorder = Callable[[dict[str, Any], Checkpoint | None, str, datetime], None]


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
    on_progress: ProgressRecorder | None = None,
    tokens: TokenSource | None = None,
    progress_every: float = REPORT_EVERY_SECONDS,
    on_metadata: MetadataSink | None = None,
    stop_requested: Callable[[], str | None] | None = None,
) -> RunOutcome:
    """Run `sync` for one connection and variant; raises whatever the sync raises, deleting nothing then.

    The run stops with `RunTimedOut` past the sync's `timeout`, and with `RunCanceled` once `stop_requested`
    gives a reason (both checked at every request, page, save and checkpoint).
    """
    streams = {model: StreamKey(sync.integration.name, connection.connection_id, model, variant) for model in sync.model_names}
    if mode.reset:
        state = PartitionState()
    elif state.resume and any(cache.has_shadow(key, state.resume.generation) for key in streams.values()):
        # A cache-clearing run that failed: its writes went to shadows that are dropped, so nothing to resume.
        state = replace(state, resume=None)
    resume = state.resume
    started_at = resume.started_at if resume else utcnow()
    generation = resume.generation if resume else uuid.uuid4().hex
    checkpoint_from = resume.checkpoint if resume else state.checkpoint
    limit, limit_source = deletion_limit(sync.max_deleted_share, connection.metadata)  # bad metadata fails first
    # Counted in the database per generation: a resumed run's webhook covers its earlier attempts too.
    low_watermarks = {model: cache.begin_tally(key, generation) for model, key in streams.items()}
    # Where this attempt began, for the merging strategy: a resumed attempt starts after its earlier ones' writes.
    began_at_seq = {model: cache.last_seq(key) for model, key in streams.items()} if resume else low_watermarks
    # A cache-clearing run writes into shadows that replace the streams when it succeeds: readers keep seeing
    # the old records until then, and a run that fails changes nothing.
    shadows = {model: cache.shadow(key, generation) for model, key in streams.items()} if mode.clear_cache else {}
    for key in shadows.values():
        cache.begin_tally(key, generation)

    sweeper = DeletionSweeper(cache, generation, started_at, limit, limit_source, allowed=mode.allow_mass_delete)

    def record_progress(snapshot: dict[str, Any]) -> None:
        if on_progress is not None:  # the checkpoint goes too: the row is what a crashed run resumes from
            on_progress(snapshot, ctx.get_checkpoint(), generation, started_at)

    with SyncContext(
        sync=sync,
        connection=connection,
        variant=variant,
        cache=cache,
        last_sync_date=state.last_sync_date,
        checkpoint=checkpoint_from,
        on_checkpoint=lambda checkpoint: on_checkpoint(checkpoint, generation, started_at),
        generation=generation,
        log=log,
        transport=transport,
        progress=Progress(sync.name, log or logging.getLogger(f"sync_pipeline.{sync.qualified_name}"), sink=record_progress, every=progress_every),
        tokens=tokens,
        tally=generation,
        redirect=shadows,
        sweeper=sweeper,
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
    if shadows:
        replaced = [Sweep(m, cache.count_replaced_away(streams[m], key), cache.count_live(streams[m])) for m, key in shadows.items()]
        guard(replaced, limit, limit_source, allowed=mode.allow_mass_delete)
        cache.replace_with_shadows({streams[model]: key for model, key in shadows.items()}, generation)
    elif sync.deleted_models:
        for model, deleted in sweeper.sweep({model: streams[model] for model in sync.deleted_models}).items():
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
        max_deleted_share=limit,
        mass_delete_allowed=mode.allow_mass_delete,
    )
