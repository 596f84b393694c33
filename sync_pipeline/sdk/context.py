"""`SyncContext`: what a sync function is given: the provider client, its state, and the records cache."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cached_property, lru_cache
from typing import Any

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from sync_pipeline.sdk.deadline import RunDeadline
from sync_pipeline.sdk.declaration import SyncDefinition
from sync_pipeline.sdk.errors import SyncError
from sync_pipeline.sdk.http import build_client
from sync_pipeline.sdk.oauth import TokenSource
from sync_pipeline.sdk.pagination import Page, Paginator, without_repeats
from sync_pipeline.sdk.progress import Progress
from sync_pipeline.store import (
    ChangeCounts,
    ChangeQuery,
    Connection,
    PreparedRecord,
    RecordsCache,
    StreamKey,
    WriteGuard,
    utcnow,
)

Checkpoint = dict[str, str | int | float | bool]
CHECKPOINT_MAX_KEYS = 16
CHECKPOINT_MAX_STRING = 4000
RECORD_ID_MAX = 255
REASONS_KEPT = 5  # rejections logged one by one and quoted in the summary; the rest are only counted
# Nango's merging strategies: the default, and leaving alone what another writer changed since the run began.
OVERRIDE, IGNORE_IF_MODIFIED_AFTER = "override", "ignore_if_modified_after_cursor"
STRATEGY_NAMES = {OVERRIDE: OVERRIDE, IGNORE_IF_MODIFIED_AFTER: IGNORE_IF_MODIFIED_AFTER, "ignore_if_modified_after": IGNORE_IF_MODIFIED_AFTER}
IDS_PER_READ = 500  # ids per query of get_records_by_id: well under every database's bound-parameter limit
# Writes the connection's metadata (replacing it, or merging top-level keys with `merge=True`).
MetadataSink = Callable[[dict[str, Any], bool], None]
# The keys `paginate(..., checkpoint=True)` keeps in the checkpoint: which URL, and where its next page starts.
PAGINATE_URL, PAGINATE_NEXT = "paginate_url", "paginate_next"


@dataclass
class RunLedger:
    """What one run did, per model: change counts, records offered, records rejected and why (the first few)."""

    counts: dict[str, ChangeCounts] = field(default_factory=dict)
    invalid: dict[str, int] = field(default_factory=dict)
    offered: dict[str, int] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    def add(self, model: str, counts: ChangeCounts) -> None:
        self.counts.setdefault(model, ChangeCounts())
        self.counts[model] += counts

    def reject(self, model: str, reason: str) -> bool:
        """Count a rejected record; True when its reason is among the first few, kept for the summary."""
        self.invalid[model] = self.invalid.get(model, 0) + 1
        if len(self.reasons) < REASONS_KEPT:
            self.reasons.append(reason)
            return True
        return False

    def invalid_summary(self) -> str | None:
        """One line for every rejection of the run: counts per model and the first reasons; None when none."""
        if not self.invalid:
            return None
        counts = ", ".join(f"{n} of {self.offered.get(model, n)} {model}" for model, n in self.invalid.items())
        return f"invalid records not saved: {counts}; first reasons: " + " | ".join(self.reasons)

    def check_invalid_share(self, max_share: float) -> None:
        """Fail the run when more than `max_share` of some model's records were invalid."""
        over = [
            f"{n} of {self.offered[model]} {model} records ({n / self.offered[model]:.0%})"
            for model, n in self.invalid.items()
            if self.offered.get(model) and n / self.offered[model] > max_share
        ]
        if over:
            raise SyncError(
                f"{', '.join(over)} failed validation, more than the sync's limit of {max_share:.0%} "
                f"(max_invalid_share); first reasons: " + " | ".join(self.reasons)
            )


class RecordWriter:
    """Validates, prepares and writes a sync's records into the cache, counting what changed in a ledger.

    One writer serves a sync run (through `SyncContext`) or a provider webhook (through
    `ProviderWebhookContext`, with one writer per connection and sync).
    """

    def __init__(
        self,
        sync: SyncDefinition,
        connection_id: str,
        variant: str,
        cache: RecordsCache,
        *,
        generation: str | None,
        log: logging.Logger | Any,
        ledger: RunLedger | None = None,
        tally: str | None = None,
    ) -> None:
        self.sync = sync
        self.connection_id = connection_id
        self.variant = variant
        self.ledger = ledger or RunLedger()
        self._cache = cache
        self._generation = generation
        self._log = log
        self._tally = tally  # the run generation whose counts every write adds to (see RecordsCache.begin_tally)
        self.guards: dict[str, WriteGuard] = {}  # per model: the merging strategy ignore_if_modified_after_cursor

    def stream(self, model: str | type[BaseModel]) -> StreamKey:
        name = model if isinstance(model, str) else model.__name__
        return StreamKey(self.sync.integration.name, self.connection_id, name, self.variant)

    def save(self, records: Sequence[Mapping[str, Any] | BaseModel], model: str | type[BaseModel]) -> int:
        """Returns how many valid records were written (changed or not)."""
        model_cls = self.sync.model(model)
        prepared = self._prepare(model_cls, records)
        key = self.stream(model_cls)
        self.ledger.add(key.model, ChangeCounts())
        if prepared:
            counts = self._cache.save(
                key, prepared, utcnow(), generation=self._generation, tally=self._tally, guard=self.guards.get(key.model)
            )
            self.ledger.add(key.model, counts)
        return len(prepared)

    def update(self, partials: Sequence[Mapping[str, Any]], model: str | type[BaseModel]) -> int:
        """Returns how many partial records were merged (unknown ids included)."""
        model_cls = self.sync.model(model)
        missing = [index for index, partial in enumerate(partials) if "id" not in partial]
        if missing:
            raise SyncError(f"batch_update of {model_cls.__name__}: records at positions {missing[:5]} have no 'id'")
        key = self.stream(model_cls)
        counts = self._cache.merge(
            key,
            [dict(p) for p in partials],
            lambda rows: self._prepare(model_cls, rows),
            utcnow(),
            tally=self._tally,
            guard=self.guards.get(key.model),
        )
        self.ledger.add(key.model, counts)
        return len(partials)

    def get_by_ids(self, ids: Iterable[str | int], model: str | type[BaseModel]) -> dict[str, dict[str, Any]]:
        """The cached records with these ids, by id; ids not cached, deleted or pruned are absent."""
        key = self.stream(self.sync.model(model))
        wanted = list(dict.fromkeys(str(record_id) for record_id in ids))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), IDS_PER_READ):
            chunk = wanted[start : start + IDS_PER_READ]
            for stored in self._cache.changes(key, ChangeQuery(limit=len(chunk), ids=tuple(chunk))):
                if stored.deleted_at is None and stored.payload is not None:
                    found[stored.record_id] = json.loads(stored.payload)
        return found

    def delete(self, ids_or_records: Iterable[str | int | Mapping[str, Any]], model: str | type[BaseModel]) -> None:
        model_cls = self.sync.model(model)
        ids = [str(item["id"]) if isinstance(item, Mapping) else str(item) for item in ids_or_records]
        key = self.stream(model_cls)
        deleted = self._cache.delete(key, ids, utcnow(), tally=self._tally, guard=self.guards.get(key.model))
        self.ledger.add(key.model, ChangeCounts(deleted=deleted))

    def _prepare(
        self, model_cls: type[BaseModel], records: Sequence[Mapping[str, Any] | BaseModel]
    ) -> list[PreparedRecord]:
        """Validate, drop duplicate ids, serialise and hash: the per-record work of every save."""
        self.ledger.offered[model_cls.__name__] = self.ledger.offered.get(model_cls.__name__, 0) + len(records)
        prepared: dict[str, PreparedRecord] = {}
        duplicates: list[str] = []
        to_json = model_cls.__pydantic_serializer__.to_json
        blake2b = hashlib.blake2b
        for instance in self._validate(model_cls, records):
            record_id = str(instance.id)  # type: ignore[attr-defined]
            if record_id in prepared:
                duplicates.append(record_id)
            elif 0 < len(record_id) <= RECORD_ID_MAX:
                payload = to_json(instance)
                prepared[record_id] = PreparedRecord(record_id, payload.decode(), blake2b(payload, digest_size=16).hexdigest())
            else:
                self._reject(model_cls, instance, f"field 'id': must be 1 to {RECORD_ID_MAX} characters")
        if duplicates:
            self._log.warning(
                f"{model_cls.__name__}: {len(duplicates)} duplicate id(s) in one batch kept their first record: "
                f"{duplicates[:10]}"
            )
        return list(prepared.values())

    def _validate(self, model_cls: type[BaseModel], records: Sequence[Mapping[str, Any] | BaseModel]) -> list[BaseModel]:
        """The valid records as model instances: the whole batch in one call, record by record on failure."""
        try:
            return _list_adapter(model_cls).validate_python(records)
        except ValidationError:
            pass
        valid = []
        for record in records:
            try:
                valid.append(model_cls.model_validate(record))
            except ValidationError as error:
                self._reject(model_cls, record, _describe_validation_error(error))
        return valid

    def _reject(self, model_cls: type[BaseModel], record: Any, reason: str) -> None:
        """Count an invalid record; only the first few are logged (a run of bad records is summarised once)."""
        model = model_cls.__name__
        record_id = record.get("id") if isinstance(record, Mapping) else getattr(record, "id", None)
        if self.ledger.reject(model, f"{model} record id={record_id!r}: {reason}"):
            self._log.warning(f"invalid {model} record id={record_id!r} not saved: {reason}")


class SyncContext:
    """The context of one run of one sync for one connection and variant; closes its HTTP client on exit."""

    def __init__(
        self,
        *,
        sync: SyncDefinition,
        connection: Connection,
        variant: str,
        cache: RecordsCache,
        last_sync_date: datetime | None,
        checkpoint: Checkpoint | None,
        on_checkpoint: Callable[[Checkpoint | None], None],
        generation: str | None,
        log: logging.Logger | Any = None,
        transport: httpx.BaseTransport | None = None,
        progress: Progress | None = None,
        tokens: TokenSource | None = None,
        tally: str | None = None,
        on_metadata: MetadataSink | None = None,
        deadline: RunDeadline | None = None,
        began_at_seq: Mapping[str, int] | None = None,
    ) -> None:
        self.sync = sync
        # The run's maximum run time (the sync's `timeout`), checked by every request, page, save and checkpoint.
        self.deadline = deadline or RunDeadline(sync.timeout_seconds)
        self.connection = connection
        self.variant = variant
        self._on_metadata = on_metadata
        self._began_at_seq = dict(began_at_seq or {})  # per model: the stream's last change when this run began
        self.last_sync_date = last_sync_date
        self.log = log or logging.getLogger(f"sync_pipeline.{sync.qualified_name}")
        self._writer = RecordWriter(
            sync, connection.connection_id, variant, cache, generation=generation, log=self.log, tally=tally
        )
        self.progress = progress or Progress(sync.name, self.log)
        self._checkpoint = checkpoint
        self._on_checkpoint = on_checkpoint
        self._transport = transport
        self._tokens = tokens

    def __enter__(self) -> "SyncContext":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the provider client, if the run opened one."""
        if "http" in self.__dict__:
            self.http.close()

    @property
    def ledger(self) -> RunLedger:
        """What this run changed so far, per model."""
        return self._writer.ledger

    # -- the provider --------------------------------------------------------------------------

    @cached_property
    def http(self) -> httpx.Client:
        """An httpx client on the provider's API, authenticated for this connection, retrying 429/5xx."""
        client = build_client(
            self.sync.integration,
            self.connection,
            on_retry=self._on_retry,
            transport=self._transport,
            tokens=self._tokens,
            run_deadline=self.deadline,
        )
        client.event_hooks["request"].append(lambda _request: self.progress.request())
        return client

    def _on_retry(self, message: str) -> None:
        self.progress.retry()
        self.log.info(message)

    def paginate(
        self,
        url: str,
        paginator: Paginator,
        *,
        params: Mapping[str, Any] | None = None,
        data_path: str | None = None,
        start: Any = None,
        checkpoint: bool = False,
    ) -> Iterator[Page]:
        """Pages of `url`'s items (found at `data_path` in each body); `start` resumes from a `Page.next`.

        A provider that gives back a cursor or next URL already followed fails the run (`RepeatedCursor`).

        With `checkpoint=True` the page cursor is checkpointed once each page has been handled, a run that
        crashed resumes `url` after the last page it handled, and the cursor is cleared when `url` is done.
        """
        if not checkpoint:
            pages = paginator.pages(self.http, url, dict(params or {}), data_path, start)
            return self._counted(without_repeats(pages, url, start))
        return self._counted(self._checkpointed_pages(url, paginator, dict(params or {}), data_path))

    def _counted(self, pages: Iterator[Page]) -> Iterator[Page]:
        """The pages, each counted into the run's progress as it arrives."""
        for page in pages:
            self.deadline.check()
            self.progress.page(len(page))
            yield page

    def remaining(self, urls: Sequence[str]) -> list[str]:
        """`urls` from the one a crashed run was paging through with `checkpoint=True` (before it: done)."""
        paging = (self._checkpoint or {}).get(PAGINATE_URL)
        return list(urls[urls.index(paging) :]) if paging in urls else list(urls)

    def _checkpointed_pages(
        self, url: str, paginator: Paginator, params: dict[str, Any], data_path: str | None
    ) -> Iterator[Page]:
        saved = self._checkpoint or {}
        start = saved.get(PAGINATE_NEXT) if saved.get(PAGINATE_URL) == url else None
        for page in without_repeats(paginator.pages(self.http, url, params, data_path, start), url, start):
            yield page  # the sync handles the page before the generator resumes: only then is it done
            if page.next is not None:
                self.save_checkpoint({**(self._checkpoint or {}), PAGINATE_URL: url, PAGINATE_NEXT: page.next})
        rest = {k: v for k, v in (self._checkpoint or {}).items() if k not in (PAGINATE_URL, PAGINATE_NEXT)}
        if rest:
            self.save_checkpoint(rest)
        elif self._checkpoint is not None:
            self.clear_checkpoint()

    # -- state ---------------------------------------------------------------------------------

    def get_metadata(self) -> dict[str, Any]:
        """The connection's metadata: customer-specific config; a variant's own settings under its name."""
        return dict(self.connection.metadata)

    def set_metadata(self, metadata: Mapping[str, Any]) -> None:
        """Replace the connection's metadata, as `POST /connection/{id}/metadata` does (Nango's setMetadata)."""
        self._write_metadata(metadata, merge=False)

    def update_metadata(self, metadata: Mapping[str, Any]) -> None:
        """Merge top-level keys into the connection's metadata, as `PATCH /connection/{id}/metadata` does."""
        self._write_metadata(metadata, merge=True)

    def _write_metadata(self, metadata: Mapping[str, Any], *, merge: bool) -> None:
        if not isinstance(metadata, Mapping):
            raise SyncError(f"connection metadata is a dict, not {type(metadata).__name__}")
        try:
            clean = json.loads(json.dumps(dict(metadata)))  # stored as JSON: refuse what would not round-trip
        except (TypeError, ValueError) as error:
            raise SyncError(f"connection metadata must be JSON: {error}") from None
        if self._on_metadata is None:
            raise SyncError("this context cannot write the connection's metadata")
        self._on_metadata(clean, merge)
        self.connection = replace(self.connection, metadata={**self.connection.metadata, **clean} if merge else clean)

    @property
    def sync_since(self) -> datetime | None:
        """Where an incremental run starts: the last sync date, else the backfill window, else None (all).

        The window is the sync's `backfill`, or `metadata["backfill_days"]` of the connection.
        """
        if self.last_sync_date is not None:
            return self.last_sync_date
        days = self.connection.metadata.get("backfill_days")
        window = timedelta(days=float(days)) if isinstance(days, (int, float)) and days > 0 else self.sync.backfill
        return utcnow() - window if window else None

    def get_checkpoint(self) -> Checkpoint | None:
        return dict(self._checkpoint) if self._checkpoint is not None else None

    def save_checkpoint(self, checkpoint: Mapping[str, Any]) -> None:
        """Record progress that survives a crash: the next run resumes from it."""
        self.deadline.check()
        self._checkpoint = validate_checkpoint(checkpoint)
        self._on_checkpoint(self._checkpoint)

    def clear_checkpoint(self) -> None:
        self._checkpoint = None
        self._on_checkpoint(None)

    # -- records -------------------------------------------------------------------------------

    def batch_save(self, records: Sequence[Mapping[str, Any] | BaseModel], model: str | type[BaseModel]) -> None:
        """Validate and save records; identical ones are no change, a duplicate id keeps the first."""
        self.deadline.check()
        self.progress.saved_records(self._writer.save(records, model))

    def batch_update(self, partials: Sequence[Mapping[str, Any]], model: str | type[BaseModel]) -> None:
        """Merge partial records (each with its `id`) into the stored ones; unknown ids are skipped."""
        self.deadline.check()
        self.progress.saved_records(self._writer.update(partials, model))

    def set_merging_strategy(self, strategy: str, model: str | type[BaseModel] | None = None) -> None:
        """How this run's saves, updates and deletes treat records changed by someone else since it began
        (Nango's setMergingStrategy), for `model` or every model of the sync:

        - `"override"` (the default): the run's version wins.
        - `"ignore_if_modified_after_cursor"` (or `"ignore_if_modified_after"`): a record a provider webhook
          wrote after this run began is left as the webhook wrote it; a scheduled poll that read it
          earlier never overwrites it. The run's own writes it may overwrite again.
        """
        name = STRATEGY_NAMES.get(strategy)
        if name is None:
            raise SyncError(f"merging strategy {strategy!r} is not one of {sorted(STRATEGY_NAMES)}")
        models = [self.sync.model(model).__name__] if model is not None else self.sync.model_names
        for each in models:
            if name == OVERRIDE:
                self._writer.guards.pop(each, None)
            elif each not in self._writer.guards:
                began = self._began_at_seq.get(each)
                if began is None:
                    raise SyncError("this context does not know where its run began: it cannot ignore later changes")
                self._writer.guards[each] = WriteGuard(after_seq=began)

    @property
    def records_kept(self) -> dict[str, int]:
        """Per model: writes left out because another writer had changed the record since the run began."""
        return {model: guard.kept for model, guard in self._writer.guards.items() if guard.kept}

    def get_records_by_id(self, ids: Iterable[str | int], model: str | type[BaseModel]) -> dict[str, dict[str, Any]]:
        """The records this sync saved with these ids, by id (Nango's getRecordsById); ids not cached,
        deleted or pruned are absent. For syncs that enrich or diff against what they saved."""
        return self._writer.get_by_ids(ids, model)

    def batch_delete(self, ids_or_records: Iterable[str | int | Mapping[str, Any]], model: str | type[BaseModel]) -> None:
        """Mark records deleted (soft delete): they stay readable with `last_action: DELETED`."""
        self.deadline.check()
        self._writer.delete(ids_or_records, model)


@lru_cache(maxsize=256)
def _list_adapter(model_cls: type[BaseModel]) -> TypeAdapter:
    return TypeAdapter(list[model_cls])  # type: ignore[valid-type]


def _describe_validation_error(error: ValidationError) -> str:
    return "; ".join(
        f"field '{'.'.join(str(p) for p in item['loc']) or '<record>'}': {item['msg']}" for item in error.errors()
    )


def validate_checkpoint(checkpoint: Mapping[str, Any]) -> Checkpoint:
    """A checkpoint is flat: at most 16 keys of str/int/float/bool (datetimes become ISO text)."""
    if not isinstance(checkpoint, Mapping):
        raise SyncError(f"a checkpoint is a dict, not {type(checkpoint).__name__}")
    if len(checkpoint) > CHECKPOINT_MAX_KEYS:
        raise SyncError(f"a checkpoint has at most {CHECKPOINT_MAX_KEYS} keys; this one has {len(checkpoint)}")
    clean: Checkpoint = {}
    for key, value in checkpoint.items():
        if not isinstance(key, str):
            raise SyncError(f"checkpoint keys are strings; {key!r} is not")
        if isinstance(value, datetime):
            value = value.isoformat()
        if not isinstance(value, (str, int, float, bool)):
            raise SyncError(
                f"checkpoint value {key!r} is a {type(value).__name__}: only str, int, float, bool and datetime"
            )
        if isinstance(value, str) and len(value) > CHECKPOINT_MAX_STRING:
            raise SyncError(f"checkpoint value {key!r} has {len(value)} characters; at most {CHECKPOINT_MAX_STRING}")
        clean[key] = value
    return clean
