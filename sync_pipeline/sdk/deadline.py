"""A run's maximum run time (a sync's `timeout=`), enforced inside the run so that it fails with our reason.

The provider client caps every request attempt, and every wait between attempts, at the time left; pages,
saves and checkpoints check it too. A run stuck where none of these is reached (in the sync's own code)
is stopped by Dagster's run monitoring instead (`dagster/max_runtime`, a little later: see `run_tags`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta

from sync_pipeline.sdk.errors import SyncError

DEFAULT_TIMEOUT = timedelta(hours=24)  # as Nango's syncs


class RunTimedOut(SyncError):
    """The run went past its sync's maximum run time and was stopped."""


@dataclass
class RunDeadline:
    """`seconds` from the moment it is made (monotonic clock: a wall clock change moves nothing)."""

    seconds: float
    started: float = field(default_factory=time.monotonic)

    def remaining(self) -> float:
        return self.seconds - (time.monotonic() - self.started)

    def check(self) -> None:
        """Raise `RunTimedOut` once the time is up."""
        if self.remaining() <= 0:
            raise RunTimedOut(
                f"the run went past the sync's maximum run time of {describe_duration(self.seconds)} "
                f"(timeout={self.seconds:g}s) and was stopped"
            )


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
