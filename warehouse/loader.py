"""Appending a night to the lake: every table's file first, the run's marker last."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from transforms.records import ARTICLES_SCHEMA, SCHEMAS, table_of
from warehouse.faults import checkpoint
from warehouse.home import Home
from warehouse.lake import (
    COMPRESSION,
    marker_path,
    part_path,
    publish,
    temp_path,
    write_parquet_atomically,
)

log = logging.getLogger(__name__)
Row = dict[str, Any]
PARTITION_KEY = "published_month"
_WRITING_THREADS = 2


def append_articles(home: Home, run_id: str, staged: Iterable[Path], kept: set[str]) -> int:
    """Stream the kept rows of the staged files into one file per publication month.

    Each staged file's months are written on two threads (Parquet's encoding and compression
    run without the GIL), each month's file by one thread at a time.
    """
    writers: dict[str, tuple[pq.ParquetWriter, Path, Path]] = {}
    kept_names = pa.array(sorted(kept), pa.string())
    written = 0
    try:
        with ThreadPoolExecutor(_WRITING_THREADS, thread_name_prefix="articles") as pool:
            for path in staged:
                table = pq.read_table(path, schema=ARTICLES_SCHEMA)
                table = table.filter(pc.is_in(table.column("dump_file"), value_set=kept_names))
                parts = [
                    (_writer_for(writers, home, run_id, month), rows)
                    for month, rows in _by_month(table)
                ]
                written += sum(pool.map(_write, parts))
    finally:
        for writer, _tmp, _final in writers.values():
            writer.close()
    for _writer, tmp, final in writers.values():
        publish(tmp, final)
    checkpoint("load:articles")
    return written


def append_rows(home: Home, run_id: str, tables: dict[str, list[Row]]) -> dict[str, int]:
    """Write the night's small tables (duplicates, quarantine, files), sorted for determinism."""
    written: dict[str, int] = {}
    for table, rows in tables.items():
        if rows:
            ordered = sorted(rows, key=lambda row: row["dump_file"])
            write_parquet_atomically(_arrow(table, ordered), part_path(home, table, run_id))
            written[table] = len(rows)
    checkpoint("load:rows")
    return written


def commit_run(home: Home, run_row: Row, delay_seconds: float = 0.0) -> datetime:
    """Commit a run by writing its `runs` row, last; its rows appear to queries `delay` later.

    A query lists each scan's files in turn, so two scans of one query can list the lake on
    either side of a commit. The marker therefore carries `visible_at`, a moment ahead, and the
    views show a run only to queries that started after it (see `warehouse.catalog`): by then
    the marker is on disk for every scan to find. Returns `visible_at` at once: the caller does
    what needs no reading back, then `wait_until_visible(visible_at)`.
    """
    checkpoint("load:commit")
    visible_at = datetime.now(UTC) + timedelta(seconds=delay_seconds)
    marker = {**run_row, "visible_at": visible_at}
    write_parquet_atomically(_arrow("runs", [marker]), marker_path(home, run_row["run_id"]))
    late = datetime.now(UTC) - visible_at
    if delay_seconds and late > timedelta(0):
        log.warning(
            "the commit marker of %s took %.1f s longer than WIREHOUSE_VISIBILITY_DELAY_SECONDS "
            "to write; a query started in that window could have seen part of the run",
            run_row["run_id"],
            late.total_seconds(),
        )
    return visible_at


def _write(part: tuple[pq.ParquetWriter, pa.Table]) -> int:
    """Write one month's rows with that month's writer; how many rows."""
    writer, rows = part
    writer.write_table(rows)
    return int(rows.num_rows)


def _by_month(table: pa.Table) -> Iterator[tuple[str, pa.Table]]:
    """The table's rows by publication month, months in order, rows in order within each.

    One stable sort, then slices of the sorted table: filtering the table once per month
    scanned it as many times as the night has months.
    """
    # An article that states no time (a page of another outlet) goes to `undated`.
    months = pc.fill_null(pc.strftime(table.column("published_at"), format="%Y-%m"), "undated")
    order = pc.sort_indices(months)  # stable: rows keep their order within a month
    table = table.take(order)
    start = 0
    for month, run in itertools.groupby(months.take(order).to_pylist()):
        count = sum(1 for _ in run)
        yield month, table.slice(start, count)
        start += count


def _writer_for(
    writers: dict[str, tuple[pq.ParquetWriter, Path, Path]], home: Home, run_id: str, month: str
) -> pq.ParquetWriter:
    if month not in writers:
        final = part_path(home, "articles", run_id, f"{PARTITION_KEY}={month}")
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path(final)
        writers[month] = (
            pq.ParquetWriter(tmp, ARTICLES_SCHEMA, compression=COMPRESSION),
            tmp,
            final,
        )
    return writers[month][0]


def _arrow(table: str, rows: list[Row]) -> pa.Table:
    return table_of(rows, SCHEMAS[table])
