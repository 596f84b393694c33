"""Reading what a sync run told Dagster: a model's materialization metadata, the failure message."""

from __future__ import annotations

from typing import Any

from dagster import ExecuteInProcessResult


def materialization_metadata(result: ExecuteInProcessResult, model: str) -> dict[str, Any]:
    """The metadata of the run's one materialization of `model`, as plain values."""
    [event] = [
        event for event in result.get_asset_materialization_events() if event.asset_key.path[-1] == model
    ]
    return {key: value.value for key, value in event.step_materialization_data.materialization.metadata.items()}


def failure_message(result: ExecuteInProcessResult) -> str:
    """Why the run's sync step failed, as the UI shows it."""
    [failure] = [event for event in result.all_events if event.is_step_failure]
    return failure.step_failure_data.error.message
