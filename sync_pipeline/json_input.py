"""JSON from outside (request bodies, provider webhooks): standard JSON only, bounded nesting, valid Unicode.

Python's `json` accepts `NaN`, `Infinity` and `1e999` (read as infinity), nests until the interpreter's
recursion limit, and keeps lone UTF-16 surrogates (`"\\ud800"`) as strings that cannot be encoded back to
UTF-8. Each of these, once stored, breaks every later response that includes it, so they are refused here,
where they come in.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 100  # arrays and objects inside each other; metadata and provider events need far fewer
_LONE_SURROGATE_HINT = re.compile(rb"\\u[dD][89a-fA-F]")  # any surrogate escape: only then are strings checked


class InvalidJson(ValueError):
    """The text is not standard JSON, nests deeper than MAX_DEPTH, or has a string that is not valid Unicode."""


def parse_json(data: bytes | str) -> Any:
    """Parse standard JSON (RFC 8259) or raise InvalidJson with a sentence naming what is wrong."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    try:
        value = json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise _too_deep() from None
    except InvalidJson:
        raise
    except ValueError as error:  # JSONDecodeError, invalid UTF-8, an integer of more than 4,300 digits
        raise InvalidJson(f"not valid JSON: {error}") from None
    # Cheap tests first: a body with few brackets cannot nest deeply, one without surrogate escapes has none lone.
    check_strings = _LONE_SURROGATE_HINT.search(raw) is not None
    if check_strings or raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
        _check(value, check_strings)
    return value


def _refuse_constant(name: str) -> Any:
    raise InvalidJson(f"{name} is not a JSON number: send a finite number, or null")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise InvalidJson(f"the number {text[:40]} is too large to store as a finite number")
    return number


def _too_deep() -> InvalidJson:
    return InvalidJson(f"the JSON nests arrays and objects more than {MAX_DEPTH} levels deep")


def _check(value: Any, check_strings: bool) -> None:
    """Depth and (when asked) string validity, walked without recursion."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth >= MAX_DEPTH:
                raise _too_deep()
            for key, child in item.items():
                if check_strings:
                    _valid_text(key)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth >= MAX_DEPTH:
                raise _too_deep()
            stack.extend((child, depth + 1) for child in item)
        elif check_strings and isinstance(item, str):
            _valid_text(item)


def _valid_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidJson("a string holds a lone UTF-16 surrogate (\\ud800-\\udfff without its pair)") from None


def loads_stored(text: str) -> Any:
    """JSON written by an earlier version that did not refuse NaN or infinity: those read as null."""
    return json.loads(text, parse_constant=lambda _name: None)
