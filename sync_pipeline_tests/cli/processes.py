"""Running `sync-pipeline` as a user does, in a subprocess: free ports, its output read line by line, stopped with Ctrl-C."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Variables of the test session a user's shell would not have.
NOT_INHERITED = (
    "SYNC_PIPELINE_DATABASE_URL", "SYNC_PIPELINE_SECRET_KEY", "SYNC_PIPELINE_WEBHOOK_URL",
    "SYNC_PIPELINE_WEBHOOK_URL_SECONDARY", "DAGSTER_HOME",
)  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Command:
    """`sync-pipeline <args>` in its own process group; `lines` collects its output (stdout and stderr)."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> None:
        environment = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
        environment.update(env or {})
        environment["PYTHONUNBUFFERED"] = "1"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sync_pipeline.cli", *args],
            cwd=cwd,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for_line(self, needle: str, timeout: float) -> str:
        """The first line (from now on, or already read) containing `needle`; fails with the output so far."""
        for line in self.lines:
            if needle in line:
                return line
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"exited ({self.process.wait()}) before printing {needle!r}:\n" + self.output())
            self.lines.append(line)
            if needle in line:
                return line
        raise AssertionError(f"no line with {needle!r} within {timeout:.0f} s:\n" + self.output())

    def drain(self) -> None:
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                return
            if line is not None:
                self.lines.append(line)

    def output(self) -> str:
        self.drain()
        return "\n".join(self.lines)

    def interrupt(self) -> float:
        """Ctrl-C (SIGINT to the command alone, as a terminal sends it); returns the seconds it took to exit."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=30)
        return time.monotonic() - started

    def kill(self) -> None:
        """Clean up after a failed test: the whole group, whatever state it is in."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=10)


def port_closed(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) != 0
