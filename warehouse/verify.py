"""The warehouse's invariants, checked: each check names the rows or files that break it."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from warehouse.archive import INDEX_SCHEMA, read_archived
from warehouse.catalog import lake_connection
from warehouse.home import Home
from warehouse.inbox import dump_name
from warehouse.lake import committed_run_ids, is_placeholder, succeeded_run_ids
from warehouse.lock import lock_holder

# name -> (what it promises, a query returning the offending rows; empty when it holds)
CHECKS: dict[str, tuple[str, str]] = {
    "one_place_per_dump": (
        "every loaded, duplicate or quarantined file is in exactly one of articles, duplicates, "
        "quarantine, and in the one its status names",
        """
        WITH placed AS (
            SELECT dump_file, 'loaded' AS status FROM articles
            UNION ALL SELECT dump_file, 'duplicate' FROM duplicates
            UNION ALL SELECT dump_file, 'quarantined' FROM quarantine
        )
        SELECT coalesce(f.dump_file, p.dump_file) AS dump_file, f.status AS ledger_status,
               list(p.status) AS placed_in
        FROM files f FULL OUTER JOIN placed p USING (dump_file)
        WHERE coalesce(f.status, '') <> 'unpacked'
        GROUP BY ALL
        HAVING count(p.status) <> 1 OR any_value(p.status) IS DISTINCT FROM any_value(f.status)
        """,
    ),
    "one_ledger_row_per_name_and_bytes": (
        "the ledger records each (dump_file, dump_sha256) once",
        "SELECT dump_file, dump_sha256, count(*) AS n FROM files GROUP BY ALL HAVING n > 1",
    ),
    "unique_article_ids": (
        "article_id is unique in articles",
        "SELECT article_id, count(*) AS n FROM articles GROUP BY ALL HAVING n > 1",
    ),
    "duplicates_point_at_articles": (
        "every duplicate points at a row of articles",
        "SELECT d.dump_file, d.duplicate_of FROM duplicates d "
        "ANTI JOIN articles a ON a.article_id = d.duplicate_of",
    ),
    "quarantine_has_reasons": (
        "every quarantined dump says why",
        "SELECT dump_file FROM quarantine WHERE coalesce(reason, '') = '' "
        "OR coalesce(detail, '') = ''",
    ),
}


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken invariant and a sample of the rows that break it."""

    check: str
    promise: str
    count: int
    sample: list[tuple[object, ...]]


def violations(con: duckdb.DuckDBPyConnection, sample: int = 5) -> list[Violation]:
    """Run every check over the committed views; an empty list means the warehouse is sound."""
    found: list[Violation] = []
    for name, (promise, query) in CHECKS.items():
        rows = con.execute(query).fetchall()
        if rows:
            found.append(Violation(name, promise, len(rows), rows[:sample]))
    return found


# Every file the ledger holds has its bytes in the archive, but symlinks (no bytes to keep),
# same-bytes copies of a quarantined dump (their bytes are the first copy's), and bundle members
# refused unread (their bytes are inside the bundle, which is archived whole).
_ARCHIVE_CHECK = """
    SELECT f.dump_file, f.dump_sha256
    FROM files f
    LEFT JOIN quarantine q USING (dump_file)
    WHERE coalesce(q.reason, '') <> 'symlink'
      AND f.dump_sha256 NOT IN (SELECT dump_sha256 FROM archive_index)
      AND NOT (
        strpos(f.dump_file, '!') > 0
        AND split_part(f.dump_file, '!', 1) IN (
            SELECT b.dump_file FROM files b
            WHERE b.dump_sha256 IN (SELECT dump_sha256 FROM archive_index)
        )
      )
"""


def verify(home: Home, inbox: Path | None = None, deep: bool = False) -> list[Violation]:
    """All the checks: the views' invariants, lake files, archive, and the inbox if given."""
    found = lake_file_violations(home)
    if any(v.check == "lake_files_readable" for v in found):
        return found  # the views cannot even be opened over an unreadable file
    with lake_connection(home) as con:
        found += violations(con)
        found += archive_violations(con, home, deep)
        if inbox is not None:
            found += inbox_violations(con, home, inbox)
    return found


def lake_file_violations(home: Home) -> list[Violation]:
    """Every Parquet file of a committed run is readable; leftovers of others are reported."""
    committed = committed_run_ids(home)
    unreadable: list[tuple[object, ...]] = []
    uncommitted: list[tuple[object, ...]] = []
    for path in sorted(home.lake.rglob("*.parquet")):
        if path.parent.name != "runs" and path.stem not in committed and not is_placeholder(path):
            uncommitted.append((str(path),))
            continue
        try:
            pq.read_metadata(path)
        except (OSError, pa.ArrowInvalid) as error:
            unreadable.append((str(path), str(error)))
    found = []
    if unreadable:
        found.append(
            _violation("lake_files_readable", "every committed Parquet file reads", unreadable)
        )
    if uncommitted and lock_holder(home.lock) is None:  # a run in progress has files in flight
        promise = "no files of runs that never committed (the next run removes them)"
        found.append(_violation("no_uncommitted_files", promise, uncommitted))
    return found


def archive_violations(
    con: duckdb.DuckDBPyConnection, home: Home, deep: bool = False
) -> list[Violation]:
    """Every file's raw bytes are in the archive; with `deep`, re-read and re-hashed too."""
    _register_archive_index(con, home)
    missing = con.execute(_ARCHIVE_CHECK).fetchall()
    found = []
    if missing:
        found.append(_violation("archive_complete", "every file's raw bytes are archived", missing))
    if deep:
        corrupt = [
            (sha,)
            for (sha,) in con.execute("SELECT DISTINCT dump_sha256 FROM archive_index").fetchall()
            if _rehash(home, sha) != sha
        ]
        if corrupt:
            found.append(_violation("archive_intact", "archived bytes hash to their name", corrupt))
    return found


def inbox_violations(con: duckdb.DuckDBPyConnection, home: Home, inbox: Path) -> list[Violation]:
    """Files that were in the inbox before the last successful run started, yet have no row."""
    rows = con.execute("SELECT max(started_at) FROM runs WHERE status = 'succeeded'").fetchall()
    last = rows[0][0]
    if last is None:
        return []
    recorded = {name for (name,) in con.execute("SELECT dump_file FROM files").fetchall()}
    missed = [
        (name,)
        for name, mtime in _inbox_files(inbox)
        if mtime < last.timestamp() and name not in recorded
    ]
    if not missed:
        return []
    promise = "every file in the inbox before the last run has a files row"
    return [_violation("inbox_accounted_for", promise, missed)]


def _register_archive_index(con: duckdb.DuckDBPyConnection, home: Home) -> None:
    """The archive index of succeeded runs (an index of a run that did not commit is ignored)."""
    succeeded = sorted(succeeded_run_ids(home))
    files = [
        str(p) for p in sorted((home.archive / "index").glob("*.parquet")) if p.stem in succeeded
    ]
    table = pq.read_table(files, schema=INDEX_SCHEMA) if files else INDEX_SCHEMA.empty_table()
    con.register("archive_index", table)


def _rehash(home: Home, sha256: str) -> str | None:
    data = read_archived(home, sha256)
    return None if data is None else hashlib.sha256(data).hexdigest()


def _inbox_files(inbox: Path) -> list[tuple[str, float]]:
    """Names (as the ledger writes them) and mtimes of the inbox's files and links."""
    out = []
    for root, _dirs, names in os.walk(inbox):
        for name in names:
            path = Path(root) / name
            out.append((dump_name(inbox, path), path.lstat().st_mtime))
    return out


def _violation(check: str, promise: str, rows: Sequence[tuple[object, ...]]) -> Violation:
    return Violation(check, promise, len(rows), list(rows[:5]))
