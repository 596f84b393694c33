"""Handling a provider's webhook: the integration's handler saves records, then Dagster (and so the app) hears what changed."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping

from dagster import DagsterInstance

from sync_pipeline.orchestration.lifecycle import ensure_webhook_partition
from sync_pipeline.orchestration.run_metadata import report_provider_webhook_changes
from sync_pipeline.sdk import Integration, ProviderWebhookContext
from sync_pipeline.json_input import InvalidJson, parse_json
from sync_pipeline.notifications.payloads import forward_body
from sync_pipeline.settings import WebhookSettings
from sync_pipeline.store import Store, StreamKey, utcnow


def handle_provider_webhook(
    instance: DagsterInstance,
    store: Store,
    integration: Integration,
    headers: Mapping[str, str],
    body: bytes,
    settings: WebhookSettings | None = None,
) -> None:
    """Run `integration`'s webhook handler on one delivery; raises WebhookRejected or UnknownWebhookConnection.

    Each changed model of the connection's base partition gets a runless materialization, which the
    notifications sensor turns into a `syncType: "WEBHOOK"` webhook to the app. The event itself is
    forwarded to the app too, once per connection it was attributed to (Nango's `forward` webhook).
    """
    assert integration.webhook_handler is not None
    ctx = ProviderWebhookContext(integration, store, headers, body)
    started_at = utcnow()
    integration.webhook_handler(ctx)
    forward(store, integration, ctx, settings or WebhookSettings.from_env())
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


def forward(store: Store, integration: Integration, ctx: ProviderWebhookContext, settings: WebhookSettings) -> None:
    """Enqueue a `forward` webhook per attributed connection, to its webhook URL and the secondary one.

    Delivered by the notifications sensor (signed, retried, in order per connection), so a slow app never
    holds up the provider's answer. An event no connection was found for is not forwarded.
    """
    try:
        payload = parse_json(ctx.body)
    except InvalidJson:
        payload = ctx.body.decode("utf-8", errors="replace")  # forwarded as the provider sent it
    items = []
    for connection_id, connection in sorted(ctx.attributed.items()):
        body = forward_body(integration.name, connection_id, payload)
        delivery_id = "fw-" + uuid.uuid4().hex
        order = f"forward/{integration.name}/{connection_id}"
        for suffix, url in settings.destinations(connection.webhook_url_override or settings.url):
            items.append((delivery_id + suffix, url, body, order + suffix, time.time_ns()))
    store.deliveries.enqueue_many(items)
