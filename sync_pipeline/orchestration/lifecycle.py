"""Creating and deleting connections and variants: a Dagster dynamic partition plus our own state."""

from __future__ import annotations

from dagster import DagsterInstance

from sync_pipeline.keys import make_partition_key, validate_variant
from sync_pipeline.sdk.declaration import Integration, SyncDefinition
from sync_pipeline.store import AUTH, PARTITION_CAPPED, Connection, Store, StreamKey, utcnow
from sync_pipeline.vocabulary import BASE_VARIANT


def add_partition(
    instance: DagsterInstance,
    store: Store,
    sync: SyncDefinition,
    connection_id: str,
    variant: str,
    *,
    cap: int | None = None,
) -> str:
    """Add the partition of one sync variant: ADDED, EXISTS (idempotent) or CAPPED (see PartitionStore.ensure).

    Its first run is due now when the sync has `auto_start`.
    """
    outcome = store.partitions.ensure(
        sync.integration.name, sync.name, connection_id, variant, utcnow(), due_now=sync.auto_start, cap=cap
    )
    key = make_partition_key(connection_id, variant)
    if outcome != PARTITION_CAPPED and not instance.has_dynamic_partition(sync.qualified_name, key):
        instance.add_dynamic_partitions(sync.qualified_name, [key])
    return outcome


def remove_partition(instance: DagsterInstance, store: Store, sync: SyncDefinition, connection_id: str, variant: str) -> None:
    """Remove a partition with its schedule state, checkpoint (by forgetting its history) and records."""
    key = make_partition_key(connection_id, variant)
    if instance.has_dynamic_partition(sync.qualified_name, key):
        instance.delete_dynamic_partition(sync.qualified_name, key)
    store.partitions.remove(sync.integration.name, sync.name, key)
    for model in sync.model_names:
        store.records.clear(StreamKey(sync.integration.name, connection_id, model, variant))


def register_connection(instance: DagsterInstance, store: Store, integration: Integration, connection: Connection) -> Connection:
    """Store the connection and add the base variant of each of its integration's syncs that has one.

    Credentials imported anew are no longer failed: their runs are tried again.
    """
    stored = store.connections.upsert(connection)
    store.connection_errors.clear(integration.name, connection.connection_id, AUTH)
    add_base_partitions(instance, store, integration, stored)
    return stored


def add_base_partitions(instance: DagsterInstance, store: Store, integration: Integration, connection: Connection) -> None:
    """Add the base variant of each sync whose metadata test the connection now passes (never removes one).

    A GitHub connection gets its base variant once its metadata lists `repositories`: before that it would
    run and sync nothing. Called on creation and after every metadata change.
    """
    for sync in integration.syncs.values():
        if sync.has_base_variant(connection.metadata):
            add_partition(instance, store, sync, connection.connection_id, BASE_VARIANT)


def ensure_webhook_partition(instance: DagsterInstance, store: Store, sync: SyncDefinition, connection_id: str) -> None:
    """The base partition that provider webhooks write to, without scheduling a run of it when it has none."""
    store.partitions.ensure(sync.integration.name, sync.name, connection_id, BASE_VARIANT, utcnow(), due_now=False)
    key = make_partition_key(connection_id, BASE_VARIANT)
    if not instance.has_dynamic_partition(sync.qualified_name, key):
        instance.add_dynamic_partitions(sync.qualified_name, [key])


def delete_connection(instance: DagsterInstance, store: Store, integration: Integration, connection_id: str) -> dict[str, int] | None:
    """Delete the connection with every partition (all variants), schedule row, record and error of it.

    Returns how many of each went (`partitions` in Dagster, `schedules` rows, `records`), or None when
    there is no such connection.
    """
    if not store.connections.exists(integration.name, connection_id):  # its secrets need not be readable
        return None
    removed = {"partitions": 0, "schedules": 0, "records": store.records.drop_streams(integration.name, connection_id)}
    for sync in integration.syncs.values():
        variants = {row.variant for row in store.partitions.list(integration.name, sync.name, connection_id)}
        removed["schedules"] += len(variants)
        for variant in variants | {BASE_VARIANT}:
            removed["partitions"] += instance.has_dynamic_partition(sync.qualified_name, make_partition_key(connection_id, variant))
            remove_partition(instance, store, sync, connection_id, variant)
    store.partitions.remove_connection(integration.name, connection_id)
    store.connection_errors.clear(integration.name, connection_id)
    store.connections.delete(integration.name, connection_id)
    return removed


def variant_name(variant: str) -> str:
    """A variant name a user may create: `[A-Za-z0-9_-]{1,255}` and not `base` in any case."""
    return validate_variant(variant, allow_base=False)
