"""Connections: import, list, read, delete, and their metadata."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field
from starlette.routing import Route

from sync_pipeline.api.endpoint import Call, endpoint
from sync_pipeline.api.errors import not_found
from sync_pipeline.api.fields import ConnectionId, Lenient, ProviderConfigKey, Success
from sync_pipeline.orchestration.failures import PartitionRef, connection_errors
from sync_pipeline.orchestration.lifecycle import add_base_partitions, delete_connection, register_connection
from sync_pipeline.store import Connection, to_iso, utcnow


class _Credentials(Lenient):
    model_config = ConfigDict(extra="allow")  # refresh_token, expires_at, raw...: stored as sent


class OAuth2(_Credentials):
    type: Literal["OAUTH2"]
    access_token: str = Field(min_length=1)


class ApiKey(_Credentials):
    type: Literal["API_KEY"]
    apiKey: str = Field(min_length=1)


class Basic(_Credentials):
    type: Literal["BASIC"]
    username: str
    password: str


class NoCredentials(_Credentials):
    type: Literal["NONE"]


Credentials = Annotated[OAuth2 | ApiKey | Basic | NoCredentials, Field(discriminator="type")]


class ImportBody(Lenient):
    provider_config_key: ProviderConfigKey
    connection_id: ConnectionId
    credentials: Credentials
    connection_config: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    webhook_url_override: AnyHttpUrl | None = None


class ListQuery(Lenient):
    connectionId: str | None = None
    integrationId: str | None = None


class ConnectionQuery(Lenient):
    provider_config_key: ProviderConfigKey
    force_refresh: bool = False
    refresh_token: bool = False


class ConnectionPath(Lenient):
    connection_id: ConnectionId


class MetadataBody(Lenient):
    connection_id: ConnectionId | Annotated[list[ConnectionId], Field(min_length=1)]
    provider_config_key: ProviderConfigKey
    metadata: dict[str, Any]


class ConnectionDetail(BaseModel):
    id: int
    connection_id: str
    provider_config_key: str
    provider: str
    connection_config: dict[str, Any]
    metadata: dict[str, Any]
    created_at: str
    updated_at: str
    last_fetched_at: str | None
    credentials: dict[str, Any]


class FailingSync(BaseModel):
    """A sync partition of the connection whose latest run failed, and why."""

    type: Literal["sync"]
    log_id: str  # the Dagster run id
    sync_name: str
    sync_variant: str
    error_type: str
    message: str
    failedAt: str | None


class ConnectionSummary(BaseModel):
    id: int
    connection_id: str
    provider_config_key: str
    provider: str
    created: str
    metadata: dict[str, Any]
    errors: list[FailingSync]
    end_user: dict[str, Any] | None
    tags: dict[str, Any]


class ConnectionList(BaseModel):
    connections: list[ConnectionSummary]


@endpoint(body=ImportBody, response=ConnectionDetail)
def import_connection(call: Call) -> dict[str, Any]:
    """Import a connection: create it, or update the one with the same (provider_config_key, connection_id)."""
    body: ImportBody = call.parse_body()
    integration = call.services.integration(body.provider_config_key)
    connection = Connection(
        integration=integration.name,
        connection_id=body.connection_id,
        credentials=body.credentials.model_dump(),
        config=body.connection_config,
        metadata=body.metadata,
        webhook_url_override=str(body.webhook_url_override) if body.webhook_url_override else None,
    )
    return detail(register_connection(call.services.instance, call.services.store, integration, connection))


@endpoint(query=ListQuery, response=ConnectionList)
def list_connections(call: Call) -> dict[str, Any]:
    """List connections, optionally of one integration or connection id."""
    query: ListQuery = call.parse_query()
    found = call.services.store.connections.list(query.integrationId, query.connectionId)
    errors = connection_errors(call.services.instance, _partitions_of(call, found))
    return {"connections": [summary(c, errors.get((c.integration, c.connection_id), [])) for c in found]}


def _partitions_of(call: Call, found: list[Connection]) -> list[PartitionRef]:
    """The sync partitions of the listed connections: one query per integration."""
    wanted = {(c.integration, c.connection_id) for c in found}
    refs = []
    for integration_name in sorted({c.integration for c in found}):
        integration = call.services.registry.get(integration_name)
        for row in call.services.store.partitions.list(integration_name):
            sync = integration.syncs.get(row.sync_name) if integration is not None else None
            if sync is not None and (integration_name, row.connection_id) in wanted:
                refs.append(PartitionRef(integration_name, row.connection_id, sync.name, sync.qualified_name,
                                         row.partition_key, row.variant, row.created_at))  # fmt: skip
    return refs


@endpoint(path=ConnectionPath, query=ConnectionQuery, response=ConnectionDetail)
def get_connection(call: Call) -> dict[str, Any]:
    """The connection with its credentials, as Nango answers it (the caller holds the secret key)."""
    connection = _existing(call)
    call.services.store.connections.touch_fetched(connection.integration, connection.connection_id)
    connection.last_fetched_at = to_iso(utcnow())
    return detail(connection)


@endpoint(path=ConnectionPath, query=ConnectionQuery, response=Success)
def remove_connection(call: Call) -> dict[str, Any]:
    """Delete the connection with its partitions, schedules and records."""
    connection = _existing(call)
    integration = call.services.integration(connection.integration)
    delete_connection(call.services.instance, call.services.store, integration, connection.connection_id)
    return {"success": True}


@endpoint(status=201, body=MetadataBody, response=MetadataBody)
def replace_metadata(call: Call) -> dict[str, Any]:
    """Replace the metadata of connections (all of them, or none when one is unknown)."""
    return _set_metadata(call, merge=False)


@endpoint(body=MetadataBody, response=MetadataBody)
def merge_metadata(call: Call) -> dict[str, Any]:
    """Merge top-level keys into the metadata of connections (all of them, or none when one is unknown)."""
    return _set_metadata(call, merge=True)


def _set_metadata(call: Call, *, merge: bool) -> dict[str, Any]:
    """All named connections get the metadata, or (one being unknown) none does."""
    raw = call.json()
    body: MetadataBody = call.parse_body(raw)
    integration = call.services.integration(body.provider_config_key)
    ids = body.connection_id if isinstance(body.connection_id, list) else [body.connection_id]
    if not call.services.store.connections.set_metadata(integration.name, ids, body.metadata, merge=merge):
        raise not_found("unknown_connection", f"at least one of the connections {ids} of {integration.name!r} does not exist")
    for connection_id in ids:  # e.g. GitHub's base variant appears once `repositories` is set
        connection = call.services.store.connections.get(integration.name, connection_id)
        if connection is not None:
            add_base_partitions(call.services.instance, call.services.store, integration, connection)
    return raw


def _existing(call: Call) -> Connection:
    connection_id = call.parse_path().connection_id
    integration = call.services.integration(call.parse_query().provider_config_key)
    connection = call.services.store.connections.get(integration.name, connection_id)
    if connection is None:
        raise not_found("unknown_connection", f"there is no connection {connection_id!r} of {integration.name!r}")
    return connection


def summary(connection: Connection, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A connection in a listing; `errors` names each sync partition whose latest run failed, and why."""
    return {
        "id": connection.id,
        "connection_id": connection.connection_id,
        "provider_config_key": connection.integration,
        "provider": connection.integration,
        "created": connection.created_at,
        "metadata": connection.metadata,
        "errors": errors or [],
        "end_user": None,
        "tags": {},
    }


def detail(connection: Connection) -> dict[str, Any]:
    return {
        "id": connection.id,
        "connection_id": connection.connection_id,
        "provider_config_key": connection.integration,
        "provider": connection.integration,
        "connection_config": connection.config,
        "metadata": connection.metadata,
        "created_at": connection.created_at,
        "updated_at": connection.updated_at,
        "last_fetched_at": connection.last_fetched_at,
        "credentials": connection.credentials,
    }


def routes() -> list[Route]:
    out = []
    for prefix in ("/connections", "/connection"):  # Nango's old singular paths, still sent by older clients
        out += [
            Route(f"{prefix}/metadata", replace_metadata, methods=["POST"]),
            Route(f"{prefix}/metadata", merge_metadata, methods=["PATCH"]),
            Route(f"{prefix}/{{connection_id}}", get_connection, methods=["GET"]),
            Route(f"{prefix}/{{connection_id}}", remove_connection, methods=["DELETE"]),
        ]
    return [
        Route("/connections", import_connection, methods=["POST"]),
        Route("/connections", list_connections, methods=["GET"]),
        *out,
    ]
