"""Whose code a deployment's CPU goes to: py-spy samples of its processes, split between sync_pipeline and Dagster.

`py-spy record --format raw` writes one line per distinct stack, "frame;frame;...;frame count", root first.
A sample is ours when the deepest frame that is either sync_pipeline's or Dagster's (Celery's) is ours: our code
and the libraries it calls (SQLAlchemy for the records cache, httpx for the provider). The rest is Dagster's
and Celery's machinery: creating, queueing, launching and executing runs, writing their events.
"""

from __future__ import annotations

import re
import signal
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

# "function (path/to/module.py:123)"; py-spy writes the path as the module file it found.
FRAME = re.compile(r"^(?P<function>.*) \((?P<path>[^:()]+):\d+\)$")
OURS = "/sync_pipeline/"
DAGSTER = ("/dagster/", "/dagster_postgres/", "/dagster_celery/", "/celery/", "/kombu/")


# Dagster's work per run that the docs explain, matched on (qualified) function names anywhere in a stack.
OPERATIONS = {
    "creating runs": ("create_run",),
    "dequeuing and launching runs": ("launch_run",),
    "executing runs": ("core_execute_run",),
    "the sync asset's compute": ("execute_core_compute",),
    "writing events": ("store_event", "store_event_batch"),
    "building instances": ("DagsterInstance.from_ref",),
}


@dataclass
class Profile:
    samples: int = 0
    ours: int = 0
    operations: Counter = field(default_factory=Counter)

    def add(self, stack: list[str], count: int) -> None:
        self.samples += count
        # Whose code runs is the deepest frame that belongs to either side: SQLAlchemy under our records cache is
        # ours, under Dagster's event log Dagster's; our wrapper around Dagster's run execution is not.
        owner = next((owner for owner in map(_owner, reversed(stack)) if owner), None)
        self.ours += count if owner == "ours" else 0
        functions = {match["function"] for match in map(FRAME.match, stack) if match}
        for operation, names in OPERATIONS.items():
            if any(function == name or function.endswith("." + name) for function in functions for name in names):
                self.operations[operation] += count


class Recorder:
    """py-spy recording the given processes and their children until stopped (needs ptrace: run as root)."""

    def __init__(self, directory: Path, pids: dict[str, int], rate: int = 50) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.outputs = {role: directory / f"{role}.txt" for role in pids}
        self._spies = [
            subprocess.Popen(
                ["py-spy", "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--format", "raw",
                 "--full-filenames", "--rate", str(rate), "--output", str(self.outputs[role])],  # fmt: skip
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for role, pid in pids.items()
        ]

    def stop(self) -> dict[str, Profile]:
        for spy in self._spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        for spy in self._spies:
            spy.wait(timeout=60)
        return {role: read(path) for role, path in self.outputs.items() if path.exists()}


def read(path: Path) -> Profile:
    profile = Profile()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            profile.add(stack.split(";"), int(count))
    return profile


def report(profiles: dict[str, Profile]) -> list[str]:
    lines = []
    for role, profile in profiles.items():
        if not profile.samples:
            continue
        share = profile.ours / profile.samples
        lines.append(f"{role}: {profile.samples} samples, {share:.0%} in sync_pipeline's code (with the libraries it calls), "
                     f"{1 - share:.0%} in Dagster's and Celery's")  # fmt: skip
        operations = ", ".join(f"{name} {n / profile.samples:.0%}" for name, n in profile.operations.most_common() if n)
        lines.append(f"    of which (inclusive): {operations}")
    return lines


def _owner(frame: str) -> str | None:
    match = FRAME.match(frame)
    path = match["path"] if match else ""
    if OURS in path and "/benchmarks/" not in path:
        return "ours"
    return "dagster" if any(part in path for part in DAGSTER) else None


