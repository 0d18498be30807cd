"""Parquet files of the lake: atomic writes, the run commit marker, uncommitted leftovers."""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from transforms.records import RUNS_SCHEMA, SCHEMAS
from warehouse.faults import checkpoint
from warehouse.home import TABLES, Home

log = logging.getLogger(__name__)

_TMP_MARK = ".tmp-"
PLACEHOLDER = "_schema"
NO_MONTH = "none"
COMPRESSION = "zstd"


def write_parquet_atomically(table: pa.Table, path: Path) -> None:
    """Write a Parquet file so that it appears complete or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    pq.write_table(table, tmp, compression=COMPRESSION)
    publish(tmp, path)


def temp_path(path: Path) -> Path:
    """The hidden name a file is written under before `publish` gives it its own."""
    return path.with_name(f".{path.name}{_TMP_MARK}{os.getpid()}")


def publish(tmp: Path, path: Path) -> None:
    """Flush a finished temporary file to disk and rename it into place, atomically."""
    _fsync(tmp)
    checkpoint(f"publish.before:{path.parent.name}")
    os.replace(tmp, path)
    _fsync(path.parent)
    checkpoint(f"publish.after:{path.parent.name}")


def part_path(home: Home, table: str, run_id: str, partition: str | None = None) -> Path:
    """Where one run's file of one table (and partition) lives; the run id is the file name."""
    folder = home.table_dir(table)
    if partition is not None:
        folder = folder / partition
    return folder / f"{run_id}.parquet"


def marker_path(home: Home, run_id: str) -> Path:
    """The run's row in `runs`: written last, it is what makes the run's files visible."""
    return part_path(home, "runs", run_id)


def committed_run_ids(home: Home) -> set[str]:
    """Runs whose marker exists, whatever their status."""
    folder = home.table_dir("runs")
    if not folder.is_dir():
        return set()
    return {p.stem for p in folder.glob("*.parquet") if not is_placeholder(p)}


def succeeded_run_ids(home: Home) -> set[str]:
    """Runs that committed with status succeeded: the ones whose rows the views show."""
    folder = home.table_dir("runs")
    markers = [str(p) for p in folder.glob("*.parquet") if not is_placeholder(p)]
    if not markers:
        return set()
    runs = pq.read_table(markers, columns=["run_id", "status"])
    ids, statuses = (runs.column(c).to_pylist() for c in ("run_id", "status"))
    return {run for run, status in zip(ids, statuses, strict=True) if status == "succeeded"}


def latest_visible_at(home: Home) -> datetime | None:
    """When the last committed run becomes visible to queries (None: no run yet)."""
    folder = home.table_dir("runs")
    markers = [str(p) for p in folder.glob("*.parquet") if not is_placeholder(p)]
    if not markers:
        return None
    runs = pq.read_table(markers, schema=RUNS_SCHEMA, columns=["visible_at"])
    at = pc.max(runs.column("visible_at")).as_py()
    return at if isinstance(at, datetime) else None


def wait_until_visible(visible_at: datetime) -> None:
    """Sleep until queries see what becomes visible at `visible_at`."""
    remaining = (visible_at - datetime.now(UTC)).total_seconds()
    if remaining > 0:
        time.sleep(remaining)


def remove_uncommitted(home: Home) -> list[Path]:
    """Delete temp files, and table files of runs that never wrote their marker."""
    committed = committed_run_ids(home)
    removed: list[Path] = []
    for table in TABLES:
        folder = home.table_dir(table)
        if not folder.is_dir():
            continue
        for path in folder.rglob("*"):
            if not path.is_file():
                continue
            orphan = _TMP_MARK in path.name or (
                table != "runs"
                and path.suffix == ".parquet"
                and path.stem not in committed
                and not is_placeholder(path)
            )
            if orphan:
                path.unlink()
                removed.append(path)
    return removed


def ensure_tables(home: Home) -> None:
    """Give every table an empty file with its schema, so the views always have one to read.

    DuckDB's read_parquet fails on a glob that matches nothing; with these placeholders the
    view definitions never change as tables fill up, so warehouse.duckdb never needs rewriting
    while an analyst holds it open. They hold no rows and are never a run's files. One written
    before a column was added is rewritten, so the views always know every column.
    """
    for table, schema in SCHEMAS.items():
        path = placeholder_path(home, table)
        if not path.exists() or pq.read_schema(path).names != schema.names:
            # Not through `publish`: set-up is not a step of a run, so it is no crash point.
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = temp_path(path)
            pq.write_table(schema.empty_table(), tmp)
            os.replace(tmp, path)


def placeholder_path(home: Home, table: str) -> Path:
    """Where a table's empty schema file lives (articles: in a partition no row has)."""
    folder = home.table_dir(table)
    if table == "articles":
        folder = folder / f"published_month={NO_MONTH}"
    return folder / f"{PLACEHOLDER}.parquet"


def is_placeholder(path: Path) -> bool:
    """Whether a lake file is a table's empty schema file."""
    return path.stem == PLACEHOLDER


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
