"""Query results for people (a table) or programs (CSV, JSON), never with a value cut."""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Sequence
from datetime import date, datetime, time
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

FORMATS = ("table", "csv", "json")
# Folded narrower than this, a value reads as a stack of fragments (a run id in three pieces):
# one block per row reads better then.
MIN_FOLDED_WIDTH = 12


def print_rows(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    format: str,
    title: str | None = None,
    console: Console | None = None,
) -> None:
    """Print rows to stdout as a table, CSV or JSON; the table never cuts a value.

    csv: a header, then the values as text (NULL empty). json: one list of objects keyed by
    column, nothing else. The table (with `title` and a row count) takes one of three layouts:
    piped or redirected, at its full width, one line per row however wide (for less -S, grep,
    a file); in a terminal, as is when it fits, else with the widest columns wrapped to fit
    while each keeps MIN_FOLDED_WIDTH characters, else one block of "column  value" lines per
    row, as psql's expanded mode.
    """
    if format == "csv":
        _write_csv(columns, rows)
    elif format == "json":
        records = [dict(zip(columns, map(_jsonable, row), strict=True)) for row in rows]
        sys.stdout.write(json.dumps(records, ensure_ascii=False, indent=2) + "\n")
    elif format == "table":
        _print_table(columns, rows, title, console or Console())
    else:
        raise ValueError(f"unknown format {format!r}: one of {', '.join(FORMATS)}")


def _write_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_text(value) for value in row] for row in rows)


def _jsonable(value: Any) -> Any:
    """The value as JSON can hold it: timestamps in ISO 8601, decimals and the rest as text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # JSON has no NaN or Infinity
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _print_table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None, console: Console
) -> None:
    cells = [[_text(value) for value in row] for row in rows]
    widths = [
        max(_width(text) for text in [name, *(row[i] for row in cells)])
        for i, name in enumerate(columns)
    ]
    # Each column adds a space either side and a rule; the table one more rule.
    rules = 3 * len(columns) + 1
    if not console.is_terminal:
        wide = Console(file=console.file, width=sum(widths) + rules, color_system=None)
        wide.print(_table(columns, cells, title, widths))
    elif sum(widths) + rules <= console.width:
        console.print(_table(columns, cells, title, widths))
    elif folded := _folded_widths(widths, console.width - rules):
        console.print(_table(columns, cells, title, folded))
    else:
        _print_expanded(columns, cells, title, console)
    console.print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})", style="dim")


def _width(text: str) -> int:
    """Terminal cells of the text's longest line."""
    return max(cell_len(line) for line in text.split("\n"))


def _folded_widths(widths: list[int], room: int) -> list[int] | None:
    """Column widths within `room`: the narrow as they are, the widest folded to one width.

    None when a folded column would be narrower than MIN_FOLDED_WIDTH.
    """
    fitted = list(widths)
    narrowest_first = sorted(range(len(widths)), key=widths.__getitem__)
    for done, i in enumerate(narrowest_first):
        wider = narrowest_first[done:]
        share, extra = divmod(room, len(wider))
        if widths[i] > share:
            if share < MIN_FOLDED_WIDTH:
                return None
            for k, j in enumerate(wider):
                fitted[j] = share + (k < extra)
            return fitted
        room -= widths[i]
    return fitted


def _table(
    columns: Sequence[str], cells: list[list[str]], title: str | None, widths: list[int]
) -> Table:
    table = Table(title=Text(title) if title else None)
    for name, width in zip(columns, widths, strict=True):
        table.add_column(Text(name), width=width, overflow="fold", no_wrap=False)
    for row in cells:
        table.add_row(*map(Text, row))  # Text: a bracket in a value is no markup
    return table


def _print_expanded(
    columns: Sequence[str], cells: list[list[str]], title: str | None, console: Console
) -> None:
    """One block per row, a line per column, a value's further lines under its first."""
    if title:
        console.print(Text(title, style="italic"))
    pad = max(map(cell_len, columns))
    for n, row in enumerate(cells, 1):
        console.print(Text(f"-[ row {n} ]-", style="dim"))
        for name, value in zip(columns, row, strict=True):
            lines = value.split("\n")
            block = "\n".join([lines[0], *(" " * (pad + 2) + line for line in lines[1:])])
            label = Text(name + " " * (pad + 2 - cell_len(name)), style="bold")
            console.print(label + Text(block), soft_wrap=True)
