"""Reading what a sync run did: a model's materialization metadata and counts, the failure, the records it left."""

from __future__ import annotations

import json
from dagster import ExecuteInProcessResult

from sync_pipeline.orchestration.run_metadata import RunMetadata
from sync_pipeline.store import ChangeQuery, Store, StreamKey


def materialization_metadata(result: ExecuteInProcessResult, model: str) -> RunMetadata:
    """The metadata the run recorded for `model`: its materialization, or its observation when it changed nothing."""
    events = [event.step_materialization_data.materialization for event in result.get_asset_materialization_events()]
    events += [event.asset_observation_data.asset_observation for event in result.get_asset_observation_events()]
    [event] = [event for event in events if event.asset_key.path[-1] == model]
    return RunMetadata.of_event(event)


def failure_message(result: ExecuteInProcessResult) -> str:
    """Why the run's sync step failed, as the UI shows it."""
    [failure] = [event for event in result.all_events if event.is_step_failure]
    return failure.step_failure_data.error.message


def counts(result, model: str) -> tuple[int, int, int]:
    meta = materialization_metadata(result, model)
    return meta.added, meta.updated, meta.deleted


def records(store: Store, key: StreamKey) -> dict[str, dict]:
    """The live records of a stream, by id, as the records API would return their payloads."""
    rows = store.records.changes(key, ChangeQuery(limit=10_000))
    return {r.record_id: json.loads(r.payload) for r in rows if r.deleted_at is None and r.payload}


def deleted_ids(store: Store, key: StreamKey) -> set[str]:
    return {r.record_id for r in store.records.changes(key, ChangeQuery(limit=10_000, actions=("DELETED",)))}
