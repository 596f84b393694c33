"""Why a sync run failed, read back from Dagster's event log: the error's type and message, for `/sync/status`
and the failure webhook (Dagster's own step message, "Error occurred while executing op", hides it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from dagster import DagsterEventType, DagsterInstance, RunsFilter
from dagster._utils.error import SerializableErrorInfo

ERROR_TYPE_KEY = "error_type"  # metadata of the Failure a sync run raises: the original exception's class


@dataclass(frozen=True)
class RunFailure:
    """A failed run's error: `type` (e.g. ConnectError, ProviderError) and `message` (cause and URL included)."""

    run_id: str
    type: str
    message: str
    failed_at: str | None = None

    @property
    def description(self) -> str:
        return f"{self.type}: {self.message}" if not self.message.startswith(f"{self.type}:") else self.message

    def as_dict(self) -> dict[str, str | None]:
        return {"type": self.type, "message": self.message, "run_id": self.run_id, "failedAt": self.failed_at}


def run_failure(instance: DagsterInstance, run_id: str) -> RunFailure:
    """The failed step's error (a sync's own Failure, else the innermost Python exception), else the launch's (a
    run that never started), else the run's."""
    for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_FAILURE, limit=1).records:
        data = record.event_log_entry.dagster_event.step_failure_data
        failed_at = _iso(record.event_log_entry.timestamp)
        user = data.user_failure_data
        if user is not None and user.description:
            entry = user.metadata.get(ERROR_TYPE_KEY)
            kind = str(entry.value) if entry is not None else "Failure"
            return RunFailure(run_id, kind, _strip_type(user.description, kind), failed_at)
        if data.error is not None:
            kind, message = _innermost(data.error)  # Dagster wraps the user's exception in its own step error
            return RunFailure(run_id, kind, message, failed_at)
    for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_FAILURE, limit=1).records:
        entry = record.event_log_entry
        kind, message = _launch_error(instance, run_id) or ("RunFailure", entry.message or "the run failed")
        return RunFailure(run_id, kind, message, _iso(entry.timestamp))
    return RunFailure(run_id, "RunFailure", "the run failed before it started its step")


def _launch_error(instance: DagsterInstance, run_id: str) -> tuple[str, str] | None:
    """Why the daemon could not launch a run (the broker down...): the type and message of its engine event's
    error. Only for a run that never started, whose failure Dagster records as "marked as failed from outside the
    execution context"."""
    record = next(iter(instance.get_run_records(RunsFilter(run_ids=[run_id]), limit=1)), None)
    if record is None or record.start_time is not None:
        return None
    events = instance.get_records_for_run(run_id, of_type=DagsterEventType.ENGINE_EVENT, ascending=False, limit=20)
    for event in events.records:
        data = event.event_log_entry.dagster_event.engine_event_data
        if data is not None and data.error is not None:
            kind, message = _innermost(data.error)  # kombu's OperationalError wraps the socket's error
            return kind, f"the run could not be launched: {message}"
    return None


def _innermost(error: SerializableErrorInfo) -> tuple[str, str]:
    """The type and message of the exception at the bottom of a chain of causes."""
    while error.cause is not None:
        error = error.cause
    kind = error.cls_name or "Error"
    return kind, _strip_type(error.message.strip(), kind)


def _strip_type(message: str, kind: str) -> str:
    """Dagster renders an exception as `Type: message`; keep the message alone beside the type."""
    return message[len(kind) + 1 :].strip() if message.startswith(f"{kind}:") else message


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat().replace("+00:00", "Z")

