"""The warehouse's invariants, checked: each check names the rows or files that break it."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from warehouse.archive import read_archived
from warehouse.catalog import ALIAS, LAKE_SCHEMAS, lake_connection, orphaned_data_files
from warehouse.home import Home
from warehouse.inbox import dump_name
from warehouse.inbox.s3 import object_times
from warehouse.lock import lock_holder
from warehouse.search import DOCUMENTS_TABLE, POSTINGS_TABLE
from warehouse.storage import is_remote

# Each file of the ledger in exactly one of the tables its fate names; `rows` narrows every
# table to some rows (one night's), or is empty for all.
_ONE_PLACE = """
    WITH placed AS (
        SELECT dump_file, dump_sha256, 'loaded' AS status FROM articles {rows}
        UNION ALL SELECT dump_file, dump_sha256, 'duplicate' FROM duplicates {rows}
        UNION ALL SELECT dump_file, dump_sha256, 'quarantined' FROM quarantine {rows}
    )
    -- a file is a (name, bytes) pair: a name delivered again with new bytes is another file
    SELECT coalesce(f.dump_file, p.dump_file) AS dump_file,
           coalesce(f.dump_sha256, p.dump_sha256) AS dump_sha256, f.status AS ledger_status,
           list(p.status) AS placed_in
    FROM (SELECT * FROM files {rows}) f FULL OUTER JOIN placed p USING (dump_file, dump_sha256)
    WHERE coalesce(f.status, '') <> 'unpacked'
    GROUP BY ALL
    HAVING count(p.status) <> 1 OR any_value(p.status) IS DISTINCT FROM any_value(f.status)
"""

# Each article in the search index's documents once, and nothing else there.
_SEARCH_COVER = f"""
    SELECT article_id, count(a.article_id) AS in_articles, count(d.article_id) AS in_index
    FROM (SELECT article_id FROM articles {{rows}}) a
        FULL OUTER JOIN (SELECT article_id FROM {DOCUMENTS_TABLE} {{rows}}) d USING (article_id)
    GROUP BY article_id HAVING in_articles <> 1 OR in_index <> 1
"""

# name -> (what it promises, a query returning the offending rows; empty when it holds)
CHECKS: dict[str, tuple[str, str]] = {
    "one_place_per_dump": (
        "every loaded, duplicate or quarantined file is in exactly one of articles, duplicates, "
        "quarantine, and in the one its status names",
        _ONE_PLACE.format(rows=""),
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
    "search_index_covers_articles": (
        "every article is in the search index once, and it holds no other "
        "(`wirehouse reindex` indexes what is missing)",
        _SEARCH_COVER.format(rows=""),
    ),
    "search_postings_of_indexed_articles": (
        "every posting of the search index is of an indexed article",
        f"SELECT DISTINCT p.article_id FROM {POSTINGS_TABLE} p "
        f"ANTI JOIN {DOCUMENTS_TABLE} d USING (article_id)",
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
    """Run every check over the tables; an empty list means the warehouse is sound."""
    found: list[Violation] = []
    for name, (promise, query) in CHECKS.items():
        rows = con.execute(query).fetchall()
        if rows:
            found.append(Violation(name, promise, len(rows), rows[:sample]))
    return found


# The same promises for one night's rows, at a cost that follows the night, not the warehouse:
# each query reads the night's rows (files of other nights are pruned by their run_id
# statistics) and looks up only the keys they name elsewhere. `$run` is the night's run id.
NIGHT_CHECKS: dict[str, tuple[str, str]] = {
    "one_place_per_dump": (
        CHECKS["one_place_per_dump"][0],
        _ONE_PLACE.format(rows="WHERE run_id = $run"),
    ),
    "search_index_covers_articles": (
        CHECKS["search_index_covers_articles"][0],
        _SEARCH_COVER.format(rows="WHERE run_id = $run"),
    ),
    "counts_add_up": (
        "the night's rows in each table are as many as its runs row counts",
        """
        SELECT r.run_id, r.articles, (SELECT count(*) FROM articles WHERE run_id = $run) AS a,
               r.duplicates, (SELECT count(*) FROM duplicates WHERE run_id = $run) AS d,
               r.quarantined, (SELECT count(*) FROM quarantine WHERE run_id = $run) AS q,
               r.files_new, (SELECT count(*) FROM files WHERE run_id = $run) AS f
        FROM runs r WHERE r.run_id = $run AND r.status = 'succeeded'
          AND (r.articles <> a OR r.duplicates <> d OR r.quarantined <> q OR r.files_new <> f)
        """,
    ),
    "one_ledger_row_per_name_and_bytes": (
        CHECKS["one_ledger_row_per_name_and_bytes"][0],
        "SELECT dump_file, dump_sha256, count(*) AS n FROM files "
        "WHERE dump_file IN (SELECT dump_file FROM files WHERE run_id = $run) "
        "GROUP BY ALL HAVING n > 1",
    ),
    "unique_article_ids": (
        CHECKS["unique_article_ids"][0],
        "SELECT article_id, count(*) AS n FROM articles "
        "WHERE article_id IN (SELECT article_id FROM articles WHERE run_id = $run) "
        "GROUP BY ALL HAVING n > 1",
    ),
    "duplicates_point_at_articles": (
        CHECKS["duplicates_point_at_articles"][0],
        "SELECT d.dump_file, d.duplicate_of FROM duplicates d "
        "WHERE d.run_id = $run AND d.duplicate_of NOT IN ("
        "  SELECT article_id FROM articles WHERE article_id IN ("
        "    SELECT duplicate_of FROM duplicates WHERE run_id = $run))",
    ),
    "quarantine_has_reasons": (
        CHECKS["quarantine_has_reasons"][0],
        "SELECT dump_file FROM quarantine WHERE run_id = $run "
        "AND (coalesce(reason, '') = '' OR coalesce(detail, '') = '')",
    ),
}


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


# _ARCHIVE_CHECK for one night's files: their bytes archived tonight or, for copies of earlier
# bytes, in an earlier night; only the night's hashes are looked up.
_NIGHT_ARCHIVE_CHECK = """
    WITH night AS (
        SELECT f.dump_file, f.dump_sha256 FROM files f
        LEFT JOIN (SELECT dump_file, reason FROM quarantine WHERE run_id = $run) q
            USING (dump_file)
        WHERE f.run_id = $run AND coalesce(q.reason, '') <> 'symlink'
    ),
    kept AS (
        SELECT dump_sha256 FROM archive_index
        WHERE dump_sha256 IN (SELECT dump_sha256 FROM night)
    )
    SELECT dump_file, dump_sha256 FROM night
    WHERE dump_sha256 NOT IN (SELECT dump_sha256 FROM kept)
      AND NOT (
        strpos(dump_file, '!') > 0
        AND split_part(dump_file, '!', 1) IN (
            SELECT b.dump_file FROM night b WHERE b.dump_sha256 IN (SELECT dump_sha256 FROM kept)
        )
      )
"""


def verify(home: Home, inbox: str | Path | None = None, deep: bool = False) -> list[Violation]:
    """All the checks: the tables' invariants, data files, archive, and the inbox if given."""
    with lake_connection(home) as con:
        found = data_file_violations(con, home)
        if any(v.check == "data_files_readable" for v in found):
            return found  # the tables cannot even be read over a missing or broken file
        found += violations(con)
        found += archive_violations(con, home, deep)
        if inbox is not None:
            found += inbox_violations(con, home, inbox)
    return found


def verify_night(con: duckdb.DuckDBPyConnection, run_id: str, snapshot: int) -> list[Violation]:
    """The checks at the end of a night, on the night's own connection, over what it changed:
    the data files its snapshot added read, its rows keep the tables' promises, its files' raw
    bytes are archived. `wirehouse verify` checks the whole warehouse."""
    added = [
        path
        for table in LAKE_SCHEMAS
        for path in _files_at(con, table, snapshot) - _files_at(con, table, snapshot - 1)
    ]
    unreadable = _unreadable(con, added)
    if unreadable:
        promise = "every data file of the night's snapshot reads"
        return [_violation("data_files_readable", promise, unreadable)]
    found: list[Violation] = []
    for name, (promise, query) in NIGHT_CHECKS.items():
        rows = con.execute(query, {"run": run_id}).fetchall()
        if rows:
            found.append(Violation(name, promise, len(rows), rows[:5]))
    missing = con.execute(_NIGHT_ARCHIVE_CHECK, {"run": run_id}).fetchall()
    if missing:
        promise = "every file's raw bytes are archived"
        found.append(_violation("archive_complete", promise, missing))
    return found


def _files_at(con: duckdb.DuckDBPyConnection, table: str, snapshot: int) -> set[str]:
    """The data files of a table at a snapshot (none before the first)."""
    if snapshot < 1:
        return set()
    rows = con.execute(
        f"SELECT data_file FROM ducklake_list_files('{ALIAS}', ?, snapshot_version => ?)",
        [table, snapshot],
    ).fetchall()
    return {path for (path,) in rows}


def data_file_violations(con: duckdb.DuckDBPyConnection, home: Home) -> list[Violation]:
    """Every data file the catalog references reads; none lies there unreferenced."""
    files = [
        path
        for table in LAKE_SCHEMAS
        for (path,) in con.execute(
            f"SELECT data_file FROM ducklake_list_files('{ALIAS}', ?)", [table]
        ).fetchall()
    ]
    unreadable = _unreadable(con, files)
    found = []
    if unreadable:
        promise = "every data file of the current snapshot reads"
        found.append(_violation("data_files_readable", promise, unreadable))
    if lock_holder(home) is None:  # a run in progress has files in flight
        # DuckLake lists unreferenced files only on a writable attachment (a dry run: no change)
        with lake_connection(home, read_only=False) as writable:
            stray = [(path,) for path in orphaned_data_files(writable)]
        if stray:
            promise = "no data files that no snapshot references (the next run removes them)"
            found.append(_violation("no_unreferenced_files", promise, stray))
    return found


def _unreadable(con: duckdb.DuckDBPyConnection, files: list[str]) -> list[tuple[object, ...]]:
    """Files whose Parquet footer cannot be read: all at once, one by one only on a failure."""
    if not files:
        return []
    try:
        con.execute("SELECT count(*) FROM parquet_file_metadata($files)", {"files": files})
        return []
    except duckdb.Error:
        pass
    broken: list[tuple[object, ...]] = []
    for path in files:
        try:
            con.execute("SELECT count(*) FROM parquet_file_metadata(?)", [path])
        except duckdb.Error as error:
            broken.append((path, str(error).splitlines()[0]))
    return broken


def archive_violations(
    con: duckdb.DuckDBPyConnection, home: Home, deep: bool = False
) -> list[Violation]:
    """Every file's raw bytes are in the archive; with `deep`, re-read and re-hashed too."""
    missing = con.execute(_ARCHIVE_CHECK).fetchall()
    found = []
    if missing:
        found.append(_violation("archive_complete", "every file's raw bytes are archived", missing))
    if deep:
        corrupt = [
            (sha,)
            for (sha,) in con.execute("SELECT DISTINCT dump_sha256 FROM archive_index").fetchall()
            if _rehash(home, con, sha) != sha
        ]
        if corrupt:
            found.append(_violation("archive_intact", "archived bytes hash to their name", corrupt))
    return found


def inbox_violations(
    con: duckdb.DuckDBPyConnection, home: Home, inbox: str | Path
) -> list[Violation]:
    """Files that were in the inbox before the last successful run started, yet have no row."""
    rows = con.execute(
        "SELECT max(started_at) FROM runs WHERE status = 'succeeded' "
        "AND coalesce(kind, 'nightly') IN ('nightly', 'backfill')"
    ).fetchall()
    last = rows[0][0]
    if last is None:
        return []
    recorded = {name for (name,) in con.execute("SELECT dump_file FROM files").fetchall()}
    missed = [
        (name,)
        for name, mtime in _inbox_files(inbox, home)
        if mtime < last.timestamp() and name not in recorded
    ]
    if not missed:
        return []
    promise = "every file in the inbox before the last run has a files row"
    return [_violation("inbox_accounted_for", promise, missed)]


def _rehash(home: Home, con: duckdb.DuckDBPyConnection, sha256: str) -> str | None:
    try:
        data = read_archived(home, con, sha256)
    except OSError:
        return None
    return None if data is None else hashlib.sha256(data).hexdigest()


def _inbox_files(inbox: str | Path, home: Home) -> list[tuple[str, float]]:
    """Names (as the ledger writes them) and mtimes of the inbox's files, links or objects."""
    if is_remote(str(inbox)):
        return object_times(str(inbox), home.s3)
    out = []
    for root, _dirs, names in os.walk(inbox):
        for name in names:
            path = Path(root) / name
            out.append((dump_name(Path(inbox), path), path.lstat().st_mtime))
    return out


def _violation(check: str, promise: str, rows: Sequence[tuple[object, ...]]) -> Violation:
    return Violation(check, promise, len(rows), list(rows[:5]))
