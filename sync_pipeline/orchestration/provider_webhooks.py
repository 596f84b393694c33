"""Handling a provider's webhook: the integration's handler saves records, then Dagster (and so the app) hears what changed."""

from __future__ import annotations

from collections.abc import Mapping

from dagster import DagsterInstance

from sync_pipeline.orchestration.lifecycle import ensure_webhook_partition
from sync_pipeline.orchestration.run_metadata import report_provider_webhook_changes
from sync_pipeline.sdk import Integration, ProviderWebhookContext
from sync_pipeline.store import Store, StreamKey, utcnow


def handle_provider_webhook(
    instance: DagsterInstance, store: Store, integration: Integration, headers: Mapping[str, str], body: bytes
) -> None:
    """Run `integration`'s webhook handler on one delivery; raises WebhookRejected or UnknownWebhookConnection.

    Each changed model of the connection's base partition gets a runless materialization, which the
    notifications sensor turns into a `syncType: "WEBHOOK"` webhook to the app.
    """
    assert integration.webhook_handler is not None
    ctx = ProviderWebhookContext(integration, store, headers, body)
    started_at = utcnow()
    integration.webhook_handler(ctx)
    for (connection_id, sync_name), ledger in ctx.changes.ledgers.items():
        # The base partition exists even when it is not scheduled (GitHub without `repositories`).
        ensure_webhook_partition(instance, store, integration.syncs[sync_name], connection_id)
        streams = {model: StreamKey(integration.name, connection_id, model) for model in ledger.counts}
        totals = {model: store.records.count_live(key) for model, key in streams.items()}
        report_provider_webhook_changes(
            instance,
            integration.syncs[sync_name],
            connection_id,
            ledger,
            started_at,
            ctx.changes.low_watermarks[(connection_id, sync_name)],
            totals,
        )
