"""The Dagster assets of a sync: one asset per model, partitioned by `<connection_id>::<variant>`.

No `from __future__ import annotations` here: Dagster inspects the `context` annotation at runtime.
"""


from collections.abc import Iterator
from datetime import timedelta

from dagster import (
    MAX_RUNTIME_SECONDS_TAG,
    AssetCheckResult,
    AssetExecutionContext,
    AssetObservation,
    AssetSelection,
    AssetsDefinition,
    AssetSpec,
    DynamicPartitionsDefinition,
    Failure,
    MaterializeResult,
    TableColumn,
    TableSchema,
    define_asset_job,
    in_process_executor,
    multi_asset,
)
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition
from pydantic import BaseModel

from sync_pipeline.keys import InvalidPartitionKey, make_partition_key, parse_partition_key
from sync_pipeline.orchestration.cancellation import stop_reason
from sync_pipeline.orchestration.checks import blocked_results, check_results, check_specs
from sync_pipeline.orchestration.credentials import CredentialKeeper
from sync_pipeline.orchestration.failures import ERROR_TYPE_KEY
from sync_pipeline.orchestration.lifecycle import add_base_partitions
from sync_pipeline.orchestration.records_input import IO_MANAGER_KEY
from sync_pipeline.orchestration.resources import SyncPipelineResource
from sync_pipeline.orchestration.run_errors import recording_run_errors
from sync_pipeline.orchestration.run_metadata import RunMetadata, asset_key
from sync_pipeline.orchestration.state import read_partition_state
from sync_pipeline.sdk.declaration import SyncDefinition
from sync_pipeline.sdk.deletions import MassDeletionBlocked
from sync_pipeline.sdk.errors import SyncError, describe_error
from sync_pipeline.sdk.runner import RunMode, RunOutcome, run_sync
from sync_pipeline.settings import progress_interval
from sync_pipeline.store import CredentialsError, EncryptionKeyError, from_iso, utcnow
from sync_pipeline.vocabulary import ALLOW_MASS_DELETE_TAG, CONNECTION_TAG, INITIAL, MODE_INCREMENTAL, MODE_TAG, PARTITION_TAG

RESOURCE_KEY = "sync_pipeline"
MONITOR_GRACE = timedelta(minutes=2)  # how long past its timeout a stuck run is left before Dagster terminates it


def partition_id(sync: SyncDefinition, partition_key: str) -> str:
    """`<integration>__<sync>/<connection_id>::<variant>`: a sync partition's id in the API and in run tags."""
    return f"{sync.qualified_name}/{partition_key}"


def run_tags(
    sync: SyncDefinition, connection_id: str, variant: str, mode: str = MODE_INCREMENTAL, *, allow_mass_delete: bool = False
) -> dict[str, str]:
    """Tags of a sync run: its mode (and whether it may delete en masse), the keys `dagster.yaml` limits
    concurrency by, and its maximum run time.

    The run stops itself at the sync's `timeout` with our reason (sdk/deadline.py); Dagster's run monitoring
    terminates it `MONITOR_GRACE` later should it be stuck where that check is never reached.
    """
    return {
        MODE_TAG: mode,
        PARTITION_TAG: partition_id(sync, make_partition_key(connection_id, variant)),
        CONNECTION_TAG: f"{sync.integration.name}/{connection_id}",
        MAX_RUNTIME_SECONDS_TAG: str(int(sync.timeout_seconds + MONITOR_GRACE.total_seconds())),
        **({ALLOW_MASS_DELETE_TAG: "true"} if allow_mass_delete else {}),
    }


def op_name(sync: SyncDefinition) -> str:
    """The op that runs the sync: named apart from its job, which Dagster requires."""
    return f"run_{sync.qualified_name}"


def partitions_definition(sync: SyncDefinition) -> DynamicPartitionsDefinition:
    return DynamicPartitionsDefinition(name=sync.qualified_name)


def build_sync_assets(sync: SyncDefinition) -> tuple[AssetsDefinition, UnresolvedAssetJobDefinition]:
    """The multi-asset that runs `sync` for one partition, and the job the scheduler launches."""
    partitions = partitions_definition(sync)
    specs = [
        AssetSpec(
            key=asset_key(sync.integration.name, model.__name__),
            description=f"{model.__name__} records of {sync.integration.name} sync {sync.name!r}. {sync.description}".strip(),
            group_name=sync.integration.name,
            partitions_def=partitions,
            kinds={"python"},
            # A run that changed nothing yields no materialization (see `execute_sync`), so downstream
            # automation (`AutomationCondition.eager()` and any condition on newly_updated) stays asleep.
            skippable=True,
            metadata={
                "dagster/column_schema": _table_schema(model),
                "sync_type": sync.sync_type,
                "frequency": sync.frequency,
                "track_deletes": model.__name__ in sync.deleted_models,
            },
        ).with_io_manager_key(IO_MANAGER_KEY)  # downstream inputs load records from the cache
        for model in sync.models
    ]

    run_checks = [check for spec in specs for check in check_specs(spec.key)]

    @multi_asset(
        specs=specs,
        name=op_name(sync),
        partitions_def=partitions,
        required_resource_keys={RESOURCE_KEY},
        check_specs=run_checks,
    )
    def sync_assets(context: AssetExecutionContext) -> Iterator[MaterializeResult | AssetObservation | AssetCheckResult]:
        yield from execute_sync(context, sync)

    job = define_asset_job(
        name=sync.qualified_name,
        # Without the freshness checks: a sync run syncs; the freshness sensor evaluates them. With the checks
        # each run evaluates itself (mass deletion, invalid records).
        selection=AssetSelection.assets(*[spec.key for spec in specs]).without_checks()
        | AssetSelection.checks(*[check.key for check in run_checks]),
        partitions_def=partitions,
        executor_def=in_process_executor,
        description=f"Runs {sync.integration.name} sync {sync.name!r} for one connection and variant.",
    )
    return sync_assets, job


def execute_sync(
    context: AssetExecutionContext, sync: SyncDefinition
) -> Iterator[MaterializeResult | AssetObservation | AssetCheckResult]:
    partition = context.partition_key
    try:
        connection_id, variant = parse_partition_key(partition)
    except InvalidPartitionKey as error:
        raise Failure(description=str(error)) from None
    resource: SyncPipelineResource = getattr(context.resources, RESOURCE_KEY)
    try:
        store = resource.store()
        connection = store.connections.get(sync.integration.name, connection_id)
    except (CredentialsError, EncryptionKeyError) as error:  # the UI and the failure webhook name the key problem
        raise Failure(description=str(error)) from None
    if connection is None:
        raise Failure(
            description=f"partition {partition!r}: connection {connection_id!r} of integration "
            f"{sync.integration.name!r} does not exist; create it first (POST /connections)"
        )
    integration = sync.integration.name
    store.partitions.ensure(integration, sync.name, connection_id, variant, utcnow(), due_now=False)
    row = store.partitions.get(integration, sync.name, partition)
    progress = store.partitions.progress(integration, sync.name, partition)
    first_key = asset_key(integration, sync.model_names[0])
    state = read_partition_state(context.instance, first_key, partition, from_iso(row.created_at), progress)
    mode_name = context.run.tags.get(MODE_TAG, MODE_INCREMENTAL)
    mode = RunMode.from_name(mode_name, allow_mass_delete=context.run.tags.get(ALLOW_MASS_DELETE_TAG) == "true")

    def on_progress(progress, checkpoint, generation, started_at) -> None:
        store.partitions.save_progress(
            integration, sync.name, partition, generation=generation, started_at=started_at, checkpoint=checkpoint,
            progress=progress,
        )  # fmt: skip

    def on_checkpoint(checkpoint, generation, started_at) -> None:
        on_progress(None, checkpoint, generation, started_at)  # the counts already stored stay

    def on_metadata(metadata, merge) -> None:
        # As the metadata routes do: all or nothing, and a base variant the new metadata asks for appears.
        if not store.connections.set_metadata(integration, [connection_id], metadata, merge=merge):
            raise SyncError(f"connection {connection_id!r} of {integration!r} no longer exists")
        add_base_partitions(context.instance, store, sync.integration, store.connections.get(integration, connection_id))

    try:
        with recording_run_errors(store, integration, connection_id, partition_id(sync, partition), context.run_id):
            outcome = run_sync(
                sync,
                connection,
                variant,
                store.records,
                state,
                mode=mode,
                on_checkpoint=on_checkpoint,
                on_progress=on_progress,
                progress_every=progress_interval(),
                log=context.log,
                tokens=CredentialKeeper(store, sync.integration, connection),
                on_metadata=on_metadata,
                stop_requested=lambda: stop_reason(context.instance, context.run_id),
            )
    except MassDeletionBlocked as error:  # the UI shows the guard's check failing on the models it stopped
        yield from blocked_results(error, integration)
        raise Failure(description=describe_error(error), metadata={ERROR_TYPE_KEY: type(error).__name__}) from error
    except Exception as error:  # noqa: BLE001 - every failure reaches people as its type and message
        raise Failure(description=describe_error(error), metadata={ERROR_TYPE_KEY: type(error).__name__}) from error
    for model in sync.model_names:
        yield from _report(sync, outcome, model, connection_id, variant, mode_name)
    # Dagster has stored the materializations or observations (and so the run's final checkpoint) before resuming us.
    store.partitions.clear_progress(integration, sync.name, partition, outcome.generation)


def _report(
    sync: SyncDefinition, outcome: RunOutcome, model: str, connection_id: str, variant: str, mode: str
) -> Iterator[MaterializeResult | AssetObservation | AssetCheckResult]:
    """What one model's run tells Dagster: a materialization when its records changed (or on a partition's first
    run, so it is not missing), else an observation with the same metadata: the run is recorded (state, freshness,
    status and webhooks read both) without waking downstream assets."""
    integration = sync.integration.name
    key = asset_key(integration, model)
    metadata = RunMetadata.of_run(outcome, integration, model, connection_id, variant, mode)
    checks = check_results(key, outcome, model)
    if metadata.changed or metadata.kind == INITIAL:
        yield MaterializeResult(asset_key=key, metadata=metadata.to_dagster(), check_results=checks)
        return
    partition = make_partition_key(connection_id, variant)
    yield AssetObservation(asset_key=key, partition=partition, metadata=metadata.to_dagster())
    yield from checks


def _table_schema(model: type[BaseModel]) -> TableSchema:
    return TableSchema(
        columns=[
            TableColumn(name=name, type=_type_name(field.annotation), description=field.description)
            for name, field in model.model_fields.items()
        ]
    )


def _type_name(annotation: object) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
