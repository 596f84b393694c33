"""A run's maximum run time (a sync's `timeout=`), and its cancellation, enforced inside the run so that it
fails with our reason.

The provider client caps every request attempt, and every wait between attempts, at the time left; pages,
saves and checkpoints check it too. A run stuck where none of these is reached (in the sync's own code)
is stopped by Dagster's run monitoring instead (`dagster/max_runtime`, a little later: see `run_tags`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sync_pipeline.sdk.errors import SyncError

DEFAULT_TIMEOUT = timedelta(hours=24)  # as Nango's syncs


STOP_POLL_SECONDS = 1.0  # how often a run asks whether it was canceled (one small query each time)


class RunTimedOut(SyncError):
    """The run went past its sync's maximum run time and was stopped."""


class RunCanceled(SyncError):
    """The run was canceled while in progress (a `reset` trigger replaced it, or someone canceled it)."""


@dataclass
class RunDeadline:
    """`seconds` from the moment it is made (monotonic clock: a wall clock change moves nothing).

    `stop_requested`, when given, says why the run was canceled (else None); it is asked at most every
    `STOP_POLL_SECONDS`, so a run that its launcher cannot interrupt still stops at its next check.
    """

    seconds: float
    stop_requested: Callable[[], str | None] | None = None
    started: float = field(default_factory=time.monotonic)
    _polled: float = 0.0

    def remaining(self) -> float:
        return self.seconds - (time.monotonic() - self.started)

    def check(self) -> None:
        """Raise `RunTimedOut` once the time is up, `RunCanceled` once the run was canceled."""
        if self.remaining() <= 0:
            raise RunTimedOut(
                f"the run went past the sync's maximum run time of {describe_duration(self.seconds)} "
                f"(timeout={self.seconds:g}s) and was stopped"
            )
        now = time.monotonic()
        if self.stop_requested is not None and now - self._polled >= STOP_POLL_SECONDS:
            self._polled = now
            reason = self.stop_requested()
            if reason:
                raise RunCanceled(reason)


def timeout_seconds(timeout: timedelta | float | int) -> float:
    """A declaration's `timeout=` in seconds: a timedelta or a positive number of seconds."""
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise SyncError(f"timeout is a positive timedelta or number of seconds, not {timeout!r}")
    return float(seconds)


def describe_duration(seconds: float) -> str:
    for unit, size in (("hours", 3600), ("minutes", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} seconds"
