"""SQL views over the lake: in warehouse.duckdb for analysts, in memory for the job itself."""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

import duckdb

from warehouse.faults import checkpoint
from warehouse.home import TABLES, Home
from warehouse.lake import ensure_tables

log = logging.getLogger(__name__)

# Bump when the view definitions change, so existing catalogs are rewritten.
CATALOG_VERSION = "3"
# Files DuckDB 2.x writes by default are unreadable by the 1.5 command-line tool analysts have.
STORAGE_COMPATIBILITY = "v1.5.0"
_LOCK_RETRIES = 5
_LOCK_PAUSE_SECONDS = 0.2


def view_statements(home: Home) -> list[str]:
    """CREATE VIEW statements for every table; data views show committed, succeeded runs only.

    A query sees the runs visible when its transaction started (`current_timestamp` is that
    instant) and no other: its scans list the lake one after another, and one may list a run's
    marker that an earlier scan missed, but a run committed after the query started stays out
    of all of them. Runs become visible a moment after their marker is written
    (`warehouse.loader.commit_run`), so every scan of a query that shows a run lists its files.
    Within BEGIN ... COMMIT, every query sees the same runs.
    """
    statements = [_runs_view(home)]
    committed = "run_id IN (SELECT run_id FROM runs WHERE status = 'succeeded')"
    for table in TABLES:
        if table == "runs":
            continue
        source = _source(home, table)
        statements.append(
            f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM {source} WHERE {committed}"
        )
    return statements


def lake_connection(home: Home) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the views: never locks warehouse.duckdb, never blocks a run."""
    if home.lake.is_dir():
        ensure_tables(home)
    con = duckdb.connect(":memory:")
    for statement in view_statements(home):
        con.execute(statement)
    return con


def sync_catalog(home: Home) -> bool:
    """Bring warehouse.duckdb's views up to date; False if a reader held it too long to do so."""
    statements = view_statements(home)
    signature = hashlib.sha256("\n".join([CATALOG_VERSION, *statements]).encode()).hexdigest()
    for attempt in range(_LOCK_RETRIES):
        try:
            return _sync(home.catalog, statements, signature)
        except duckdb.IOException as error:
            if "lock" not in str(error).lower():
                raise
            time.sleep(_LOCK_PAUSE_SECONDS * (attempt + 1))
    log.warning(
        "warehouse.duckdb is held by another process; its views were not refreshed this run "
        "(the data is committed; the next run retries)"
    )
    return False


def _sync(path: Path, statements: list[str], signature: str) -> bool:
    if path.exists() and _signature_of(path) == signature:
        return True
    config: dict[str, str | bool | int | float | list[str]] = {
        "storage_compatibility_version": STORAGE_COMPATIBILITY
    }
    with duckdb.connect(str(path), config=config) as con:
        con.execute("BEGIN")
        for statement in statements:
            con.execute(statement)
        con.execute("CREATE TABLE IF NOT EXISTS _wirehouse_catalog (signature VARCHAR)")
        con.execute("DELETE FROM _wirehouse_catalog")
        con.execute("INSERT INTO _wirehouse_catalog VALUES (?)", [signature])
        checkpoint("catalog:before-commit")
        con.execute("COMMIT")
    log.info("warehouse.duckdb views refreshed at %s", path)
    return True


def _signature_of(path: Path) -> str | None:
    with duckdb.connect(str(path), read_only=True) as con:
        try:
            rows = con.execute("SELECT signature FROM _wirehouse_catalog").fetchall()
        except duckdb.CatalogException:
            return None
    return str(rows[0][0]) if rows else None


def _runs_view(home: Home) -> str:
    # visible_at is NULL only in markers written before it existed: those are long visible.
    return (
        f"CREATE OR REPLACE VIEW runs AS SELECT * FROM {_source(home, 'runs')} "
        "WHERE visible_at IS NULL OR visible_at <= current_timestamp"
    )


def _source(home: Home, table: str) -> str:
    """A read_parquet over the table's files (`lake.ensure_tables` guarantees there is one)."""
    folder = home.table_dir(table)
    if table == "articles":
        glob = _literal(str(folder / "*" / "*.parquet"))
        return (
            f"read_parquet({glob}, hive_partitioning = true, union_by_name = true, "
            "hive_types = {'published_month': VARCHAR})"
        )
    return f"read_parquet({_literal(str(folder / '*.parquet'))}, union_by_name = true)"


def _literal(text: str) -> str:
    """A SQL string literal (DDL cannot take bind parameters)."""
    return "'" + text.replace("'", "''") + "'"
