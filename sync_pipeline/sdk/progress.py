"""A run's progress so far (pages, requests, retries, records fetched and saved), reported every few seconds."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

REPORT_EVERY_SECONDS = 5.0

ProgressSink = Callable[[dict[str, Any]], None]


class Progress:
    """Counts what a run did; logs one line (and hands a snapshot to `sink`) at its first page or save, then at
    most every `every` seconds.

    One line every few seconds instead of one per page: a 30,000-issue run logs a dozen lines, not 300. The
    sink (the run progress row, read by `/sync/status` and `sync-pipeline trigger --wait`) is written as often.
    """

    def __init__(
        self,
        name: str,
        log: Any,
        *,
        sink: ProgressSink | None = None,
        every: float = REPORT_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name, self._log, self._sink, self._every, self._clock = name, log, sink, every, clock
        self.pages = self.requests = self.retries = self.fetched = self.saved = 0
        self._started = clock()
        self._last_report: float | None = None  # the first page is reported at once: a run shows it has begun

    def request(self) -> None:
        self.requests += 1

    def retry(self) -> None:
        self.retries += 1

    def page(self, items: int) -> None:
        self.pages += 1
        self.fetched += items
        self._maybe_report()

    def saved_records(self, count: int) -> None:
        self.saved += count
        self._maybe_report()

    @property
    def elapsed(self) -> float:
        return self._clock() - self._started

    def snapshot(self) -> dict[str, Any]:
        elapsed = self.elapsed
        return {
            "pages": self.pages,
            "requests": self.requests,
            "retries": self.retries,
            "records_fetched": self.fetched,
            "records_saved": self.saved,
            "elapsed_seconds": round(elapsed, 1),
            "records_per_second": round(self.saved / elapsed, 1) if elapsed > 0 else 0.0,
        }

    def line(self) -> str:
        """`users: 12 pages, 2,400 records fetched, 2,398 saved in 6.1 s (393 records/s), 1 retry`."""
        snap = self.snapshot()
        retries = f", {self.retries} retr{'y' if self.retries == 1 else 'ies'}" if self.retries else ""
        return (
            f"{self.name}: {self.pages:,} page{'s' if self.pages != 1 else ''}, {self.fetched:,} record{'s' if self.fetched != 1 else ''} fetched, "
            f"{self.saved:,} saved in {snap['elapsed_seconds']} s ({snap['records_per_second']:,.0f} records/s){retries}"
        )

    def report(self) -> None:
        """Log the line and hand the snapshot to the sink now (the run's end calls it once more)."""
        self._last_report = self._clock()
        self._log.info(self.line())
        if self._sink is not None:
            self._sink(self.snapshot())

    def _maybe_report(self) -> None:
        if self._last_report is None or self._clock() - self._last_report >= self._every:
            self.report()
