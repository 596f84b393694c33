"""The records API: a connection's records of one model, page by page after a cursor, and pruning."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from starlette.responses import Response
from starlette.routing import Route

from sync_pipeline.api.endpoint import Call, endpoint
from sync_pipeline.api.errors import invalid, not_found
from sync_pipeline.api.fields import ConnectionId, Lenient, ProviderConfigKey, Strict, Variant
from sync_pipeline.sdk.declaration import MODEL_PATTERN, Integration
from sync_pipeline.store import (
    ACTIONS,
    ChangeQuery,
    MalformedCursor,
    StoredRecord,
    StreamKey,
    decode_cursor,
    encode_cursor,
    to_iso,
    utcnow,
)
from sync_pipeline.vocabulary import BASE_VARIANT

MAX_LIMIT = 10_000
MAX_IDS = 100


def _actions(value: Any) -> Any:
    """`filter=added,Updated` -> ("ADDED", "UPDATED"): one or two actions, any case."""
    if not isinstance(value, str):
        return value
    actions = tuple(dict.fromkeys(part.strip().upper() for part in value.split(",")))
    if not 1 <= len(actions) <= 2 or any(action not in ACTIONS for action in actions):
        raise ValueError("filter must be added, updated or deleted, or two of them joined by a comma")
    return actions


Model = Annotated[str, Field(pattern=MODEL_PATTERN.pattern, max_length=255)]
Actions = Annotated[
    tuple[str, ...],
    BeforeValidator(_actions),
    WithJsonSchema({"type": "string", "description": "added, updated, deleted, or two joined by a comma; any case"}),
]


class StreamHeaders(Lenient):
    connection_id: ConnectionId = Field(alias="connection-id")
    provider_config_key: ProviderConfigKey = Field(alias="provider-config-key")


class RecordsQuery(Strict):
    model: Model
    variant: Variant = BASE_VARIANT
    cursor: str | None = None
    limit: int = Field(100, ge=1, le=MAX_LIMIT)
    filter: Actions = ()
    modified_after: datetime | None = None
    delta: datetime | None = Field(None, deprecated=True, description="the old name of modified_after")
    ids: list[Annotated[str, Field(min_length=1, max_length=255)]] = Field(default_factory=list, max_length=MAX_IDS)


class PruneBody(Lenient):
    model: Model
    variant: Variant = BASE_VARIANT
    until_cursor: str
    limit: int = Field(1000, ge=1, le=MAX_LIMIT)


class NangoMetadata(BaseModel):
    first_seen_at: str
    last_modified_at: str
    last_action: Literal["ADDED", "UPDATED", "DELETED"]
    deleted_at: str | None
    pruned_at: str | None
    cursor: str


class Record(BaseModel):
    """A stored record (its own fields too), with its id as a string and `_nango_metadata`."""

    model_config = ConfigDict(extra="allow")

    id: str
    nango_metadata: NangoMetadata = Field(alias="_nango_metadata")


class RecordsPage(BaseModel):
    records: list[Record]
    next_cursor: str | None


class PruneResult(BaseModel):
    count: int
    has_more: bool


@endpoint(headers=StreamHeaders, query=RecordsQuery, response=RecordsPage)
def list_records(call: Call) -> Response:
    """Changed records after a cursor, in the order of their last change."""
    headers: StreamHeaders = call.parse_headers()
    query: RecordsQuery = call.parse_query(call.query_dict(repeatable=frozenset({"ids"})))
    integration = call.services.integration(headers.provider_config_key)
    key = _stream(integration, headers.connection_id, query.model, query.variant)
    since = query.modified_after or query.delta
    rows = call.services.store.records.changes(
        key,
        ChangeQuery(
            after_seq=_seq(query.cursor, "query", "cursor") if query.cursor else 0,
            limit=query.limit + 1,  # one more than asked tells whether there is a next page
            actions=query.filter,
            modified_after=to_iso(since) if since else None,
            ids=query.ids,
        ),
    )
    if not rows:
        # Records exist only for existing connections, so an empty page is the only one needing this lookup.
        _connection_exists(call, integration, headers.connection_id)
    page = rows[: query.limit]
    next_cursor = f'"{encode_cursor(page[-1].seq)}"' if len(rows) > query.limit else "null"
    # Built as text from the stored JSON: parsing and re-serialising every record would dominate the page time.
    body = '{"records":[' + ",".join(map(record_json, page)) + '],"next_cursor":' + next_cursor + "}"
    return Response(body, media_type="application/json")


@endpoint(headers=StreamHeaders, body=PruneBody, response=PruneResult)
def prune_records(call: Call) -> dict[str, Any]:
    """Empty the payload of records up to a cursor, keeping their metadata."""
    headers: StreamHeaders = call.parse_headers()
    body: PruneBody = call.parse_body()
    integration = call.services.integration(headers.provider_config_key)
    key = _stream(integration, headers.connection_id, body.model, body.variant)
    until = _seq(body.until_cursor, "body", "until_cursor")
    _connection_exists(call, integration, headers.connection_id)
    count, has_more = call.services.store.records.prune(key, until, utcnow(), limit=body.limit)
    return {"count": count, "has_more": has_more}


def record_json(row: StoredRecord) -> str:
    """One record as JSON text: the stored object with its id as a string, plus `_nango_metadata`."""
    meta = (
        f'"_nango_metadata":{{"first_seen_at":"{row.first_seen_at}","last_modified_at":"{row.last_modified_at}",'
        f'"last_action":"{row.last_action}","deleted_at":{_text(row.deleted_at)},'
        f'"pruned_at":{_text(row.pruned_at)},"cursor":"{encode_cursor(row.seq)}"}}'
    )
    payload = row.payload
    if payload is None:  # pruned: only the id and metadata are left
        return f'{{"id":{json.dumps(row.record_id)},{meta}}}'
    if not payload.startswith('{"id":"'):
        # The id is not the first key, or not a string (an int id): the one case worth a parse.
        data = json.loads(payload)
        data["id"] = row.record_id
        payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"{payload[:-1]},{meta}}}"


def _text(value: str | None) -> str:
    # Timestamps are fixed-format ASCII (see store.database.to_iso): nothing to escape.
    return "null" if value is None else f'"{value}"'


def _stream(integration: Integration, connection_id: str, model: str, variant: str) -> StreamKey:
    if not any(model in sync.model_names for sync in integration.syncs.values()):
        raise not_found("not_found", f"integration {integration.name!r} has no model {model!r}")
    return StreamKey(integration.name, connection_id, model, variant)


def _seq(cursor: str, where: str, name: str) -> int:
    try:
        return decode_cursor(cursor)
    except MalformedCursor as error:
        raise invalid(where, name, str(error), code="invalid_cursor") from None  # type: ignore[arg-type]


def _connection_exists(call: Call, integration: Integration, connection_id: str) -> None:
    if call.services.store.connections.get(integration.name, connection_id) is None:
        raise not_found("unknown_connection", f"there is no connection {connection_id!r} of {integration.name!r}")


def routes() -> list[Route]:
    return [
        Route("/records", list_records, methods=["GET"]),
        Route("/records/prune", prune_records, methods=["PATCH"]),
    ]
