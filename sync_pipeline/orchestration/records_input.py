"""Synced records as asset inputs: the IO manager that hands a downstream asset a sync's records from the cache.

A downstream asset declares a sync asset as an input (`AssetIn(key=["slack", "SlackUser"])`) and receives
its records as a pandas DataFrame typed from the pydantic model; nothing is called by hand. An input of
the same partition gets that connection and variant's records; an input spanning several partitions (a
non-partitioned downstream asset) gets every partition's, with `connection_id` and `variant` columns.
Annotating the input `collections.abc.Iterator` (or input metadata `{"pages": True}`) streams pages from the
cache instead. The cursor read is added to the downstream materialization's metadata, so a later run can
ask for only what changed since (input metadata `{"since": "last"}`).

The sync assets produce `MaterializeResult`s, so Dagster never hands this IO manager an output of theirs.
"""

from __future__ import annotations

import collections.abc
import datetime as dt
import json
import types
import typing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    AssetSpec,
    ConfigurableIOManager,
    InputContext,
    MetadataValue,
    OutputContext,
)
from pydantic import BaseModel, Field

from sync_pipeline.keys import InvalidPartitionKey, parse_partition_key
from sync_pipeline.sdk.declaration import Registry
from sync_pipeline.settings import database_url
from sync_pipeline.store import (
    ADDED,
    DELETED,
    UPDATED,
    ChangeQuery,
    MalformedCursor,
    RecordsCache,
    StreamKey,
    decode_cursor,
    encode_cursor,
    store_for,
)

if TYPE_CHECKING:
    import pandas as pd

IO_MANAGER_KEY = "sync_records"
PAGE_SIZE = 10_000
CURSOR_METADATA_PREFIX = "sync_pipeline/cursor/"
ACTION_COLUMN, DELETED_AT_COLUMN = "_sync_action", "_sync_deleted_at"

# pandas' nullable dtypes: a missing optional value stays <NA> instead of turning ints into floats.
_DTYPES: dict[type, str] = {str: "string", int: "Int64", float: "Float64", bool: "boolean"}


class RecordsInputError(ValueError):
    """An input asked for in a way this IO manager cannot serve; the message says what to change."""


@dataclass(frozen=True)
class InputRequest:
    """How the downstream asset asked for its input (the `AssetIn` metadata and annotation)."""

    pages: bool = False
    page_size: int = PAGE_SIZE
    include_deleted: bool = False
    since: str | None = None  # an encoded cursor (one partition), or "last"

    @classmethod
    def from_context(cls, context: InputContext) -> "InputRequest":
        meta = dict(context.definition_metadata or {})
        unknown = set(meta) - {"pages", "page_size", "include_deleted", "since"}
        if unknown:
            raise RecordsInputError(
                f"input {context.name!r}: unknown input metadata {sorted(unknown)}; "
                "use pages, page_size, include_deleted or since"
            )
        page_size = meta.get("page_size", PAGE_SIZE)
        if not isinstance(page_size, int) or page_size < 1:
            raise RecordsInputError(f"input {context.name!r}: page_size must be a positive integer, not {page_size!r}")
        since = meta.get("since")
        if since is not None and not isinstance(since, str):
            raise RecordsInputError(f"input {context.name!r}: since must be 'last' or a cursor string, not {since!r}")
        return cls(
            pages=bool(meta.get("pages")) or _wants_iterator(context),
            page_size=page_size,
            include_deleted=bool(meta.get("include_deleted")),
            since=since,
        )


class SyncRecordsIOManager(ConfigurableIOManager):
    """Loads a sync asset's records from the records cache as a DataFrame (or an iterator of DataFrame pages)."""

    database_url: str | None = Field(default=None, description="SQLAlchemy URL of the sync_pipeline database.")
    integrations: str | None = Field(
        default=None,
        description="Modules of your own integrations (as SYNC_PIPELINE_INTEGRATIONS, comma-separated): their "
        "pydantic models type the columns.",
    )

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        # Sync assets write the cache themselves and return MaterializeResult: there is nothing to store.
        if obj is not None:
            raise RecordsInputError(
                f"{context.asset_key.to_user_string()}: sync assets write the records cache themselves; "
                "this IO manager only loads inputs"
            )

    def load_input(self, context: InputContext) -> pd.DataFrame | Iterator[pd.DataFrame]:
        request = InputRequest.from_context(context)
        integration, model_name = _split_key(context.asset_key)
        model = _model_of(context, integration, model_name, self.integrations)
        partitions = _upstream_partitions(context)
        spanning = len(partitions) != 1 or not _downstream_partitioned(context)
        if request.since not in (None, "last") and len(partitions) != 1:
            raise RecordsInputError(
                f"input {context.name!r}: an explicit since cursor reads one partition; use since='last' for many"
            )
        cache = store_for(self.database_url or database_url()).records
        previous = _previous_cursors(context) if request.since == "last" else {}
        reader = _Reader(cache, integration, model_name, model, request, spanning)
        cursors = reader.cursors(partitions, previous)
        _record_cursors(context, cursors)
        pages = reader.pages(partitions, cursors)
        return pages if request.pages else _concat(pages, reader.empty())


class _Reader:
    """Reads pages of one model's records for a set of partitions, typed from the model."""

    def __init__(
        self,
        cache: RecordsCache,
        integration: str,
        model_name: str,
        model: type[BaseModel] | None,
        request: InputRequest,
        spanning: bool,
    ) -> None:
        self.cache, self.integration, self.model_name, self.model = cache, integration, model_name, model
        self.request, self.spanning = request, spanning
        self.changes_only = request.since is not None

    def key(self, partition: str) -> StreamKey:
        connection_id, variant = parse_partition_key(partition)
        return StreamKey(self.integration, connection_id, self.model_name, variant)

    def cursors(self, partitions: list[str], previous: Mapping[str, str]) -> dict[str, tuple[int, int]]:
        """Per partition: (read after, read up to). Up to the stream's sequence now, so the recorded cursor
        never passes a change this run did not read."""
        result = {}
        for partition in partitions:
            start = 0
            if self.request.since == "last" and partition in previous:
                start = _decode(previous[partition])
            elif self.request.since not in (None, "last"):
                start = _decode(self.request.since)
            result[partition] = (start, self.cache.last_seq(self.key(partition)))
        return result

    def pages(self, partitions: list[str], cursors: Mapping[str, tuple[int, int]]) -> Iterator[pd.DataFrame]:
        for partition in partitions:
            for payloads in self._payload_pages(partition, *cursors[partition]):
                frame = self.frame(payloads, partition)
                del payloads  # only one page alive at a time: the consumer's
                yield frame
                del frame

    def _payload_pages(self, partition: str, after: int, until: int) -> Iterator[list[dict[str, Any]]]:
        key = self.key(partition)
        if not self.changes_only and not self.request.include_deleted:
            yield from self.cache.iter_live_payloads(key, chunk=self.request.page_size)
            return
        # Changes after a cursor (or, with deleted records asked for, every record's latest state), in seq order.
        actions = (ADDED, UPDATED, DELETED) if self.request.include_deleted else (ADDED, UPDATED)
        while after < until:
            rows = self.cache.changes(key, ChangeQuery(after_seq=after, limit=self.request.page_size, actions=actions))
            rows = [row for row in rows if row.seq <= until]
            if not rows:
                return
            page = []
            for row in rows:
                payload = json.loads(row.payload) if row.payload else {"id": row.record_id}
                payload[ACTION_COLUMN] = row.last_action
                payload[DELETED_AT_COLUMN] = row.deleted_at
                page.append(payload)
            yield page
            after = rows[-1].seq

    def frame(self, payloads: list[dict[str, Any]], partition: str | None = None) -> pd.DataFrame:
        import pandas as pd

        frame = typed_frame(payloads, self.model, extra=self._extra_columns())
        if self.spanning:
            connection_id, variant = parse_partition_key(partition) if partition else (None, None)
            frame.insert(0, "variant", pd.Series([variant] * len(frame), dtype="string"))
            frame.insert(0, "connection_id", pd.Series([connection_id] * len(frame), dtype="string"))
        return frame

    def empty(self) -> pd.DataFrame:
        """No records, with every column the records would have."""
        return self.frame([])

    def _extra_columns(self) -> dict[str, str]:
        if self.changes_only or self.request.include_deleted:
            return {ACTION_COLUMN: "string", DELETED_AT_COLUMN: "datetime64[ns, UTC]"}
        return {}


def typed_frame(
    payloads: list[dict[str, Any]], model: type[BaseModel] | None, extra: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Records as a frame: a column per model field (in the model's order, missing values as <NA>) typed from
    the model, then any other keys the records have. Built column by column: no untyped copy of the page."""
    import pandas as pd

    dtypes = {**(model_dtypes(model) if model is not None else {}), **(extra or {})}
    others = dict.fromkeys(key for payload in payloads for key in payload if key not in dtypes)
    columns = {}
    for column, dtype in dtypes.items():
        values = [payload.get(column) for payload in payloads]
        if dtype.startswith("datetime64"):
            columns[column] = pd.to_datetime(pd.Series(values, dtype="object"), utc=True, format="ISO8601")
        else:
            columns[column] = pd.Series(values, dtype=dtype)
    for column in others:
        columns[column] = pd.Series([payload.get(column) for payload in payloads], dtype="object")
    return pd.DataFrame(columns)


def model_dtypes(model: type[BaseModel]) -> dict[str, str]:
    """pandas dtypes of a model's fields: nullable scalars, UTC datetimes, object for lists, dicts and the rest."""
    return {(field.alias or name): _dtype(field.annotation) for name, field in model.model_fields.items()}


def _dtype(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _dtype(args[0]) if len(args) == 1 else "object"
    if origin is typing.Literal:
        values = typing.get_args(annotation)
        return "string" if all(isinstance(value, str) for value in values) else "object"
    if annotation in (dt.datetime,):
        return "datetime64[ns, UTC]"
    if isinstance(annotation, type) and issubclass(annotation, str):
        return "string"  # str and str enums
    return _DTYPES.get(annotation, "object")


def _concat(pages: Iterable[pd.DataFrame], empty: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    frames = list(pages)
    return pd.concat(frames, ignore_index=True) if frames else empty


def _wants_iterator(context: InputContext) -> bool:
    """True when the input is annotated `collections.abc.Iterator` (Dagster refuses `Iterator[pd.DataFrame]`)."""
    typing_type = getattr(context.dagster_type, "typing_type", None)
    iterables = (collections.abc.Iterator, collections.abc.Iterable, collections.abc.Generator)
    return typing_type in iterables or typing.get_origin(typing_type) in iterables


def _split_key(key: AssetKey) -> tuple[str, str]:
    if len(key.path) != 2:
        raise RecordsInputError(
            f"{key.to_user_string()} is not a sync asset (<integration>/<Model>): the sync_records IO manager "
            "loads only those"
        )
    return key.path[0], key.path[1]


def _model_of(
    context: InputContext, integration: str, model_name: str, modules: str | None
) -> type[BaseModel] | None:
    """The pydantic model of the records, from the built-in and configured integrations (None: untyped)."""
    from sync_pipeline.integrations import load_registry

    registry: Registry = load_registry(modules)
    found = registry.get(integration)
    if found is None:
        context.log.warning(f"integration {integration!r} is not loaded here: records come untyped")
        return None
    for sync in found.syncs.values():
        if model_name in sync.model_names:
            return sync.model(model_name)
    context.log.warning(f"integration {integration!r} has no model {model_name!r}: records come untyped")
    return None


def _upstream_partitions(context: InputContext) -> list[str]:
    if not context.has_asset_partitions:
        raise RecordsInputError(f"input {context.name!r}: {context.asset_key.to_user_string()} is partitioned")
    keys = []
    for key in context.asset_partition_keys:
        try:
            parse_partition_key(key)
        except InvalidPartitionKey:
            continue  # a key added by hand that is no sync partition: nothing was ever synced for it
        keys.append(key)
    return sorted(keys)


def _downstream_partitioned(context: InputContext) -> bool:
    return context.step_context.has_partition_key


def _decode(cursor: str) -> int:
    try:
        return decode_cursor(cursor)
    except MalformedCursor as error:
        raise RecordsInputError(str(error)) from None


def _metadata_name(key: AssetKey) -> str:
    return CURSOR_METADATA_PREFIX + key.to_user_string()


def _record_cursors(context: InputContext, cursors: Mapping[str, tuple[int, int]]) -> None:
    """Put the cursor each partition was read up to into the downstream materializations' metadata."""
    step = context.step_context
    value = MetadataValue.json({partition: encode_cursor(until) for partition, (_, until) in cursors.items()})
    for key in step.get_output_asset_keys():
        step.add_asset_metadata({_metadata_name(context.asset_key): value}, asset_key=key)


def _previous_cursors(context: InputContext) -> dict[str, str]:
    """The cursors recorded by the downstream asset's last materialization (of this partition), for since='last'."""
    step = context.step_context
    partition = step.partition_key if step.has_partition_key else None
    found: dict[str, str] = {}
    for key in step.get_output_asset_keys():
        records = step.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None), limit=1
        ).records
        entry = records[0].asset_materialization.metadata.get(_metadata_name(context.asset_key)) if records else None
        if entry is not None and isinstance(entry.value, dict):
            found.update(entry.value)
    return found


def sync_asset_specs(registry: Registry) -> list[AssetSpec]:
    """The sync assets as a downstream code location declares them: same keys and partitions, loaded through
    the `sync_records` IO manager. Put them in your `Definitions` beside your own assets."""
    from sync_pipeline.orchestration.assets import partitions_definition
    from sync_pipeline.orchestration.run_metadata import asset_key

    return [
        AssetSpec(
            key=asset_key(sync.integration.name, model),
            group_name=sync.integration.name,
            partitions_def=partitions_definition(sync),
            description=f"{model} records of {sync.integration.name} sync {sync.name!r}, synced by sync_pipeline.",
            metadata={"dagster/io_manager_key": IO_MANAGER_KEY},
        )
        for sync in registry.syncs()
        for model in sync.model_names
    ]

