"""Sync control: trigger, pause, start, status, frequency, variants. Control only writes the schedule table;
the scheduling sensor reads it each tick and launches the runs."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema
from starlette.routing import Route

from sync_pipeline.api.endpoint import Call, Services, endpoint
from sync_pipeline.api.errors import ApiError, invalid, not_found
from sync_pipeline.api.fields import (
    NEW_VARIANT_SCHEMA,
    VARIANT_SCHEMA,
    ConnectionId,
    Lenient,
    ProviderConfigKey,
    Strict,
    Success,
    Text,
    Variant,
    any_case,
)
from sync_pipeline.api.status import SyncStatus, partition_status
from sync_pipeline.keys import InvalidPartitionKey, make_partition_key
from sync_pipeline.orchestration.assets import partition_id
from sync_pipeline.orchestration.cancellation import cancel_partition_runs
from sync_pipeline.orchestration.lifecycle import add_partition, remove_partition, variant_name
from sync_pipeline.sdk.declaration import Integration, SyncDefinition
from sync_pipeline.sdk.frequency import UNIT_NAMES, InvalidFrequency, read_frequency
from sync_pipeline.store import PARTITION_CAPPED, PARTITION_EXISTS, PartitionRow, to_iso, utcnow
from sync_pipeline.vocabulary import (
    BASE_VARIANT,
    MODE_CLEAR_CACHE,
    MODE_FULL_REFRESH,
    MODE_INCREMENTAL,
    RESET_MODES,
    RunModeName,
)

MAX_VARIANTS = 100  # per sync and connection, the base variant counted


def _sync_ref(value: Any) -> Any:
    """`"issues"`, `"issues::acme__web"` or `{"name": "issues", "variant": "acme__web"}`."""
    if isinstance(value, str):
        name, _, variant = value.partition("::")
        return {"name": name, "variant": variant or BASE_VARIANT}
    return value


class SyncRef(Strict):
    name: str = Field(min_length=1)
    variant: Variant = BASE_VARIANT


def _status_syncs(value: Any) -> Any:
    """The query form: `*` (every sync) or a comma-separated list."""
    if isinstance(value, str):
        return [] if value.strip() == "*" else [part.strip() for part in value.split(",") if part.strip()]
    return value


# `name` or `name::variant` (a name holding `::` cannot be spelled this way; the object form has no such limit).
_VARIANT = VARIANT_SCHEMA["pattern"][1:-1]
_REF_TEXT = {"type": "string", "pattern": f"^[^:]+(::({_VARIANT})?)?$"}
_REF_OBJECT = {
    "type": "object",
    "properties": {"name": {"type": "string", "minLength": 1}, "variant": VARIANT_SCHEMA},
    "required": ["name"],
    "additionalProperties": False,
}
SyncRefs = list[
    Annotated[SyncRef, BeforeValidator(_sync_ref), WithJsonSchema({"oneOf": [_REF_TEXT, _REF_OBJECT]})]
]
# Inside the comma list a variant ends at a comma, not at the end of the text.
_LISTED_VARIANT = rf"base|(?!{any_case('base')}\s*(,|$))[A-Za-z0-9_-]{{1,255}}"
_QUERY_REF = rf"\s*[^,:\x00\s][^,:\x00]*(::({_LISTED_VARIANT})?)?\s*"
_UNIT = "(" + "|".join(any_case(unit) for unit in sorted(UNIT_NAMES, key=len, reverse=True)) + ")"
_AMOUNT = rf"([0-9]+(\.[0-9]+)?|{any_case('half')}|{any_case('an')}|{any_case('a')})"
_CRON = rf"{any_case('cron')}:\s*\S+(\s+\S+){{4}}"
Frequency = Annotated[
    str,
    WithJsonSchema({
        "type": "string",
        "pattern": rf"^\s*(({any_case('every')}\s+)?({_AMOUNT}\s*)?{_UNIT}|{_CRON})\s*$",
        "description": "every 5 minutes, every hour, 30m, 1h, 1d...: from 30 seconds to 365 days; "
        "or a cron expression in UTC, `cron: 0 * * * *`",
    }),
]


class Selection(Lenient):
    """Which sync partitions a request is about; an empty `syncs` means all of them."""

    syncs: SyncRefs = Field(default_factory=list)
    provider_config_key: ProviderConfigKey
    connection_id: ConnectionId | None = None


class StatusQuery(Selection):
    syncs: Annotated[
        SyncRefs,
        BeforeValidator(_status_syncs),
        WithJsonSchema({
            "type": "string",
            "pattern": rf"^(\s*\*\s*|({_QUERY_REF})?(,({_QUERY_REF})?)*)$",
            "description": "* or a comma list of name or name::variant",
        }),
    ]


class TriggerOpts(Lenient):
    reset: bool = False
    emptyCache: bool = False


class TriggerBody(Selection):
    opts: TriggerOpts = Field(default_factory=TriggerOpts)
    sync_mode: RunModeName | None = None
    full_resync: bool = False

    @property
    def mode(self) -> str:
        if self.opts.emptyCache or self.sync_mode == MODE_CLEAR_CACHE:
            return MODE_CLEAR_CACHE
        if self.opts.reset or self.full_resync or self.sync_mode == MODE_FULL_REFRESH:
            return MODE_FULL_REFRESH
        return MODE_INCREMENTAL


class FrequencyBody(Lenient):
    sync_name: str = Field(min_length=1)
    sync_variant: Variant = BASE_VARIANT
    provider_config_key: ProviderConfigKey
    connection_id: ConnectionId
    frequency: Frequency | None


class VariantBody(Lenient):
    provider_config_key: ProviderConfigKey
    connection_id: ConnectionId


def with_headers(call: Call, data: Any) -> Any:
    """`provider_config_key` and `connection_id` may come as headers; the body's own values win."""
    if not isinstance(data, dict):
        return data  # parse() reports that it is not an object
    from_headers = {
        "provider_config_key": call.headers.get("provider-config-key"),
        "connection_id": call.headers.get("connection-id"),
    }
    return {**{k: v for k, v in from_headers.items() if v}, **data}


class StatusList(BaseModel):
    syncs: list[SyncStatus]


class EffectiveFrequency(BaseModel):
    frequency: str


class CreatedVariant(BaseModel):
    id: str
    name: str
    variant: str


class VariantPath(Lenient):
    name: Text
    variant: Annotated[str, WithJsonSchema(NEW_VARIANT_SCHEMA)]  # checked by `_variant`: 400 invalid_variant


Target = tuple[SyncDefinition, PartitionRow]


def select_partitions(services: Services, selection: Selection) -> list[Target]:
    """The partitions a selection names: 404 for an unknown integration, connection, sync or variant."""
    integration = services.integration(selection.provider_config_key)
    if selection.connection_id is not None:
        _require_connection(services, integration, selection.connection_id)
    partitions = services.store.partitions
    if not selection.syncs:
        rows = partitions.list(integration.name, connection_id=selection.connection_id)
        return [(integration.syncs[row.sync_name], row) for row in rows if row.sync_name in integration.syncs]
    found: dict[tuple[str, str], Target] = {}
    for ref in selection.syncs:
        sync = _sync(integration, ref.name, status=404)
        rows = [row for row in partitions.list(integration.name, sync.name, selection.connection_id) if row.variant == ref.variant]
        if not rows and selection.connection_id is not None:
            raise not_found("not_found", f"sync {sync.name!r} has no variant {ref.variant!r} for connection {selection.connection_id!r}")
        found.update({(sync.name, row.partition_key): (sync, row) for row in rows})
    return list(found.values())


@endpoint(body=TriggerBody, response=Success)
def trigger(call: Call) -> dict[str, Any]:
    """Queue a run of each selected partition at the scheduler's next tick, in the requested mode.

    A reset (`full_refresh`, `full_refresh_and_clear_cache`) first cancels the partition's queued or started
    run: the new run replaces it, and starts once it has stopped (one run per partition).
    """
    body: TriggerBody = call.parse_body(with_headers(call, call.json()))
    now = utcnow()
    for sync, row in select_partitions(call.services, body):
        call.services.store.partitions.trigger(row.integration, sync.name, row.partition_key, body.mode, now)
        if body.mode in RESET_MODES:
            reason = f"canceled by a {body.mode} trigger at {to_iso(now)}, which queued a new run"
            cancel_partition_runs(call.services.instance, sync, row.partition_key, reason)
    return {"success": True}


@endpoint(body=Selection, response=Success)
def pause(call: Call) -> dict[str, Any]:
    """Pause the schedule of the selected partitions; a run in progress finishes."""
    return _set_paused(call, True)


@endpoint(body=Selection, response=Success)
def start(call: Call) -> dict[str, Any]:
    """Resume the schedule; a partition that never ran becomes due at once."""
    return _set_paused(call, False)


def _set_paused(call: Call, paused: bool) -> dict[str, Any]:
    body: Selection = call.parse_body(with_headers(call, call.json()))
    now = utcnow()
    for sync, row in select_partitions(call.services, body):
        call.services.store.partitions.set_paused(row.integration, sync.name, row.partition_key, paused, now)
    return {"success": True}


@endpoint(query=StatusQuery, response=StatusList)
def status(call: Call) -> dict[str, Any]:
    """The status of the selected sync partitions."""
    query: StatusQuery = call.parse_query(with_headers(call, dict(call.query)))
    targets = select_partitions(call.services, query)
    return {"syncs": [partition_status(call.services.instance, sync, row) for sync, row in targets]}


@endpoint(body=FrequencyBody, response=EffectiveFrequency)
def update_frequency(call: Call) -> dict[str, Any]:
    """Set a partition's own frequency, or (null) return it to the sync's default."""
    body: FrequencyBody = call.parse_body(with_headers(call, call.json()))
    try:
        own = read_frequency(body.frequency) if body.frequency is not None else None
    except InvalidFrequency as error:
        raise invalid("body", "frequency", str(error)) from None
    selection = Selection(
        syncs=[SyncRef(name=body.sync_name, variant=body.sync_variant)],
        provider_config_key=body.provider_config_key,
        connection_id=body.connection_id,
    )
    [(sync, row)] = select_partitions(call.services, selection)
    effective = own or sync.frequency_for()
    call.services.store.partitions.set_frequency(
        row.integration,
        sync.name,
        row.partition_key,
        own.seconds if own is not None and own.cron is None else None,
        cron=own.cron if own is not None else None,
        next_due=effective.next_due(utcnow()),
    )
    return {"frequency": effective.describe()}


@endpoint(path=VariantPath, body=VariantBody, response=CreatedVariant)
def create_variant(call: Call) -> dict[str, Any]:
    """Add a variant of a sync for one connection: a new dynamic partition, scheduled like the base one."""
    variant = _variant(call)
    body: VariantBody = call.parse_body(with_headers(call, call.json()))
    services = call.services
    integration = services.integration(body.provider_config_key)
    sync = _sync(integration, call.path_params["name"], status=400)
    _require_connection(services, integration, body.connection_id)
    # Counted in the schedule table, the base variant included, under a lock on the connection.
    outcome = add_partition(services.instance, services.store, sync, body.connection_id, variant, cap=MAX_VARIANTS)
    if outcome == PARTITION_EXISTS:
        raise ApiError(400, "sync_variant_already_exists", f"sync {sync.name!r} already has a variant {variant!r}")
    if outcome == PARTITION_CAPPED:
        raise ApiError(400, "resource_capped", f"Maximum number of variants per sync ({MAX_VARIANTS}) reached")
    return {"id": partition_id(sync, make_partition_key(body.connection_id, variant)), "name": sync.name, "variant": variant}


@endpoint(path=VariantPath, body=VariantBody, response=Success)
def delete_variant(call: Call) -> dict[str, Any]:
    """Remove a variant with its schedule, checkpoint and records."""
    variant = _variant(call)
    body: VariantBody = call.parse_body(with_headers(call, call.json()))
    services = call.services
    integration = services.integration(body.provider_config_key)
    sync = _sync(integration, call.path_params["name"], status=404)
    row = services.store.partitions.get(integration.name, sync.name, make_partition_key(body.connection_id, variant))
    if row is None:
        raise not_found("not_found", f"sync {sync.name!r} has no variant {variant!r} for connection {body.connection_id!r}")
    remove_partition(services.instance, services.store, sync, body.connection_id, variant)
    return {"success": True}


def _variant(call: Call) -> str:
    try:
        return variant_name(call.path_params["variant"])
    except InvalidPartitionKey as error:
        raise ApiError(400, "invalid_variant", str(error), [{"code": "invalid_variant", "message": str(error), "path": ["variant"]}]) from None


def _sync(integration: Integration, name: str, *, status: int) -> SyncDefinition:
    sync = integration.syncs.get(name)
    if sync is None:
        raise ApiError(status, "unknown_sync", f"integration {integration.name!r} has no sync {name!r}")
    return sync


def _require_connection(services: Services, integration: Integration, connection_id: str) -> None:
    if not services.store.connections.exists(integration.name, connection_id):
        raise not_found("unknown_connection", f"there is no connection {connection_id!r} of {integration.name!r}")


def routes() -> list[Route]:
    return [
        Route("/sync/trigger", trigger, methods=["POST"]),
        Route("/sync/pause", pause, methods=["POST"]),
        Route("/sync/start", start, methods=["POST"]),
        Route("/sync/status", status, methods=["GET"]),
        Route("/sync/update-connection-frequency", update_frequency, methods=["PUT"]),
        Route("/sync/{name}/variant/{variant}", create_variant, methods=["POST"]),
        Route("/sync/{name}/variant/{variant}", delete_variant, methods=["DELETE"]),
    ]
