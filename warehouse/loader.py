"""Appending a night to the lake: every table's file first, the run's marker last."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pyarrow as pa

from transforms.night import published_month
from transforms.records import SCHEMAS
from warehouse.archive import flush
from warehouse.home import Home
from warehouse.lake import marker_path, part_path, write_parquet_atomically

Row = dict[str, Any]
PARTITION_KEY = "published_month"


def append_night(home: Home, run_id: str, tables: dict[str, list[Row]]) -> dict[str, int]:
    """Write the night's rows, sorted for determinism; invisible until `commit_run`."""
    written: dict[str, int] = {}
    for table, rows in tables.items():
        if not rows:
            continue
        ordered = sorted(rows, key=lambda row: row["dump_file"])
        if table == "articles":
            for month, month_rows in _by_month(ordered).items():
                path = part_path(home, table, run_id, f"{PARTITION_KEY}={month}")
                write_parquet_atomically(_arrow(table, month_rows), path)
        else:
            write_parquet_atomically(_arrow(table, ordered), part_path(home, table, run_id))
        written[table] = len(rows)
    return written


def commit_run(home: Home, run_row: Row) -> None:
    """Make a run's files visible at once by writing its `runs` row (after the raw bytes)."""
    flush()
    write_parquet_atomically(_arrow("runs", [run_row]), marker_path(home, run_row["run_id"]))


def _by_month(rows: list[Row]) -> dict[str, list[Row]]:
    months: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        months[published_month(row["published_at"])].append(row)
    return dict(sorted(months.items()))


def _arrow(table: str, rows: list[Row]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMAS[table])
