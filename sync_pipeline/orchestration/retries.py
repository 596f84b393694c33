"""Retrying failed partitions: the scheduler learns each sync run's end from Dagster's run status events.

A failed run makes its partition due again after a bounded backoff (1, 5, 15, then every 60 minutes, or
at its regular time when that is sooner; a first retry at once for a run whose worker died, after 15 s for a
run that never started) instead of at its next due time, which is a day away for a daily
sync; the retry repeats the failed run's mode. A successful run ends the retries. Events are read after a
cursor (the scheduling sensor's), oldest first; reading one twice changes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dagster import DagsterEventType, DagsterInstance, RunRecord, RunsFilter
from dagster._core.event_api import RunStatusChangeRecordsFilter

from sync_pipeline.sdk.declaration import SyncDefinition
from sync_pipeline.store import Store
from sync_pipeline.vocabulary import DAGSTER_PARTITION_TAG, MODE_INCREMENTAL, MODE_TAG, WORKER_LOST_TAG

RETRY_BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15), timedelta(minutes=60))
# A run whose worker died (a killed process, a lost machine) did not fail for the sync's reasons: its first retry
# goes at once, on another worker, resuming from the checkpoint. A run that keeps killing its worker backs off.
WORKER_LOST_BACKOFF = (timedelta(0), *RETRY_BACKOFF[1:])
# A run that failed before it started (its launch failed: the broker was down; or run monitoring's start timeout
# failed it) did no work and cost the provider nothing, so a minute's wait only delays the sync. Its first retry
# goes after 15 s, not at once: a broker restart or failover takes seconds, and a retry sent at once into the same
# outage would spend the next, longer step. An outage that outlasts it backs off 5, 15, 60 minutes like any other
# failure, so a broker that stays down costs one failed publish per partition and step, not one per tick.
NEVER_STARTED_BACKOFF = (timedelta(seconds=15), *RETRY_BACKOFF[1:])
PAGE = 1000  # run status events read per kind and tick; the rest come at the next tick
OUTCOMES = (DagsterEventType.RUN_FAILURE, DagsterEventType.RUN_SUCCESS)


def learn_run_outcomes(
    instance: DagsterInstance, store: Store, syncs: dict[str, SyncDefinition], cursor: int
) -> tuple[int, int]:
    """Record the sync runs that failed or succeeded after `cursor`; returns the new cursor and how many
    retries were scheduled."""
    batches = [
        instance.fetch_run_status_changes(
            RunStatusChangeRecordsFilter(event_type, after_storage_id=cursor), limit=PAGE, ascending=True
        )
        for event_type in OUTCOMES
    ]
    # A truncated page ends the cursor at its last event, so no event of the other kind is skipped.
    ends = [batch.records[-1].storage_id for batch in batches if batch.has_more and batch.records]
    events = sorted(
        (record for batch in batches for record in batch.records if record.storage_id <= min(ends, default=1 << 62)),
        key=lambda record: record.storage_id,
    )
    new_cursor = min(ends) if ends else max((record.storage_id for record in events), default=cursor)
    if not events:
        return new_cursor, 0
    runs = {
        record.dagster_run.run_id: record
        for record in instance.get_run_records(RunsFilter(run_ids=list({e.event_log_entry.run_id for e in events})))
    }
    retries = 0
    for event in events:
        run_record = runs.get(event.event_log_entry.run_id)
        run = run_record.dagster_run if run_record is not None else None
        sync = syncs.get(run.job_name) if run is not None else None
        partition = run.tags.get(DAGSTER_PARTITION_TAG) if run is not None else None
        if sync is None or partition is None:
            continue  # not a sync run
        at = datetime.fromtimestamp(event.timestamp, timezone.utc)
        if event.event_log_entry.dagster_event_type == DagsterEventType.RUN_FAILURE:
            mode = run.tags.get(MODE_TAG, MODE_INCREMENTAL)
            backoff = _backoff(run_record)
            row = store.partitions.record_failure(sync.integration.name, sync.name, partition, at, mode, backoff)
            retries += row is not None
        else:
            store.partitions.record_success(sync.integration.name, sync.name, partition, at)
    return new_cursor, retries


def _backoff(run_record: RunRecord) -> tuple[timedelta, ...]:
    """The retry delays for a failed run: by why it failed, read from Dagster's own record of the run."""
    if run_record.dagster_run.tags.get(WORKER_LOST_TAG):
        return WORKER_LOST_BACKOFF
    # Dagster sets a run's start_time from its RUN_START event, written by the run's own process once it executes;
    # a run failed by the daemon (launch) or run monitoring (start timeout) before that has none.
    if run_record.start_time is None:
        return NEVER_STARTED_BACKOFF
    return RETRY_BACKOFF
