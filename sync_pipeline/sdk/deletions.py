"""The mass-deletion guard: a run that would mark more than a share of a model's records deleted deletes nothing.

An expired scope, a provider outage answered as an empty page (Slack's `{"ok": true, "members": []}`) or a
bug in a sync looks, to a deletion sweep, exactly like every record having been deleted. Nango has no guard
(its issue #1132 is a customer's cache emptied by one bad page); here such a run fails, saying how many and
why, unless its trigger allowed it (`opts.allowMassDelete`, `sync-pipeline trigger --allow-mass-delete`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sync_pipeline.sdk.errors import SyncError
from sync_pipeline.store import RecordsCache, StreamKey, utcnow

DEFAULT_MAX_DELETED_SHARE = 0.5  # of the records a model had before the run
MIN_DELETIONS = 5  # a run deleting fewer records than this is never a mass deletion (tiny partitions)
METADATA_KEY = "max_deleted_share"  # a connection's own limit, in its metadata


@dataclass(frozen=True)
class Sweep:
    """What a deletion sweep of one model would do: delete `deleting` of the `before` records it had."""

    model: str
    deleting: int
    before: int

    @property
    def share(self) -> float:
        return self.deleting / self.before if self.before else 0.0

    def exceeds(self, limit: float) -> bool:
        return self.deleting >= MIN_DELETIONS and self.share > limit

    def describe(self) -> str:
        return f"{self.deleting:,} of {self.before:,} {self.model} records ({self.share:.0%})"


class MassDeletionBlocked(SyncError):
    """The run would have deleted more than its limit allows: it deleted nothing."""

    def __init__(self, sweeps: list[Sweep], limit: float, source: str) -> None:
        self.sweeps, self.limit = sweeps, limit
        super().__init__(
            f"mass deletion guard: this run would mark {', '.join(s.describe() for s in sweeps)} deleted, more than "
            f"the limit of {limit:.0%} ({source}); nothing was deleted. If the provider really removed them, "
            "trigger one run with opts.allowMassDelete (sync-pipeline trigger --allow-mass-delete)."
        )


def deletion_limit(sync_limit: float, metadata: Mapping[str, Any]) -> tuple[float, str]:
    """The share a run may delete and where it comes from: the connection's metadata, else the sync's declaration."""
    value = metadata.get(METADATA_KEY)
    if value is None:
        return sync_limit, "the sync's max_deleted_share"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise SyncError(
            f"the connection's metadata {METADATA_KEY!r} must be a share between 0 and 1 (0.5 for 50%), not {value!r}"
        )
    return float(value), f"the connection's metadata {METADATA_KEY!r}"


def guard(sweeps: list[Sweep], limit: float, source: str, *, allowed: bool) -> None:
    """Raise MassDeletionBlocked when a sweep exceeds `limit` and the run was not allowed to."""
    over = [sweep for sweep in sweeps if sweep.exceeds(limit)]
    if over and not allowed:
        raise MassDeletionBlocked(over, limit, source)


@dataclass(frozen=True)
class DeletionSweeper:
    """Deletes the records a run (`generation`, started at `started_at`) did not see, behind the guard."""

    cache: RecordsCache
    generation: str
    started_at: datetime
    limit: float
    source: str
    allowed: bool = False

    def sweep(self, streams: Mapping[str, StreamKey]) -> dict[str, int]:
        """Delete every model's unseen records, or (when one exceeds the limit) none; returns the counts."""
        if len(streams) == 1:  # counted inside the sweep, on its own table of seen ids: half the work
            [(model, key)] = streams.items()
            before = self._before(key)

            def check(deleting: int) -> None:
                guard([Sweep(model, deleting, before)], self.limit, self.source, allowed=self.allowed)

            return {model: self.cache.delete_unseen(key, self.generation, self.started_at, utcnow(), tally=True, check=check)}
        sweeps = [
            Sweep(model, self.cache.count_unseen(key, self.generation, self.started_at), self._before(key))
            for model, key in streams.items()
        ]
        guard(sweeps, self.limit, self.source, allowed=self.allowed)
        return {
            model: self.cache.delete_unseen(key, self.generation, self.started_at, utcnow(), tally=True)
            for model, key in streams.items()
        }

    def _before(self, key: StreamKey) -> int:
        """The model's live records before the run: now, less what the run added, plus what it deleted."""
        counted = self.cache.tally(key, self.generation)
        return self.cache.count_live(key) - counted.added + counted.deleted
