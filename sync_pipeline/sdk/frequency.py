"""Sync frequencies in Nango's forms: "every 5 minutes", "every hour", "every 2 days", "30m", "1h", "1d";
and cron expressions, "cron: 0 * * * *" (UTC), which Nango users ask for (its issue #1317)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache

MINIMUM_SECONDS = 30
MAXIMUM_SECONDS = 365 * 86400  # a year: beyond it a schedule is a mistake (and would overflow the next due date)

_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}  # fmt: skip
UNIT_NAMES = tuple(_UNITS)
_PATTERN = re.compile(r"^(?:every\s+)?(?:([0-9]+(?:\.[0-9]+)?|half|an?)\s*)?([a-z]+)$")


class InvalidFrequency(ValueError):
    """A frequency that cannot be read, or that is outside 30 seconds to 365 days."""


CRON_PREFIX = "cron:"


@dataclass(frozen=True)
class Frequency:
    """When a partition runs: every `seconds`, or at the ticks of `cron` (then `seconds` is its shortest gap,
    which freshness checks measure against)."""

    seconds: int
    cron: str | None = None

    def next_due(self, now: datetime) -> datetime:
        """The next run after `now`: `seconds` later, or the cron expression's next tick (UTC)."""
        if self.cron is None:
            return now + timedelta(seconds=self.seconds)
        from dagster._utils.schedules import get_next_cron_tick  # dagster bundles the cron arithmetic

        return get_next_cron_tick(self.cron, now, "UTC").astimezone(timezone.utc)

    def describe(self) -> str:
        return f"{CRON_PREFIX} {self.cron}" if self.cron else describe_frequency(self.seconds)


def read_frequency(text: str) -> Frequency:
    """A frequency phrase or `cron: <5 fields>`; raises InvalidFrequency naming what is wrong."""
    stripped = text.strip()
    if stripped[: len(CRON_PREFIX)].lower() == CRON_PREFIX:
        return _read_cron(" ".join(stripped[len(CRON_PREFIX) :].split()))
    return Frequency(parse_frequency(text))


@lru_cache(maxsize=1024)
def _read_cron(expression: str) -> Frequency:
    from dagster._utils.schedules import get_smallest_cron_interval, is_valid_cron_string

    if len(expression.split(" ")) != 5 or not is_valid_cron_string(expression):
        raise InvalidFrequency(
            f"frequency 'cron: {expression}' is not a cron expression of 5 fields (minute hour day month weekday), "
            "e.g. 'cron: 0 * * * *'"
        )
    try:
        shortest = int(get_smallest_cron_interval(expression, "UTC").total_seconds())
    except Exception:  # noqa: BLE001 - croniter's own errors for dates that never come (April 31st)
        raise InvalidFrequency(f"frequency 'cron: {expression}' never runs") from None
    if shortest > MAXIMUM_SECONDS:
        raise InvalidFrequency(f"frequency 'cron: {expression}' runs less often than every {MAXIMUM_SECONDS // 86400} days")
    return Frequency(shortest, expression)


def parse_frequency(text: str) -> int:
    """Seconds between runs for a frequency phrase (for a cron expression: its shortest gap between runs)."""
    if text.strip()[: len(CRON_PREFIX)].lower() == CRON_PREFIX:
        return read_frequency(text).seconds
    match = _PATTERN.match(text.strip().lower())
    if not match or match.group(2) not in _UNITS:
        raise InvalidFrequency(
            f"frequency {text!r} is not understood: use forms like 'every 5 minutes', 'every hour', '30m', '1h', '1d'"
        )
    amount_text = match.group(1)
    amount = 0.5 if amount_text == "half" else float(amount_text) if amount_text and amount_text[0].isdigit() else 1.0
    exact = amount * _UNITS[match.group(2)]  # a float: `every 1e400 weeks`-sized amounts stay comparable
    if exact > MAXIMUM_SECONDS:
        raise InvalidFrequency(f"frequency {text!r} is longer than the maximum of {MAXIMUM_SECONDS // 86400} days")
    seconds = int(exact)
    if seconds < MINIMUM_SECONDS:
        raise InvalidFrequency(f"frequency {text!r} is {seconds}s: the minimum is {MINIMUM_SECONDS} seconds")
    return seconds


def describe_frequency(seconds: int) -> str:
    """The canonical phrase for a number of seconds: 3600 -> "every hour", 300 -> "every 5 minutes"."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return f"every {unit}" if count == 1 else f"every {count} {unit}s"
    return f"every {seconds} seconds"
