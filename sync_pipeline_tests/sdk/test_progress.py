"""A run's progress: pages, requests, retries, records fetched and saved, in one log line every few seconds."""

from __future__ import annotations

from sync_pipeline.sdk.progress import Progress


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, line: str) -> None:
        self.lines.append(line)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_long_run_logs_a_line_every_few_seconds_not_one_per_page():
    log, clock, snapshots = Lines(), Clock(), []
    progress = Progress("issues", log, sink=snapshots.append, every=5.0, clock=clock)

    for _ in range(300):  # 300 pages of 100, one every 0.1 s: 30 s in all
        clock.now += 0.1
        progress.request()
        progress.page(100)
        progress.saved_records(99)
    progress.report()

    assert 6 <= len(log.lines) <= 7
    assert log.lines[-1] == "issues: 300 pages, 30,000 records fetched, 29,700 saved in 30.0 s (990 records/s)"
    assert snapshots[-1] == {"pages": 300, "requests": 300, "retries": 0, "records_fetched": 30_000,
                             "records_saved": 29_700, "elapsed_seconds": 30.0, "records_per_second": 990.0}  # fmt: skip


def test_retries_are_counted_and_shown():
    log, clock = Lines(), Clock()
    progress = Progress("users", log, every=5.0, clock=clock)
    progress.retry()
    clock.now += 2
    progress.page(10)

    progress.report()

    assert log.lines[-1] == "users: 1 page, 10 records fetched, 0 saved in 2.0 s (0 records/s), 1 retry"


def test_the_first_page_is_reported_at_once_then_every_few_seconds():
    log, clock, snapshots = Lines(), Clock(), []
    progress = Progress("users", log, sink=snapshots.append, every=5.0, clock=clock)

    progress.page(200)
    clock.now += 1
    progress.page(200)

    assert [snapshot["pages"] for snapshot in snapshots] == [1], "a run shows it has begun, then waits"
    assert log.lines == ["users: 1 page, 200 records fetched, 0 saved in 0.0 s (0 records/s)"]
