"""`GET /openapi.json`: the OpenAPI 3 document of the API (a test checks it lists every route of the app)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sync_pipeline.api.endpoint import Call, endpoint
from sync_pipeline.api.service import package_version

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: tuple[str, ...] = (), **properties: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


STR, INT, BOOL, ANY_OBJ = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}, {"type": "object"}
NULLABLE_STR = {"type": "string", "nullable": True}
SUCCESS = _obj(("success",), success=BOOL)


def _param(name: str, where: str = "query", required: bool = False, schema: dict | None = None, **extra: Any) -> dict:
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema or STR, **extra}


STREAM_HEADERS = [_param("Connection-Id", "header", True), _param("Provider-Config-Key", "header", True)]
SYNC_REF = {"oneOf": [STR, _obj(("name",), name=STR, variant=STR)]}
SELECTION = _obj(
    ("provider_config_key",),
    syncs={"type": "array", "items": SYNC_REF},
    provider_config_key=STR,
    connection_id=STR,
)


def _operation(summary: str, response: dict, *, status: int = 200, body: dict | None = None, params: list | None = None,
               errors: tuple[int, ...] = (400, 401, 404), security: bool = True) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": params or [],
        "responses": {
            str(status): {"description": "success", "content": {JSON: {"schema": response}}},
            **{str(code): {"description": "error", "content": {JSON: {"schema": _ref("Error")}}} for code in (*errors, 413)},
        },
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
    if not security:
        operation["security"] = []
    return operation


def _connection_paths() -> dict[str, Any]:
    metadata_body = _obj(
        ("connection_id", "provider_config_key", "metadata"),
        connection_id={"oneOf": [STR, {"type": "array", "items": STR}]},
        provider_config_key=STR,
        metadata=ANY_OBJ,
    )
    key_query = [_param("connection_id", "path"), _param("provider_config_key", required=True),
                 _param("force_refresh", schema=BOOL), _param("refresh_token", schema=BOOL)]
    singular_and_plural: dict[str, Any] = {}
    for prefix in ("/connections", "/connection"):
        singular_and_plural[f"{prefix}/metadata"] = {
            "post": _operation("Replace the metadata of connections", metadata_body, status=201, body=metadata_body),
            "patch": _operation("Merge top-level keys into the metadata of connections", metadata_body, body=metadata_body),
        }
        singular_and_plural[f"{prefix}/{{connection_id}}"] = {
            "get": _operation("A connection, with its credentials", _ref("Connection"), params=key_query),
            "delete": _operation("Delete a connection, its partitions, schedules and records", SUCCESS, params=key_query[:2]),
        }
    return {
        "/connections": {
            "post": _operation("Import a connection (create or update)", _ref("Connection"), body=_ref("ImportConnection")),
            "get": _operation(
                "List connections",
                _obj(("connections",), connections={"type": "array", "items": _ref("ConnectionSummary")}),
                params=[_param("connectionId"), _param("integrationId")],
            ),
        },
        **singular_and_plural,
    }


def _records_paths() -> dict[str, Any]:
    query = [
        _param("model", required=True, schema={"type": "string", "pattern": "^[A-Z][a-zA-Z0-9_-]+$"}),
        _param("variant"),
        _param("cursor"),
        _param("limit", schema={"type": "integer", "minimum": 1, "maximum": 10000, "default": 100}),
        _param("filter", description="added, updated, deleted, or two joined by a comma; any case"),
        _param("modified_after", schema={"type": "string", "format": "date-time"}),
        _param("delta", schema={"type": "string", "format": "date-time"}, deprecated=True),
        _param("ids", schema={"type": "array", "items": STR, "maxItems": 100}, style="form", explode=True),
    ]
    page = _obj(("records", "next_cursor"), records={"type": "array", "items": _ref("Record")}, next_cursor=NULLABLE_STR)
    prune = _obj(("model", "until_cursor"), model=STR, variant=STR, until_cursor=STR, limit=INT)
    return {
        "/records": {"get": _operation("Changed records after a cursor, oldest change first", page, params=STREAM_HEADERS + query)},
        "/records/prune": {
            "patch": _operation("Empty the payload of records up to a cursor", _obj(count=INT, has_more=BOOL),
                                params=STREAM_HEADERS, body=prune)
        },
    }


def _sync_paths() -> dict[str, Any]:
    trigger = {
        "allOf": [
            SELECTION,
            _obj(
                opts=_obj(reset=BOOL, emptyCache=BOOL),
                sync_mode={"type": "string", "enum": ["incremental", "full_refresh", "full_refresh_and_clear_cache"]},
                full_resync=BOOL,
            ),
        ]
    }
    frequency = _obj(
        ("sync_name", "provider_config_key", "connection_id", "frequency"),
        sync_name=STR, sync_variant=STR, provider_config_key=STR, connection_id=STR, frequency=NULLABLE_STR,
    )
    variant_body = _obj(("provider_config_key", "connection_id"), provider_config_key=STR, connection_id=STR)
    variant_params = [_param("name", "path"), _param("variant", "path")]
    return {
        "/sync/trigger": {"post": _operation("Queue a run of syncs now", SUCCESS, body=trigger)},
        "/sync/pause": {"post": _operation("Pause the schedule of syncs", SUCCESS, body=SELECTION)},
        "/sync/start": {"post": _operation("Resume the schedule of syncs", SUCCESS, body=SELECTION)},
        "/sync/status": {
            "get": _operation(
                "Status of sync partitions",
                _obj(("syncs",), syncs={"type": "array", "items": _ref("SyncStatus")}),
                params=[_param("syncs", required=True, description="* or a comma list of name or name::variant"),
                        _param("provider_config_key", required=True), _param("connection_id")],
            )
        },
        "/sync/update-connection-frequency": {
            "put": _operation("Set (or, with null, reset) a partition's frequency", _obj(frequency=STR), body=frequency)
        },
        "/sync/{name}/variant/{variant}": {
            "post": _operation("Create a variant of a sync for a connection",
                               _obj(("id", "name", "variant"), id=STR, name=STR, variant=STR), params=variant_params,
                               body=variant_body),
            "delete": _operation("Delete a variant with its schedule, checkpoint and records", SUCCESS,
                                 params=variant_params, body=variant_body),
        },
    }


def _webhook_paths() -> dict[str, Any]:
    delivery = _obj(
        delivery_id=STR, url=STR, status={"type": "string", "enum": ["pending", "delivered", "failed"]},
        attempts=INT, next_attempt_at=STR, last_error=NULLABLE_STR, created_at=STR, updated_at=STR, body={},
    )
    return {
        "/webhook/{provider_config_key}": {
            "post": _operation("Receive a provider's webhook (authenticated by the integration, e.g. a signature)",
                               SUCCESS, params=[_param("provider_config_key", "path")], body=ANY_OBJ,
                               errors=(400, 401, 404), security=False)
        },
        "/webhook-deliveries": {
            "get": _operation(
                "The log of webhooks sent to the app",
                _obj(("deliveries",), deliveries={"type": "array", "items": delivery}),
                params=[_param("status", schema={"type": "string", "enum": ["pending", "delivered", "failed"]}),
                        _param("limit", schema={"type": "integer", "minimum": 1, "maximum": 1000, "default": 100})],
            )
        },
        "/webhook-deliveries/{delivery_id}/retry": {
            "post": _operation("Send a failed (or pending) delivery again now, with a fresh series of attempts",
                               delivery, params=[_param("delivery_id", "path")], errors=(400, 401, 404))
        },
        "/openapi.json": {"get": _operation("This document (no key needed)", ANY_OBJ, errors=(), security=False)},
        "/": {"get": _operation("Name, version and links (no key needed)", ANY_OBJ, errors=(), security=False)},
        "/health": {
            "get": _operation("200 when the database answers, 503 when it does not (no key needed)",
                              _obj(status=STR, database=STR, version=STR), errors=(503,), security=False)
        },
    }


def _schemas() -> dict[str, Any]:
    credentials = {
        "oneOf": [
            _obj(("type", "access_token"), type={"enum": ["OAUTH2"]}, access_token=STR, refresh_token=STR, expires_at=STR),
            _obj(("type", "apiKey"), type={"enum": ["API_KEY"]}, apiKey=STR),
            _obj(("type", "username", "password"), type={"enum": ["BASIC"]}, username=STR, password=STR),
            _obj(("type",), type={"enum": ["NONE"]}),
        ]
    }
    metadata = _obj(
        first_seen_at=STR, last_modified_at=STR,
        last_action={"type": "string", "enum": ["ADDED", "UPDATED", "DELETED"]},
        deleted_at=NULLABLE_STR, pruned_at=NULLABLE_STR, cursor=STR,
    )
    counts = _obj(added=INT, updated=INT, deleted=INT)
    return {
        "Error": _obj(
            ("error",),
            error=_obj(("code", "message"), code=STR, message=STR,
                       errors={"type": "array", "items": _obj(code=STR, message=STR, path={"type": "array", "items": {}})}),
        ),
        "ImportConnection": _obj(
            ("provider_config_key", "connection_id", "credentials"),
            provider_config_key=STR, connection_id=STR, credentials=credentials,
            connection_config=ANY_OBJ, metadata=ANY_OBJ, webhook_url_override={"type": "string", "format": "uri"},
        ),
        "Connection": _obj(
            id=INT, connection_id=STR, provider_config_key=STR, provider=STR, connection_config=ANY_OBJ,
            metadata=ANY_OBJ, created_at=STR, updated_at=STR, last_fetched_at=NULLABLE_STR, credentials=ANY_OBJ,
        ),
        "ConnectionSummary": _obj(
            id=INT, connection_id=STR, provider_config_key=STR, provider=STR, created=STR, metadata=ANY_OBJ,
            errors={"type": "array", "items": _obj(type=STR, log_id=STR, sync_name=STR, sync_variant=STR,
                                                   error_type=STR, message=STR, failedAt=NULLABLE_STR)},
            end_user={"nullable": True}, tags=ANY_OBJ,
        ),
        "Record": {
            "type": "object",
            "required": ["id", "_nango_metadata"],
            "properties": {"id": STR, "_nango_metadata": metadata},
            "additionalProperties": True,
        },
        "SyncStatus": _obj(
            id=STR, connection_id=STR, name=STR, variant=STR, type=STR,
            status={"type": "string", "enum": ["RUNNING", "PAUSED", "STOPPED", "SUCCESS", "ERROR"]},
            finishedAt=NULLABLE_STR, nextScheduledSyncAt=NULLABLE_STR, frequency=STR,
            latestResult={"type": "object", "additionalProperties": counts}, latestExecutionStatus=STR,
            recordCount={"type": "object", "additionalProperties": INT}, checkpoint={"type": "object", "nullable": True},
            error={**_obj(type=STR, message=STR, run_id=STR, failedAt=NULLABLE_STR), "nullable": True},
        ),
    }


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    """The OpenAPI document. Every path is also accepted with a trailing slash."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "sync_pipeline HTTP API",
            "version": package_version(),
            "description": "Nango's HTTP dialect; the reference with examples is docs/http-api.md in the repository. "
            "Paths are also accepted with a trailing slash.",
        },
        "components": {
            "securitySchemes": {"secretKey": {"type": "http", "scheme": "bearer"}},
            "schemas": _schemas(),
        },
        "security": [{"secretKey": []}],
        "paths": {**_connection_paths(), **_records_paths(), **_sync_paths(), **_webhook_paths()},
    }


# Readable without the key: a client generator or a person must be able to learn what the API is first.
@endpoint(auth=False)
def openapi_document(_call: Call) -> dict[str, Any]:
    return document()
