"""Why a sync run failed, read back from Dagster's event log: the error's type and message, for `/sync/status`
and the failure webhook (Dagster's own step message, "Error occurred while executing op", hides it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from dagster import DagsterEventType, DagsterInstance

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
    """The failed step's error (a sync's own Failure, else the innermost Python exception), else the run's."""
    for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_FAILURE, limit=1).records:
        data = record.event_log_entry.dagster_event.step_failure_data
        failed_at = _iso(record.event_log_entry.timestamp)
        user = data.user_failure_data
        if user is not None and user.description:
            entry = user.metadata.get(ERROR_TYPE_KEY)
            kind = str(entry.value) if entry is not None else "Failure"
            return RunFailure(run_id, kind, _strip_type(user.description, kind), failed_at)
        if data.error is not None:
            innermost = data.error
            while innermost.cause is not None:  # Dagster wraps the user's exception in its own step error
                innermost = innermost.cause
            kind = innermost.cls_name or "Error"
            return RunFailure(run_id, kind, _strip_type(innermost.message.strip(), kind), failed_at)
    for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_FAILURE, limit=1).records:
        entry = record.event_log_entry
        return RunFailure(run_id, "RunFailure", entry.message or "the run failed", _iso(entry.timestamp))
    return RunFailure(run_id, "RunFailure", "the run failed before it started its step")


def _strip_type(message: str, kind: str) -> str:
    """Dagster renders an exception as `Type: message`; keep the message alone beside the type."""
    return message[len(kind) + 1 :].strip() if message.startswith(f"{kind}:") else message


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat().replace("+00:00", "Z")

