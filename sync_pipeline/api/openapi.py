"""`GET /openapi.json`: the OpenAPI 3 document of the API (a test checks it lists every route of the app)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sync_pipeline.api.endpoint import Call, endpoint
from sync_pipeline.api.records import MAX_IDS, MAX_LIMIT
from sync_pipeline.keys import CONNECTION_ID_PATTERN, VARIANT_PATTERN
from sync_pipeline.sdk.declaration import MODEL_PATTERN
from sync_pipeline.sdk.frequency import UNIT_NAMES

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


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)


# The names the server validates, as exactly as JSON Schema says them (the fuzz test holds both to each other).
CONNECTION_ID = {"type": "string", "pattern": CONNECTION_ID_PATTERN.pattern, "not": {"enum": [".", ".."]}}
# Query and path values never hold a NUL character (PostgreSQL cannot compare text holding one): a 400.
TEXT = {"type": "string", "pattern": "^[^\\x00]*$"}
PROVIDER_CONFIG_KEY = {**TEXT, "minLength": 1, "maxLength": 255}
_NOT_BASE = f"(?!{_any_case('base')}$)"
VARIANT = {"type": "string", "pattern": f"^(base|{_NOT_BASE}{VARIANT_PATTERN.pattern[1:-1]})$", "default": "base"}
NEW_VARIANT = {"type": "string", "pattern": f"^{_NOT_BASE}{VARIANT_PATTERN.pattern[1:-1]}$"}
MODEL = {"type": "string", "pattern": MODEL_PATTERN.pattern, "maxLength": 255}
SYNC_NAME = {"type": "string", "minLength": 1}
_ACTION = "(" + "|".join(_any_case(a) for a in ("added", "updated", "deleted")) + ")"
FILTER = {"type": "string", "pattern": rf"^\s*{_ACTION}\s*(,\s*{_ACTION}\s*)?$"}
_UNIT = "(" + "|".join(_any_case(unit) for unit in sorted(UNIT_NAMES, key=len, reverse=True)) + ")"
_AMOUNT = rf"([0-9]+(\.[0-9]+)?|{_any_case('half')}|{_any_case('an')}|{_any_case('a')})"
FREQUENCY = {
    "type": "string",
    "nullable": True,
    "pattern": rf"^\s*({_any_case('every')}\s+)?({_AMOUNT}\s*)?{_UNIT}\s*$",
    "description": "every 5 minutes, every hour, 30m, 1h, 1d...: from 30 seconds to 365 days",
}
# pydantic's AnyHttpUrl: http(s), a host, at most 2,083 characters. Link-local and metadata addresses are refused,
# and private or loopback ones unless SYNC_PIPELINE_ALLOW_PRIVATE_WEBHOOK_URLS is true (see docs/reliability.md).
WEBHOOK_URL = {"type": "string", "format": "uri", "pattern": "^[hH][tT][tT][pP][sS]?://", "maxLength": 2083}
NON_EMPTY = {"type": "string", "minLength": 1}
RECORD_ID = {**TEXT, "minLength": 1, "maxLength": 255}
MOMENT = {"type": "string", "format": "date-time", "description": "ISO 8601; its UTC form must fall in years 1-9999"}
CURSOR = {**TEXT, "maxLength": 64, "description": "a record's `_nango_metadata.cursor` or a `next_cursor`"}


def _param(name: str, where: str = "query", required: bool = False, schema: dict | None = None, **extra: Any) -> dict:
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema or TEXT, **extra}


STREAM_HEADERS = [_param("Connection-Id", "header", True, CONNECTION_ID),
                  _param("Provider-Config-Key", "header", True, PROVIDER_CONFIG_KEY)]
SYNC_REF = {"oneOf": [
    {"type": "string", "pattern": f"^[^:]+(::{VARIANT['pattern'][1:-1]})?$", "description": "name or name::variant"},
    {**_obj(("name",), name=SYNC_NAME, variant=VARIANT), "additionalProperties": False},
]}
SELECTION = _obj(
    ("provider_config_key",),
    syncs={"type": "array", "items": SYNC_REF},
    provider_config_key=PROVIDER_CONFIG_KEY,
    connection_id=CONNECTION_ID,
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
        connection_id={"oneOf": [CONNECTION_ID, {"type": "array", "items": CONNECTION_ID, "minItems": 1}]},
        provider_config_key=PROVIDER_CONFIG_KEY,
        metadata=ANY_OBJ,
    )
    key_query = [_param("connection_id", "path", schema=CONNECTION_ID),
                 _param("provider_config_key", required=True, schema=PROVIDER_CONFIG_KEY),
                 _param("force_refresh", description="ignored"), _param("refresh_token", description="ignored")]
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
        _param("model", required=True, schema=MODEL),
        _param("variant", schema=VARIANT),
        _param("cursor", schema=CURSOR),
        _param("limit", schema={"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 100}),
        _param("filter", schema=FILTER, description="added, updated, deleted, or two joined by a comma; any case"),
        _param("modified_after", schema=MOMENT),
        _param("delta", schema=MOMENT, deprecated=True),
        _param("ids", schema={"type": "array", "items": RECORD_ID, "maxItems": MAX_IDS}, style="form", explode=True),
    ]
    page = _obj(("records", "next_cursor"), records={"type": "array", "items": _ref("Record")}, next_cursor=NULLABLE_STR)
    prune = _obj(("model", "until_cursor"), model=MODEL, variant=VARIANT, until_cursor=CURSOR,
                 limit={"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 1000})
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
        sync_name=SYNC_NAME, sync_variant=VARIANT, provider_config_key=PROVIDER_CONFIG_KEY, connection_id=CONNECTION_ID,
        frequency=FREQUENCY,
    )
    variant_body = _obj(("provider_config_key", "connection_id"), provider_config_key=PROVIDER_CONFIG_KEY,
                        connection_id=CONNECTION_ID)
    variant_params = [_param("name", "path"), _param("variant", "path", schema=NEW_VARIANT)]
    return {
        "/sync/trigger": {"post": _operation("Queue a run of syncs now", SUCCESS, body=trigger)},
        "/sync/pause": {"post": _operation("Pause the schedule of syncs", SUCCESS, body=SELECTION)},
        "/sync/start": {"post": _operation("Resume the schedule of syncs", SUCCESS, body=SELECTION)},
        "/sync/status": {
            "get": _operation(
                "Status of sync partitions",
                _obj(("syncs",), syncs={"type": "array", "items": _ref("SyncStatus")}),
                params=[_param("syncs", required=True, description="* or a comma list of name or name::variant"),
                        _param("provider_config_key", required=True, schema=PROVIDER_CONFIG_KEY),
                        _param("connection_id", schema=CONNECTION_ID)],
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
                               SUCCESS, params=[_param("provider_config_key", "path", schema=PROVIDER_CONFIG_KEY)], body={},
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
        "/openapi.json": {"get": _operation("This document", ANY_OBJ, errors=(401,))},
    }


def _schemas() -> dict[str, Any]:
    credentials = {
        "oneOf": [
            _obj(("type", "access_token"), type={"enum": ["OAUTH2"]}, access_token=NON_EMPTY),
            _obj(("type", "apiKey"), type={"enum": ["API_KEY"]}, apiKey=NON_EMPTY),
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
            provider_config_key=PROVIDER_CONFIG_KEY, connection_id=CONNECTION_ID, credentials=credentials,
            connection_config=ANY_OBJ, metadata=ANY_OBJ, webhook_url_override={**WEBHOOK_URL, "nullable": True},
        ),
        "Connection": _obj(
            id=INT, connection_id=STR, provider_config_key=STR, provider=STR, connection_config=ANY_OBJ,
            metadata=ANY_OBJ, created_at=STR, updated_at=STR, last_fetched_at=NULLABLE_STR, credentials=ANY_OBJ,
        ),
        "ConnectionSummary": _obj(
            id=INT, connection_id=STR, provider_config_key=STR, provider=STR, created=STR, metadata=ANY_OBJ,
            errors={"type": "array", "items": {}}, end_user={"nullable": True}, tags=ANY_OBJ,
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
        ),
    }


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    """The OpenAPI document. Every path is also accepted with a trailing slash."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "sync_pipeline HTTP API",
            "version": "1",
            "description": "Nango's HTTP dialect: see docs/http-api.md. Paths are also accepted with a trailing slash.",
        },
        "components": {
            "securitySchemes": {"secretKey": {"type": "http", "scheme": "bearer"}},
            "schemas": _schemas(),
        },
        "security": [{"secretKey": []}],
        "paths": {**_connection_paths(), **_records_paths(), **_sync_paths(), **_webhook_paths()},
    }


@endpoint
def openapi_document(_call: Call) -> dict[str, Any]:
    return document()
