"""Why a sync run failed, read back from Dagster's event log: the error's type and message, for the API,
the failure webhook and the CLI (Dagster's own step message, "Error occurred while executing op", hides it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from sync_pipeline.store import from_iso
from sync_pipeline.vocabulary import DAGSTER_PARTITION_TAG

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


@dataclass(frozen=True)
class PartitionRef:
    """A sync partition of a listed connection: its job, its key, and when it was (re)created."""

    integration: str
    connection_id: str
    sync_name: str
    job_name: str
    partition_key: str
    variant: str
    created_at: str


def connection_errors(instance: DagsterInstance, partitions: list[PartitionRef]) -> dict[tuple[str, str], list[dict]]:
    """Per (integration, connection_id): the partitions whose latest run failed, and why.

    Two queries in all, by Dagster's own partition tag (so runs launched from the UI count too): the recent
    failed runs of these partitions, then the successful runs after them (a partition that succeeded since
    is fine again). Runs from before a partition's (re)creation belong to an earlier life and are ignored.
    """
    by_run_key = {(ref.job_name, ref.partition_key): ref for ref in partitions}
    if not by_run_key:
        return {}
    keys = sorted({ref.partition_key for ref in partitions})
    newest: dict[tuple[str, str], object] = {}
    failed = instance.get_run_records(
        RunsFilter(statuses=[DagsterRunStatus.FAILURE], tags={DAGSTER_PARTITION_TAG: keys}), limit=FAILURES_READ
    )
    for record in failed:  # newest first
        run_key = (record.dagster_run.job_name, record.dagster_run.tags.get(DAGSTER_PARTITION_TAG, ""))
        ref = by_run_key.get(run_key)
        if ref is not None and record.create_timestamp >= from_iso(ref.created_at):
            newest.setdefault(run_key, record)
    if not newest:
        return {}
    oldest = min(record.create_timestamp for record in newest.values())
    recovered: dict[tuple[str, str], object] = {}
    succeeded = instance.get_run_records(
        RunsFilter(statuses=[DagsterRunStatus.SUCCESS], tags={DAGSTER_PARTITION_TAG: sorted({k for _, k in newest})},
                   created_after=oldest)
    )  # fmt: skip
    for record in succeeded:
        recovered.setdefault((record.dagster_run.job_name, record.dagster_run.tags.get(DAGSTER_PARTITION_TAG, "")), record)
    found: dict[tuple[str, str], list[dict]] = {}
    for run_key, record in newest.items():
        if run_key in recovered and recovered[run_key].create_timestamp > record.create_timestamp:
            continue
        ref = by_run_key[run_key]
        failure = run_failure(instance, record.dagster_run.run_id)
        found.setdefault((ref.integration, ref.connection_id), []).append(
            {"type": "sync", "log_id": failure.run_id, "sync_name": ref.sync_name, "sync_variant": ref.variant,
             "error_type": failure.type, "message": failure.message, "failedAt": failure.failed_at}
        )  # fmt: skip
    return found
