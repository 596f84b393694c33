"""What the operator commands print: a table for people by default, the API's JSON with `--json`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

MAX_CELL = 60


def emit(data: Any, as_json: bool, table: "Table | str | None" = None) -> None:
    """Print `data` as JSON, else the table (or text) made for people."""
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
    elif isinstance(table, Table):
        click.echo(table.render())
    elif table is not None:
        click.echo(table)


class Table:
    """Columns padded to their widest cell; long cells cut with an ellipsis; `empty` when there are no rows."""

    def __init__(self, headers: Sequence[str], rows: Sequence[Sequence[Any]], empty: str = "nothing to show") -> None:
        self.headers, self.rows, self.empty = list(headers), [[cell_text(c) for c in row] for row in rows], empty

    def render(self) -> str:
        if not self.rows:
            return self.empty
        widths = [max(len(line[i]) for line in [self.headers, *self.rows]) for i in range(len(self.headers))]
        return "\n".join(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in [self.headers, *self.rows]
        )


def cell_text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (dict, list)):
        value = json.dumps(value, separators=(",", ":"), default=str)
    text = str(value).replace("\n", " ")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def key_values(pairs: Sequence[tuple[str, Any]]) -> str:
    """`name:  value` lines for one object (`connections show`)."""
    width = max(len(name) for name, _ in pairs)
    return "\n".join(f"{name + ':':<{width + 1}}  {cell_text(value) if not isinstance(value, str) else value}" for name, value in pairs)
