"""`GET /scripts/config`: every sync of every loaded integration, as Nango serves its deployed scripts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, RootModel
from starlette.routing import Route

from sync_pipeline.api.endpoint import Call, endpoint
from sync_pipeline.api.fields import Strict
from sync_pipeline.sdk.declaration import Integration, SyncDefinition


class ScriptsQuery(Strict):
    format: Literal["nango", "openai"] = "nango"


class ModelName(BaseModel):
    name: str
    fields: list[Any]


class SyncConfig(BaseModel):
    """A sync as Nango's NangoSyncConfig; `frequency` and `variants` are ours (Nango calls the frequency `runs`)."""

    name: str
    type: Literal["sync"]
    runs: str
    frequency: str
    auto_start: bool
    sync_type: Literal["full", "incremental"]
    track_deletes: bool
    description: str
    attributes: dict[str, Any]
    scopes: list[str]
    returns: list[str]
    endpoints: list[dict[str, Any]]
    version: str | None
    last_deployed: str | None
    enabled: bool
    webhookSubscriptions: list[str]
    json_schema: dict[str, Any]
    sdk_version: str | None
    models: list[ModelName]
    features: list[str]
    variants: bool


class StandardConfig(BaseModel):
    providerConfigKey: str
    provider: str
    syncs: list[SyncConfig]
    actions: list[dict[str, Any]]
    on_events: list[dict[str, Any]] = Field(alias="on-events")


class OpenAIFunction(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any]


class OpenAIFunctions(BaseModel):
    data: list[OpenAIFunction]


class ScriptsConfig(RootModel[list[StandardConfig] | OpenAIFunctions]):
    """Nango's StandardNangoConfig list, or with `format=openai` `{"data": [function...]}`."""


@endpoint(query=ScriptsQuery, response=ScriptsConfig)
def scripts_config(call: Call) -> Any:
    """Every sync of every integration, as Nango's StandardNangoConfig list (or OpenAI functions with `format=openai`)."""
    query: ScriptsQuery = call.parse_query()
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
    """One sync as `SyncConfig` describes it."""
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
