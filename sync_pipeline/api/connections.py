"""Connections: import, list (paged, filtered, with their errors), read (refreshing on demand), change tags and
end user, delete, and their metadata."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AnyHttpUrl, BaseModel, ConfigDict, Field, WithJsonSchema, field_validator
from starlette.routing import Route

from sync_pipeline.api.endpoint import Call, endpoint
from sync_pipeline.api.errors import ApiError, not_found
from sync_pipeline.api.fields import NO_NUL, ConnectionId, Lenient, ProviderConfigKey, Strict, Success, Text
from sync_pipeline.destinations import RefusedDestination, check_url
from sync_pipeline.orchestration.credentials import CredentialKeeper
from sync_pipeline.orchestration.lifecycle import add_base_partitions, delete_connection, register_connection
from sync_pipeline.sdk.errors import SyncError
from sync_pipeline.sdk.declaration import Integration
from sync_pipeline.store import Connection, ConnectionPage, ConnectionProblem, CredentialsError, to_iso, utcnow
from sync_pipeline.store import ConnectionSummary as StoredSummary

# Nango's limits on tags: at most 10, keys start with a letter, lowercased when stored.
TAG_KEY = re.compile(r"^[a-zA-Z][a-zA-Z0-9_\-./]{0,63}$")
MAX_TAGS = 10
MAX_PAGE = 2000  # Nango's largest `limit`
DEFAULT_LIMIT = 10_000  # Nango's default, kept for clients that never page


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


class App(_Credentials):
    """A GitHub App installation: its tokens are minted with the integration's app id and private key."""

    type: Literal["APP"]
    installation_id: str | int

    @field_validator("installation_id")
    @classmethod
    def _text(cls, value: str | int) -> str:
        if not str(value).strip():
            raise ValueError("installation_id is empty")
        return str(value)


Credentials = Annotated[OAuth2 | ApiKey | Basic | NoCredentials | App, Field(discriminator="type")]


def _tags(tags: dict[str, str]) -> dict[str, str]:
    """Nango's tags: at most 10, keys of letters, digits and _-./ starting with a letter, values 1-255 characters."""
    if len(tags) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags")
    lowered: dict[str, str] = {}
    for key, value in tags.items():
        if not TAG_KEY.match(key):
            raise ValueError(f"tag key {key!r} must start with a letter and hold letters, digits, _ - . / (64 at most)")
        if not 1 <= len(value) <= 255:
            raise ValueError(f"tag {key!r} must have a value of 1 to 255 characters")
        if "\x00" in value:  # PostgreSQL's JSON cannot hold it
            raise ValueError(f"tag {key!r} holds a NUL character")
        if key.lower() in lowered:
            raise ValueError(f"tag key {key.lower()!r} is given twice (keys are compared in lower case)")
        lowered[key.lower()] = value
    return lowered


Tags = Annotated[
    dict[str, str],
    AfterValidator(_tags),
    WithJsonSchema({
        "type": "object",
        "maxProperties": MAX_TAGS,
        "propertyNames": {"pattern": TAG_KEY.pattern},
        "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": NO_NUL},
        "description": "keys are compared in lower case: two keys differing only in case are refused",
    }),
]


def _allowed_destination(url: AnyHttpUrl) -> AnyHttpUrl:
    try:
        check_url(str(url))
    except RefusedDestination as error:
        raise ValueError(str(error)) from None
    return url


WebhookUrl = Annotated[
    AnyHttpUrl,
    AfterValidator(_allowed_destination),
    WithJsonSchema({
        "type": "string", "format": "uri", "pattern": "^[hH][tT][tT][pP][sS]?://", "maxLength": 2083,
        "description": "never a link-local or cloud metadata address; private or loopback ones only when "
                       "SYNC_PIPELINE_ALLOW_PRIVATE_WEBHOOK_URLS is true",
    }),
]


class Organization(Strict):
    id: str = Field(min_length=1, max_length=255)
    display_name: str | None = None


class EndUser(Strict):
    id: str = Field(min_length=1, max_length=255)
    email: str | None = None
    display_name: str | None = None
    tags: Tags | None = None
    organization: Organization | None = None


class ImportBody(Lenient):
    provider_config_key: ProviderConfigKey
    connection_id: ConnectionId
    credentials: Credentials
    connection_config: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    webhook_url_override: WebhookUrl | None = None
    tags: Tags | None = None
    end_user: EndUser | None = None


class ListQuery(Lenient):
    connectionId: str | None = Field(None, min_length=1, max_length=255, pattern=NO_NUL)
    search: str | None = Field(None, min_length=1, max_length=255, pattern=NO_NUL)
    integrationId: Text | None = None
    endUserId: str | None = Field(None, min_length=1, max_length=255, pattern=NO_NUL)
    endUserOrganizationId: str | None = Field(None, min_length=1, max_length=255, pattern=NO_NUL)
    tags: Tags = Field(default_factory=dict)
    limit: int | None = Field(None, ge=1, le=MAX_PAGE)
    page: int = Field(0, ge=0)


class ConnectionQuery(Lenient):
    provider_config_key: ProviderConfigKey


class GetQuery(ConnectionQuery):
    force_refresh: bool = False  # refresh the token now
    refresh_token: bool = False  # include the refresh token in the answer


class PatchBody(Strict):
    tags: Tags | None = None
    end_user: EndUser | None = None
    webhook_url_override: WebhookUrl | None = None


class ConnectionPath(Lenient):
    connection_id: ConnectionId


class MetadataBody(Lenient):
    connection_id: ConnectionId | Annotated[list[ConnectionId], Field(min_length=1)]
    provider_config_key: ProviderConfigKey
    metadata: dict[str, Any]


class ConnectionErrorEntry(BaseModel):
    """Nango's `{type, log_id}` and our message: `auth` (a refused refresh) or `sync` (a partition's last run failed,
    `log_id` its Dagster run id)."""

    type: Literal["auth", "sync"]
    log_id: str
    message: str


class EndUserAnswer(BaseModel):
    id: str
    display_name: str | None
    email: str | None
    tags: dict[str, str] | None
    organization: dict[str, Any] | None


class ConnectionDetail(BaseModel):
    id: int
    connection_id: str
    provider_config_key: str
    provider: str
    connection_config: dict[str, Any]
    metadata: dict[str, Any]
    webhook_url_override: str | None
    created_at: str
    updated_at: str
    last_fetched_at: str | None
    errors: list[ConnectionErrorEntry]
    end_user: EndUserAnswer | None
    tags: dict[str, str]
    credentials: dict[str, Any]


class ConnectionSummary(BaseModel):
    id: int
    connection_id: str
    provider_config_key: str
    provider: str
    created: str
    metadata: dict[str, Any]
    errors: list[ConnectionErrorEntry]
    end_user: EndUserAnswer | None
    tags: dict[str, str]


class ConnectionList(BaseModel):
    connections: list[ConnectionSummary]


class Removed(BaseModel):
    partitions: int
    schedules: int
    records: int


class DeleteAnswer(BaseModel):
    success: bool
    deleted: Removed


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
        tags=body.tags,
        end_user=body.end_user.model_dump() if body.end_user else None,
    )
    stored = register_connection(call.services.instance, call.services.store, integration, connection)
    return detail(call, stored, with_refresh_token=False)


@endpoint(query=ListQuery, response=ConnectionList)
def list_connections(call: Call) -> dict[str, Any]:
    """List connections, oldest first, filtered (`search`, `tags[key]`, ...) and paged (`limit`, `page`) as Nango does."""
    query: ListQuery = call.parse_query(_with_tags(call))
    page = ConnectionPage(
        integrations=tuple(part.strip() for part in (query.integrationId or "").split(",") if part.strip()),
        connection_id=query.connectionId,
        search=query.search,
        tags=tuple(query.tags.items()),
        end_user_id=query.endUserId,
        end_user_organization_id=query.endUserOrganizationId,
        limit=query.limit or DEFAULT_LIMIT,
        page=query.page,
    )
    found = call.services.store.connections.summaries(page)  # nothing decrypted: an unreadable row cannot break it
    errors = call.services.store.connection_errors.of([(c.integration, c.connection_id) for c in found])
    return {"connections": [summary(c, errors[(c.integration, c.connection_id)]) for c in found]}


@endpoint(path=ConnectionPath, query=GetQuery, response=ConnectionDetail)
def get_connection(call: Call) -> dict[str, Any]:
    """The connection with its credentials, as Nango answers it (the caller holds the secret key).

    `force_refresh=true` refreshes the token now; the refresh token is left out unless `refresh_token=true`.
    409 `credentials_unreadable` when no configured key decrypts them: the message names the key problem.
    """
    try:
        connection = _existing(call)
    except CredentialsError as error:
        raise ApiError(409, "credentials_unreadable", str(error)) from None
    query: GetQuery = call.parse_query()
    if query.force_refresh:
        connection = _refreshed(call, connection)
    call.services.store.connections.touch_fetched(connection.integration, connection.connection_id)
    connection.last_fetched_at = to_iso(utcnow())
    return detail(call, connection, with_refresh_token=query.refresh_token)


@endpoint(path=ConnectionPath, query=ConnectionQuery, body=PatchBody, response=Success)
def patch_connection(call: Call) -> dict[str, Any]:
    """Change the tags, end user or webhook URL override of a connection (what is sent replaces what was stored)."""
    connection_id, integration = _named(call)
    body: PatchBody = call.parse_body()
    found = call.services.store.connections.set_profile(
        integration.name,
        connection_id,
        tags=body.tags,
        end_user=body.end_user.model_dump() if body.end_user else None,
        webhook_url_override=str(body.webhook_url_override) if body.webhook_url_override else None,
    )
    if not found:
        raise _unknown(integration.name, connection_id)
    return {"success": True}


@endpoint(path=ConnectionPath, query=ConnectionQuery, response=DeleteAnswer)
def remove_connection(call: Call) -> dict[str, Any]:
    """Delete the connection with its partitions (every variant), schedules and records, and say how many.

    Its secrets need not be readable."""
    connection_id, integration = _named(call)
    removed = delete_connection(call.services.instance, call.services.store, integration, connection_id)
    if removed is None:
        raise _unknown(integration.name, connection_id)
    return {"success": True, "deleted": removed}


def _refreshed(call: Call, connection: Connection) -> Connection:
    integration = call.services.integration(connection.integration)
    try:
        return CredentialKeeper(call.services.store, integration, connection).force()
    except SyncError as error:
        raise ApiError(400, "invalid_credentials", str(error)) from None


def _with_tags(call: Call) -> dict[str, Any]:
    """The query, with Nango's `tags[key]=value` parameters gathered into `tags`."""
    query: dict[str, Any] = {}
    tags: dict[str, str] = {}
    for name, value in call.query.multi_items():
        if name.startswith("tags[") and name.endswith("]"):
            tags[name[5:-1]] = value
        else:
            query[name] = value
    if tags:
        query["tags"] = tags
    return query


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


def _named(call: Call) -> tuple[str, Integration]:
    connection_id = call.parse_path().connection_id
    return connection_id, call.services.integration(call.parse_query().provider_config_key)


def _existing(call: Call) -> Connection:
    connection_id, integration = _named(call)
    connection = call.services.store.connections.get(integration.name, connection_id)
    if connection is None:
        raise _unknown(integration.name, connection_id)
    return connection


def _unknown(integration: str, connection_id: str) -> ApiError:
    return not_found("unknown_connection", f"there is no connection {connection_id!r} of {integration!r}")


def summary(connection: StoredSummary, errors: list[ConnectionProblem]) -> dict[str, Any]:
    return {
        "id": connection.id,
        "connection_id": connection.connection_id,
        "provider_config_key": connection.integration,
        "provider": connection.integration,
        "created": connection.created_at,
        "metadata": connection.metadata,
        "errors": [public_error(error) for error in errors],
        "end_user": public_end_user(connection.end_user),
        "tags": connection.tags or {},
    }


def detail(call: Call, connection: Connection, *, with_refresh_token: bool) -> dict[str, Any]:
    """The connection as `GET /connection/{id}` answers it; the refresh token only when asked for."""
    errors = call.services.store.connection_errors.of([(connection.integration, connection.connection_id)])
    credentials = dict(connection.credentials)
    if not with_refresh_token:
        credentials.pop("refresh_token", None)
    return {
        "id": connection.id,
        "connection_id": connection.connection_id,
        "provider_config_key": connection.integration,
        "provider": connection.integration,
        "connection_config": connection.config,
        "metadata": connection.metadata,
        "webhook_url_override": connection.webhook_url_override,
        "created_at": connection.created_at,
        "updated_at": connection.updated_at,
        "last_fetched_at": connection.last_fetched_at,
        "errors": [public_error(e) for e in errors[(connection.integration, connection.connection_id)]],
        "end_user": public_end_user(connection.end_user),
        "tags": connection.tags or {},
        "credentials": credentials,
    }


def public_error(error: ConnectionProblem) -> dict[str, str]:
    """Nango's `{type, log_id}`, with our message: `log_id` is the failed run's Dagster run id (auth: "")."""
    return {"type": error.kind, "log_id": error.log_id, "message": error.message}


def public_end_user(end_user: dict[str, Any] | None) -> dict[str, Any] | None:
    """Nango's ApiEndUser: every field present, null when unknown."""
    if not end_user:
        return None
    return {
        "id": end_user["id"],
        "display_name": end_user.get("display_name"),
        "email": end_user.get("email"),
        "tags": end_user.get("tags"),
        "organization": end_user.get("organization"),
    }


def routes() -> list[Route]:
    out = []
    for prefix in ("/connections", "/connection"):  # Nango's old singular paths, still sent by older clients
        out += [
            Route(f"{prefix}/metadata", replace_metadata, methods=["POST"]),
            Route(f"{prefix}/metadata", merge_metadata, methods=["PATCH"]),
            Route(f"{prefix}/{{connection_id}}", get_connection, methods=["GET"]),
            Route(f"{prefix}/{{connection_id}}", patch_connection, methods=["PATCH"]),
            Route(f"{prefix}/{{connection_id}}", remove_connection, methods=["DELETE"]),
        ]
    return [
        Route("/connections", import_connection, methods=["POST"]),
        Route("/connections", list_connections, methods=["GET"]),
        *out,
    ]
