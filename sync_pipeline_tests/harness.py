"""`SyncHarness`: connections and sync runs through their Dagster jobs, in process, as the scheduler would."""

from __future__ import annotations

from dagster import DagsterInstance, DagsterRunStatus, ExecuteInProcessResult
from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.utils import make_new_run_id

from sync_pipeline.keys import make_partition_key
from sync_pipeline.orchestration import build_definitions
from sync_pipeline.orchestration.assets import MODE_TAG, run_tags
from sync_pipeline.sdk.declaration import Registry
from sync_pipeline.store import Connection, Store, utcnow
from sync_pipeline.vocabulary import ALLOW_MASS_DELETE_TAG, DAGSTER_PARTITION_TAG


class SyncHarness:
    """Creates connections and runs sync partitions through their Dagster jobs, as the scheduler would."""

    def __init__(self, instance: DagsterInstance, store: Store, database_url: str, registry: Registry) -> None:
        self.instance = instance
        self.store = store
        self.registry = registry
        self.definitions = build_definitions(registry, database_url=database_url)

    def connect(
        self, integration: str, connection_id: str, *, base_url: str, credentials=None, metadata=None, config=None
    ):
        return self.store.connections.upsert(
            Connection(
                integration=integration,
                connection_id=connection_id,
                credentials=credentials or {"type": "NONE"},
                config={"base_url": base_url, **(config or {})},
                metadata=metadata or {},
            )
        )

    def add_partition(self, integration: str, sync_name: str, connection_id: str, variant: str = "base") -> str:
        sync = self.registry.find_sync(integration, sync_name)
        key = make_partition_key(connection_id, variant)
        self.instance.add_dynamic_partitions(sync.qualified_name, [key])
        self.store.partitions.ensure(integration, sync_name, connection_id, variant, utcnow(), due_now=sync.auto_start)
        return key

    def run(
        self,
        integration: str,
        sync_name: str,
        connection_id: str,
        variant: str = "base",
        mode: str | None = None,
        *,
        allow_mass_delete: bool = False,
    ) -> ExecuteInProcessResult:
        """Run one partition in process, with the tags the scheduler would give it for such a trigger; returns
        Dagster's result (`.success`, materializations...)."""
        sync = self.registry.find_sync(integration, sync_name)
        key = make_partition_key(connection_id, variant)
        if not self.instance.has_dynamic_partition(sync.qualified_name, key):
            self.add_partition(integration, sync_name, connection_id, variant)
        job = self.definitions.resolve_job_def(sync.qualified_name)
        tags = {**({MODE_TAG: mode} if mode else {}), **({ALLOW_MASS_DELETE_TAG: "true"} if allow_mass_delete else {})}
        return job.execute_in_process(partition_key=key, instance=self.instance, tags=tags or None, raise_on_error=False)

    def queue_run(self, integration: str, sync_name: str, connection_id: str, variant: str = "base") -> str:
        """A run of the partition waiting in Dagster's queue, as the scheduler leaves it for the daemon; its id."""
        sync = self.registry.find_sync(integration, sync_name)
        run = DagsterRun(
            job_name=sync.qualified_name,
            run_id=make_new_run_id(),
            status=DagsterRunStatus.QUEUED,
            tags={**run_tags(sync, connection_id, variant), DAGSTER_PARTITION_TAG: make_partition_key(connection_id, variant)},
            remote_job_origin=RemoteJobOrigin(
                RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("sync_pipeline"), "__repository__"), sync.qualified_name
            ),
        )
        return self.instance.add_run(run).run_id
