"""Committing a night: every table's rows in one DuckLake transaction, so one snapshot."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from transforms.night import UNDATED_MONTH
from transforms.records import SCHEMAS, table_of
from warehouse.archive import ArchiveEntry, index_table
from warehouse.catalog import ALIAS, MONTH_COLUMN, register_files, snapshot_of, transaction
from warehouse.faults import checkpoint
from warehouse.nearindex import BANDS_TABLE, SIGNATURES_TABLE
from warehouse.search import DOCUMENTS_TABLE, POSTINGS_TABLE

log = logging.getLogger(__name__)
Row = dict[str, Any]
AUTHOR = "wirehouse"
# The counts a night's snapshot carries in its extra info (besides run_id and kind).
SNAPSHOT_COUNTS = ("files_new", "articles", "duplicates", "quarantined", "failure_ratio")


@dataclass(slots=True)
class NightRows:
    """What one night adds: the data files the workers wrote, and the rows the commit inserts."""

    run_row: Row
    # Data files the workers wrote, by table (articles, the MinHash and search indexes, the
    # archive index):
    # registered as they are (files or s3:// URLs)
    files: dict[str, list[str]] = field(default_factory=dict)
    # duplicates, quarantine, files: each in its table's schema, in dump_file order
    tables: dict[str, pa.Table] = field(default_factory=dict)
    archived: list[ArchiveEntry] = field(default_factory=list)  # the bundles' raw bytes


def commit_night(con: duckdb.DuckDBPyConnection, night: NightRows) -> int:
    """Write the night in one transaction: its snapshot's id, labelled with the run id.

    The workers' data files are registered, the ledger's rows (and the bundles' archive index)
    inserted. A refused night commits its `runs` row alone. Nothing of the night is visible
    before the commit, and a crash before it leaves only unreferenced data files, which
    `recover` deletes.
    """
    run_id = night.run_row["run_id"]
    if (done := committed_snapshot(con, run_id)) is not None:
        # A retry after the catalog broke off the first try's COMMIT: the server had made it
        # before the connection went (a transaction commits whole or not at all), so it is
        # not made twice.
        log.warning("run %s was committed by the try before (snapshot %d)", run_id, done)
        return done
    with transaction(con):
        if night.run_row["status"] == "succeeded":
            register_files(con, "articles", night.files.get("articles", []))
            checkpoint("load:articles")
            for table, rows in night.tables.items():
                insert_arrow(con, table, rows)
                checkpoint(f"load:{table}")
            checkpoint("load:rows")
            register_files(con, "archive_index", night.files.get("archive_index", []))
            archived = index_table(night.archived)
            insert_arrow(con, "archive_index", _with_run(archived, run_id))
            checkpoint("load:archive_index")
            for table in (BANDS_TABLE, SIGNATURES_TABLE, POSTINGS_TABLE, DOCUMENTS_TABLE):
                register_files(con, table, night.files.get(table, []))
                checkpoint(f"load:{table}")
            checkpoint("load:index")
        insert_rows(con, "runs", [night.run_row])
        label(con, night.run_row)
        checkpoint("load:commit")
    checkpoint("load:committed")
    return snapshot_of(con, run_id)


def committed_snapshot(con: duckdb.DuckDBPyConnection, run_id: str) -> int | None:
    """The snapshot of a run's commit, or None when the run has committed nothing."""
    try:
        return snapshot_of(con, run_id)
    except LookupError:
        return None


def insert_articles(con: duckdb.DuckDBPyConnection, staged: Sequence[str], kept: pa.Array) -> int:
    """The kept rows (their dump files given) of the staged Parquet files, by publication time
    (files prune by day)."""
    if not staged or not len(kept):
        return 0
    con.register("kept_files", pa.table({"dump_file": kept}))
    try:
        count = con.execute(
            f"INSERT INTO articles BY NAME SELECT s.*, "
            f"coalesce(strftime(timezone('UTC', s.published_at), '%Y-%m'), '{UNDATED_MONTH}') "
            f"AS {MONTH_COLUMN} "
            "FROM read_parquet($files) s SEMI JOIN kept_files k USING (dump_file) "
            "ORDER BY s.published_at, s.dump_file",
            {"files": [str(p) for p in staged]},
        ).fetchall()
    finally:
        con.unregister("kept_files")
    return int(count[0][0]) if count else 0


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[Row]) -> None:
    """Rows (dicts) of one of the contract's tables."""
    if rows:
        insert_arrow(con, table, table_of(rows, SCHEMAS[table]))


def insert_arrow(con: duckdb.DuckDBPyConnection, table: str, rows: pa.Table) -> None:
    """An Arrow table's rows into a lake table, columns matched by name."""
    if rows.num_rows == 0:
        return
    con.register("incoming", rows)
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming")
    finally:
        con.unregister("incoming")


def label(con: duckdb.DuckDBPyConnection, run_row: Row, message: str | None = None) -> None:
    """Name the transaction's snapshot after its run, its counts as extra info."""
    kind = run_row.get("kind") or "nightly"
    info = {"run_id": run_row["run_id"], "kind": kind, "status": run_row["status"]}
    info.update({k: run_row.get(k) for k in SNAPSHOT_COUNTS})
    con.execute(
        f"CALL {ALIAS}.set_commit_message(?, ?, extra_info => ?)",
        [AUTHOR, message or f"{kind} {run_row['run_id']}", json.dumps(info, default=str)],
    )


def _with_run(table: pa.Table, run_id: str) -> pa.Table:
    return table.append_column("run_id", pa.array([run_id] * table.num_rows, pa.string()))
