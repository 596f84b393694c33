"""Declaring syncs, frequencies and checkpoints: mistakes are refused with a message that says which."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pydantic import BaseModel

from sync_pipeline.sdk import Integration, SyncError, describe_frequency, parse_frequency
from sync_pipeline.sdk.context import validate_checkpoint
from sync_pipeline.sdk.frequency import InvalidFrequency


class Thing(BaseModel):
    id: str


class NoId(BaseModel):
    name: str


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("every 5 minutes", 300),
        ("every hour", 3600),
        ("every 2 days", 172800),
        ("30m", 1800),
        ("1h", 3600),
        ("1d", 86400),
        ("every half hour", 1800),
        ("every 30 seconds", 30),
        ("Every Day", 86400),
    ],
)
def test_frequencies_in_nangos_forms(text, seconds):
    assert parse_frequency(text) == seconds


@pytest.mark.parametrize("text", ["every 10 seconds", "5s", "sometimes", "every -1 hours", ""])
def test_bad_or_too_frequent_frequencies_are_refused(text):
    with pytest.raises(InvalidFrequency):
        parse_frequency(text)


def test_frequencies_are_described_canonically():
    assert [describe_frequency(s) for s in (300, 3600, 7200, 86400, 45)] == [
        "every 5 minutes",
        "every hour",
        "every 2 hours",
        "every day",
        "every 45 seconds",
    ]


def test_a_sync_is_declared_with_a_decorator():
    crm = Integration("crm", base_url="https://crm.example")

    @crm.sync(models=[Thing], sync_type="incremental", frequency="every 5 minutes")
    def things(ctx) -> None:
        """All the things."""

    assert crm.syncs["things"] is things
    assert (things.qualified_name, things.frequency_seconds, things.description) == ("crm__things", 300, "All the things.")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"models": [Thing], "sync_type": "incremental", "track_deletes": True}, "track_deletes needs a full refresh"),
        ({"models": [NoId]}, "with an `id` field"),
        ({"models": []}, "at least one model"),
        ({"models": [Thing], "frequency": "every 2 seconds"}, "minimum is 30 seconds"),
        ({"models": [Thing], "sync_type": "sometimes"}, "sync_type must be"),
    ],
)
def test_declaration_mistakes_are_named(options, message):
    with pytest.raises((SyncError, InvalidFrequency), match=message):
        Integration("crm", base_url="https://crm.example").sync(**options)


def test_a_model_belongs_to_one_sync():
    crm = Integration("crm", base_url="https://crm.example")
    crm.sync(models=[Thing], name="first")(lambda ctx: None)
    with pytest.raises(SyncError, match="already written by sync 'first'"):
        crm.sync(models=[Thing], name="second")(lambda ctx: None)


def test_checkpoints_are_flat_and_small():
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert validate_checkpoint({"cursor": "abc", "page": 3, "ratio": 0.5, "done": False, "at": moment}) == {
        "cursor": "abc",
        "page": 3,
        "ratio": 0.5,
        "done": False,
        "at": "2026-01-02T03:04:05+00:00",
    }
    with pytest.raises(SyncError, match="at most 16 keys"):
        validate_checkpoint({f"k{n}": n for n in range(17)})
    with pytest.raises(SyncError, match="'nested' is a dict"):
        validate_checkpoint({"nested": {"a": 1}})
    with pytest.raises(SyncError, match="4001 characters"):
        validate_checkpoint({"cursor": "x" * 4001})
