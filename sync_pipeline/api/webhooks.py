"""Webhooks from providers (`POST /webhook/{provider_config_key}`) and the log of webhooks sent to the app."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, Literal

from pydantic import Field
from starlette.routing import Route

from sync_pipeline.api.endpoint import Call, endpoint
from sync_pipeline.api.errors import ApiError, not_found, parse
from sync_pipeline.api.fields import Lenient, Strict
from sync_pipeline.orchestration.lifecycle import ensure_webhook_partition
from sync_pipeline.orchestration.state import report_webhook_changes
from sync_pipeline.sdk.webhooks import UnknownWebhookConnection, WebhookContext, WebhookRejected
from sync_pipeline.store import StreamKey, utcnow
from sync_pipeline.webhooks.delivery import DeliveryLog


class ProviderPath(Lenient):
    provider_config_key: str = Field(min_length=1, max_length=255)


class DeliveriesQuery(Strict):
    status: Literal["pending", "delivered", "failed"] | None = None
    limit: int = Field(100, ge=1, le=1000)


# Providers cannot send our secret key: the integration's handler authenticates them (signatures).
@endpoint(auth=False)
def provider_webhook(call: Call) -> dict[str, Any]:
    """Hand the event to the integration's handler, then tell Dagster (and so the app) what it changed."""
    services = call.services
    integration = services.integration(parse(ProviderPath, call.path_params, "path").provider_config_key)
    if integration.webhook_handler is None:
        raise not_found("not_found", f"integration {integration.name!r} does not receive webhooks")
    ctx = WebhookContext(integration, services.store, call.headers, call.body)
    started_at = utcnow()
    try:
        integration.webhook_handler(ctx)
    except WebhookRejected as error:
        code = "invalid_body" if error.status == 400 else "invalid_webhook_signature"
        raise ApiError(error.status, code, str(error)) from None
    except UnknownWebhookConnection as error:
        raise not_found("unknown_connection", str(error)) from None
    for (connection_id, sync_name), ledger in ctx.changes.ledgers.items():
        totals = {
            model: services.store.records.count_live(StreamKey(integration.name, connection_id, model))
            for model in ledger.counts
        }
        low_watermarks = ctx.changes.low_watermarks[(connection_id, sync_name)]
        sync = integration.syncs[sync_name]
        ensure_webhook_partition(services.instance, services.store, sync, connection_id)
        report_webhook_changes(services.instance, sync, connection_id, ledger, started_at, low_watermarks, totals)
    return {"success": True}


@endpoint
def list_deliveries(call: Call) -> dict[str, Any]:
    """The webhooks sent (or being retried) to the app, the newest first, optionally of one status."""
    query = parse(DeliveriesQuery, dict(call.query), "query")
    deliveries = DeliveryLog(call.services.store.engine).list(status=query.status, limit=query.limit)
    return {"deliveries": [{**asdict(d), "body": _json_or_text(d.body)} for d in deliveries]}


def _json_or_text(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body


def routes() -> list[Route]:
    return [
        Route("/webhook/{provider_config_key}", provider_webhook, methods=["POST"]),
        Route("/webhook-deliveries", list_deliveries, methods=["GET"]),
    ]
