"""When stored credentials count as expiring, however `expires_at` was written."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sync_pipeline.sdk.oauth import DEFAULT_MARGIN, expiry_of, needs_refresh

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "expires_at, expected",
    [
        ("2026-11-25T12:30:00Z", datetime(2026, 11, 25, 12, 30, tzinfo=timezone.utc)),
        ("2026-11-25T13:30:00+01:00", datetime(2026, 11, 25, 12, 30, tzinfo=timezone.utc)),
        ("2026-11-25T12:30:00", datetime(2026, 11, 25, 12, 30, tzinfo=timezone.utc)),  # no zone: UTC, as Nango stores
        (1795608000, datetime.fromtimestamp(1795608000, timezone.utc)),  # Unix seconds
        ("next tuesday", None),
        (None, None),
    ],
)
def test_expires_at_is_read_as_iso_text_or_unix_seconds(expires_at, expected):
    assert expiry_of({"expires_at": expires_at}) == expected


def test_a_token_is_refreshed_when_missing_or_within_the_margin_of_its_expiry():
    def at(delta: timedelta) -> dict:
        return {"access_token": "t", "expires_at": (NOW + delta).isoformat()}

    assert needs_refresh({"refresh_token": "r"}, DEFAULT_MARGIN, NOW), "no access token yet (a GitHub App's first run)"
    assert needs_refresh(at(timedelta(minutes=4)), DEFAULT_MARGIN, NOW)
    assert needs_refresh(at(-timedelta(hours=1)), DEFAULT_MARGIN, NOW)
    assert not needs_refresh(at(timedelta(minutes=6)), DEFAULT_MARGIN, NOW)
    assert not needs_refresh({"access_token": "t"}, DEFAULT_MARGIN, NOW), "no expiry known: refreshed when refused"
