"""Operations on the lake: roll a night back, compact small files, expire old snapshots."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from warehouse.catalog import ALIAS, LAKE_SCHEMAS, transaction
from warehouse.loader import insert_rows, label

log = logging.getLogger(__name__)
# Tables whose rows belong to a night and go when it is rolled back. The archive index stays:
# the raw bytes are kept whatever became of them (nothing is ever lost), and a night that reads
# the same files again indexes them again.
NIGHT_TABLES = (
    "articles",
    "duplicates",
    "quarantine",
    "files",
    "minhash_bands",
    "minhash_signatures",
    "search_postings",
    "search_documents",
)
ROLLBACK_KINDS = ("nightly", "backfill")
# The lake is compacted once one partition of a table (one folder of data files) holds more
# than this many files: small files pile up where nights keep adding to one month, not where a
# backfill adds a file to each of many months.
COMPACT_AFTER_FILES = 16


class RollbackRefused(ValueError):
    """The night cannot be rolled back as asked; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class RolledBack:
    """What a rollback removed: per night, the rows it took out of each table."""

    run_id: str
    nights: dict[str, dict[str, int]] = field(default_factory=dict)  # newest first


def dependents(con: duckdb.DuckDBPyConnection, run_id: str) -> list[str]:
    """Later runs with a duplicate (of any kind) pointing at one of this run's articles."""
    rows = con.execute(
        "SELECT DISTINCT d.run_id FROM duplicates d JOIN articles a "
        "ON d.duplicate_of = a.article_id WHERE a.run_id = ? AND d.run_id <> ? ORDER BY 1",
        [run_id, run_id],
    ).fetchall()
    return [str(r[0]) for r in rows]


def rollback_plan(con: duckdb.DuckDBPyConnection, run_id: str, cascade: bool) -> list[str]:
    """The nights to roll back, newest first: the night, and with `cascade` those after it."""
    found = con.execute("SELECT status, kind FROM runs WHERE run_id = ?", [run_id]).fetchall()
    if not found:
        raise RollbackRefused(f"no run {run_id} in this warehouse (see `wirehouse status`)")
    status, kind = found[0]
    if status != "succeeded" or (kind or "nightly") not in ROLLBACK_KINDS:
        raise RollbackRefused(
            f"run {run_id} is a {kind or 'nightly'} run with status {status}: only succeeded "
            "nights and backfills can be rolled back"
        )
    chosen, queue = {run_id}, [run_id]
    while queue:
        later = [r for r in dependents(con, queue.pop()) if r not in chosen]
        if later and not cascade:
            raise RollbackRefused(
                f"later runs depend on {run_id}: {', '.join(later)} hold duplicates of its "
                "articles. Roll those back first, or pass --cascade to roll them back too "
                "(newest first)."
            )
        chosen.update(later)
        queue += later
    order = con.execute(
        "SELECT run_id FROM runs WHERE run_id IN (SELECT unnest($ids)) "
        "ORDER BY started_at DESC, run_id DESC",
        {"ids": sorted(chosen)},
    ).fetchall()
    return [str(r[0]) for r in order]


def rollback(
    con: duckdb.DuckDBPyConnection, run_id: str, op_row: dict[str, Any], cascade: bool = False
) -> RolledBack:
    """Remove nights' rows from every table, one compensating snapshot per night, newest first.

    Their files leave the ledger, so the next night reads them again. `op_row` is the
    operation's own `runs` row (kind `rollback`), written with the last snapshot.
    """
    nights = rollback_plan(con, run_id, cascade)
    done = RolledBack(op_row["run_id"])
    for position, night in enumerate(nights):
        with transaction(con):
            removed = {
                table: _count(con.execute(f"DELETE FROM {table} WHERE run_id = ?", [night]))
                for table in NIGHT_TABLES
            }
            con.execute(
                "UPDATE runs SET status = 'rolled_back', message = ? WHERE run_id = ?",
                [
                    f"rolled back by {op_row['run_id']} at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
                    night,
                ],
            )
            last = position == len(nights) - 1
            if last:
                insert_rows(con, "runs", [{**op_row, "finished_at": datetime.now(UTC)}])
            label(con, {**op_row, "articles": -removed["articles"]}, f"rollback of {night}")
        done.nights[night] = removed
        log.info("rolled back %s: %s", night, removed)
    return done


def _count(result: duckdb.DuckDBPyConnection) -> int:
    rows = result.fetchall()
    return int(rows[0][0]) if rows else 0


@dataclass(frozen=True, slots=True)
class Compacted:
    """Data files before and after, snapshots expired, files deleted from storage."""

    files_before: int
    files_after: int
    snapshots_expired: int
    files_deleted: int


def data_files(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """How many data files the table's current snapshot reads."""
    rows = con.execute(
        f"SELECT count(*) FROM ducklake_list_files('{ALIAS}', ?)", [table]
    ).fetchall()
    return int(rows[0][0])


def needs_compaction(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether some table has piled up small files: more than COMPACT_AFTER_FILES in one of its
    partitions (a partition's files share a folder)."""
    for table in LAKE_SCHEMAS:
        rows = con.execute(
            "SELECT count(*) AS files FROM ducklake_list_files(?, ?) "
            "GROUP BY regexp_replace(data_file, '/[^/]*$', '') ORDER BY files DESC LIMIT 1",
            [ALIAS, table],
        ).fetchall()
        if rows and int(rows[0][0]) > COMPACT_AFTER_FILES:
            return True
    return False


def compact(con: duckdb.DuckDBPyConnection, retention_days: float) -> Compacted:
    """Merge small files, expire snapshots past the retention, delete files nothing needs.

    Each step is a transaction of its own (DuckLake does not mix compaction with data
    changes). Files merged away stay for the snapshots of the retention, which still read them;
    they are deleted by the first compaction past it.
    """
    before = sum(data_files(con, t) for t in LAKE_SCHEMAS)
    con.execute(f"CALL ducklake_flush_inlined_data('{ALIAS}')")
    con.execute(f"CALL ducklake_rewrite_data_files('{ALIAS}')")
    con.execute(f"CALL ducklake_merge_adjacent_files('{ALIAS}')")
    cutoff = datetime.now(UTC) - timedelta(days=retention_days)
    expired = con.execute(
        f"CALL ducklake_expire_snapshots('{ALIAS}', older_than => ?)", [cutoff]
    ).fetchall()
    # Files merged away are scheduled for deletion at once, but the snapshots of the retention
    # still read them: only those scheduled before the cutoff go.
    deleted = con.execute(f"CALL ducklake_cleanup_old_files('{ALIAS}', older_than => ?)", [cutoff])
    deleted_files = len(deleted.fetchall())
    orphans = con.execute(
        f"CALL ducklake_delete_orphaned_files('{ALIAS}', older_than => ?)", [cutoff]
    )
    deleted_files += len(orphans.fetchall())
    after = sum(data_files(con, t) for t in LAKE_SCHEMAS)
    return Compacted(before, after, len(expired), deleted_files)
