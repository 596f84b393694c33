"""Why a sync run failed, read back from Dagster's event log: the error's type and message, for the API,
the failure webhook and the CLI (Dagster's own step message, "Error occurred while executing op", hides it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from sync_pipeline.store import from_iso
from sync_pipeline.vocabulary import CONNECTION_TAG, PARTITION_TAG

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


FAILURES_READ = 500  # the newest failed runs looked at for a listing of connections


def connection_errors(instance: DagsterInstance, connections: list[tuple[str, str, str]]) -> dict[tuple[str, str], list[dict]]:
    """Per (integration, connection_id): the sync partitions whose latest run failed, newest first.

    `connections` holds (integration, connection_id, created_at ISO). Two queries in all: the recent failed runs of
    these connections, then the successful runs after them (a partition that succeeded since is fine again).
    """
    created = {f"{integration}/{connection_id}": created_at for integration, connection_id, created_at in connections}
    if not created:
        return {}
    failed = instance.get_run_records(
        RunsFilter(statuses=[DagsterRunStatus.FAILURE], tags={CONNECTION_TAG: list(created)}), limit=FAILURES_READ
    )
    newest: dict[str, object] = {}
    for record in failed:  # newest first: keep each partition's newest failure of the connection's current life
        run = record.dagster_run
        owner = run.tags.get(CONNECTION_TAG)
        if owner in created and record.create_timestamp >= from_iso(created[owner]):
            newest.setdefault(run.tags.get(PARTITION_TAG, ""), record)
    if not newest:
        return {}
    oldest = min(record.create_timestamp for record in newest.values())
    recovered = {
        record.dagster_run.tags.get(PARTITION_TAG): record.create_timestamp
        for record in instance.get_run_records(
            RunsFilter(statuses=[DagsterRunStatus.SUCCESS], tags={PARTITION_TAG: list(newest)}, created_after=oldest)
        )
    }
    found: dict[tuple[str, str], list[dict]] = {}
    for partition, record in newest.items():
        if partition in recovered and recovered[partition] > record.create_timestamp:
            continue
        run = record.dagster_run
        integration, _, connection_id = run.tags[CONNECTION_TAG].partition("/")
        sync_name = run.job_name[len(integration) + 2 :]
        variant = partition.rpartition("::")[2]
        failure = run_failure(instance, run.run_id)
        found.setdefault((integration, connection_id), []).append(
            {"type": "sync", "log_id": run.run_id, "sync_name": sync_name, "sync_variant": variant,
             "error_type": failure.type, "message": failure.message, "failedAt": failure.failed_at}
        )  # fmt: skip
    return found

