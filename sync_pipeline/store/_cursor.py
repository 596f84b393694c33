"""Opaque record cursors: what the records API hands out and takes back, each bound to its stream.

A cursor is base64url of `sp2:<seq>:<tag>`, where the tag is a hash of the stream it came from (integration,
connection, model, variant): a cursor passed to another stream is refused rather than silently read as a
position there. Cursors of the first format, `sp1:<seq>`, handed out before streams were bound, are still
taken (unchecked) so that clients keep their place across the upgrade.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable

from sync_pipeline.store._records import StreamKey

MAX_SEQ = 2**63 - 1  # a BIGINT on both databases
_BOUND = re.compile(r"sp2:(0|[1-9][0-9]{0,18}):([0-9a-f]{12})")
_LEGACY = re.compile(r"sp1:([0-9]{1,19})")
_MAX_LENGTH = 64  # far above the longest cursor we hand out; longer text is not decoded at all


class MalformedCursor(ValueError):
    """A cursor that this server did not hand out."""


class ForeignCursor(MalformedCursor):
    """A cursor this server handed out for another stream (connection, model or variant)."""


def encode_cursor(seq: int, stream: StreamKey) -> str:
    return cursor_encoder(stream)(seq)


def cursor_encoder(stream: StreamKey) -> Callable[[int], str]:
    """`encode_cursor` for many records of one stream: the stream's tag is hashed once."""
    suffix = f":{stream_tag(stream)}"
    return lambda seq: base64.urlsafe_b64encode(f"sp2:{seq}{suffix}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, stream: StreamKey) -> int:
    """The sequence number after which to read `stream`, or MalformedCursor / ForeignCursor saying why not."""
    text = _text(cursor)
    bound = _BOUND.fullmatch(text)
    legacy = _LEGACY.fullmatch(text) if bound is None else None
    match = bound or legacy
    if match is None or int(match.group(1)) > MAX_SEQ:
        raise MalformedCursor(f"cursor {_shown(cursor)} is not a cursor this server handed out")
    if bound is not None and bound.group(2) != stream_tag(stream):
        raise ForeignCursor(
            f"cursor {_shown(cursor)} belongs to another connection, model or variant than "
            f"{stream.connection_id!r} / {stream.model!r} / {stream.variant!r}"
        )
    return int(match.group(1))


def stream_tag(stream: StreamKey) -> str:
    identity = "\x00".join((stream.integration, stream.connection_id, stream.model, stream.variant))
    return hashlib.blake2b(identity.encode(), digest_size=6).hexdigest()


def _text(cursor: str) -> str:
    if len(cursor) > _MAX_LENGTH:
        return ""
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return ""


def _shown(cursor: str) -> str:
    return repr(cursor if len(cursor) <= _MAX_LENGTH else cursor[:_MAX_LENGTH] + "...")
