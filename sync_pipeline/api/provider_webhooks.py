"""Webhooks from providers: `POST /webhook/{provider_config_key}`, handed to the integration's handler."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from starlette.routing import Route

from sync_pipeline.api.endpoint import Call, endpoint
from sync_pipeline.api.errors import ApiError, not_found
from sync_pipeline.api.fields import Lenient, Success
from sync_pipeline.orchestration.provider_webhooks import handle_provider_webhook
from sync_pipeline.sdk import UnknownWebhookConnection, WebhookRejected


class ProviderPath(Lenient):
    provider_config_key: str = Field(min_length=1, max_length=255)


# Providers cannot send our secret key: the integration's handler authenticates them (signatures).
@endpoint(auth=False, path=ProviderPath, response=Success)
def provider_webhook(call: Call) -> dict[str, Any]:
    """Receive a provider's webhook; the integration authenticates it (e.g. by its signature)."""
    services = call.services
    integration = services.integration(call.parse_path().provider_config_key)
    if integration.webhook_handler is None:
        raise not_found("not_found", f"integration {integration.name!r} does not receive webhooks")
    try:
        handle_provider_webhook(services.instance, services.store, integration, call.headers, call.body)
    except WebhookRejected as error:
        code = "invalid_body" if error.status == 400 else "invalid_webhook_signature"
        raise ApiError(error.status, code, str(error)) from None
    except UnknownWebhookConnection as error:
        raise not_found("unknown_connection", str(error)) from None
    return {"success": True}


def routes() -> list[Route]:
    return [Route("/webhook/{provider_config_key}", provider_webhook, methods=["POST"])]
