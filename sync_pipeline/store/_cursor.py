"""Opaque record cursors: what the records API hands out and takes back."""

from __future__ import annotations

import base64
import binascii

_PREFIX = "sp1:"


class MalformedCursor(ValueError):
    """A cursor that this server did not hand out."""


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise MalformedCursor(f"cursor {cursor!r} is not a cursor this server handed out") from None
    if not text.startswith(_PREFIX) or not text[len(_PREFIX) :].isdigit():
        raise MalformedCursor(f"cursor {cursor!r} is not a cursor this server handed out")
    return int(text[len(_PREFIX) :])
