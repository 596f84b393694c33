"""`GET /scripts/config`: every sync of every loaded integration, as Nango serves its deployed scripts."""

from __future__ import annotations

from typing import Any, Literal

from starlette.routing import Route

from sync_pipeline.api.endpoint import Call, endpoint
from sync_pipeline.api.errors import parse
from sync_pipeline.api.fields import Strict
from sync_pipeline.sdk.declaration import Integration, SyncDefinition


class ScriptsQuery(Strict):
    format: Literal["nango", "openai"] = "nango"


@endpoint
def scripts_config(call: Call) -> Any:
    """Nango's StandardNangoConfig list (or, with `format=openai`, `{"data": [function...]}`)."""
    query = parse(ScriptsQuery, dict(call.query), "query")
    integrations = list(call.services.registry.integrations.values())
    if query.format == "openai":
        return {"data": [_openai_function(sync) for integration in integrations for sync in integration.syncs.values()]}
    with_variants = call.services.store.partitions.syncs_with_variants()
    return [_standard_config(integration, with_variants) for integration in integrations]


def _standard_config(integration: Integration, with_variants: set[tuple[str, str]]) -> dict[str, Any]:
    return {
        "providerConfigKey": integration.name,
        "provider": integration.name,
        "syncs": [_sync_config(sync, (integration.name, sync.name) in with_variants) for sync in integration.syncs.values()],
        "actions": [],
        "on-events": [],
    }


def _sync_config(sync: SyncDefinition, has_variants: bool) -> dict[str, Any]:
    """One sync as Nango's NangoSyncConfig; `frequency` and `variants` are ours (Nango calls the frequency `runs`)."""
    return {
        "name": sync.name,
        "type": "sync",
        "runs": sync.frequency,
        "frequency": sync.frequency,
        "auto_start": sync.auto_start,
        "sync_type": sync.sync_type,
        "track_deletes": sync.track_deletes,
        "description": sync.description,
        "attributes": {},
        "scopes": [],
        "returns": sync.model_names,
        "endpoints": [],
        "version": None,
        "last_deployed": None,
        "enabled": True,
        "webhookSubscriptions": list(sync.webhook_subscriptions),
        "json_schema": {"definitions": {model.__name__: model.model_json_schema() for model in sync.models}},
        "sdk_version": None,
        "models": [{"name": name, "fields": []} for name in sync.model_names],
        "features": [],
        "variants": has_variants,
    }


def _openai_function(sync: SyncDefinition) -> dict[str, Any]:
    return {
        "name": sync.name,
        "description": sync.description or f"Execute the {sync.name} sync for {sync.integration.name}",
        "parameters": {"type": "object", "properties": {}, "required": []},
    }


def routes() -> list[Route]:
    return [Route("/scripts/config", scripts_config, methods=["GET"])]
