"""Moving a home of the Parquet layout (before DuckLake) into its DuckLake, nothing lost.

The old layout: `lake/<table>/<run_id>.parquet` (articles under `published_month=YYYY-MM/`), a
run visible once its marker `lake/runs/<run_id>.parquet` exists and its rows counted only if its
status is `succeeded`; the MinHash index in `lake/_minhash/<FORMAT>/{postings,signatures,ids}/`;
the archive index in `archive/index/<run_id>.parquet`; views in `warehouse.duckdb`.

`migrate` reads it as the old views did and writes everything in one DuckLake transaction (one
snapshot, labelled with the migration's own `runs` row, kind `migrate`), checks the counts and
article ids before committing, then moves the old files into `pre-ducklake/` (never deletes
them). A run killed before the commit leaves nothing visible and the old files in place: the
next `migrate` redoes it. One killed after the commit finds the migration's `runs` row and only
finishes the move. Run it before anything opens the lake for a night: a night's recovery deletes
every data file under the data path that DuckLake does not reference, the old files included.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from transforms.night import UNDATED_MONTH
from warehouse.archive import INDEX_SCHEMA
from warehouse.catalog import (
    LAKE_SCHEMAS,
    MONTH_COLUMN,
    connect,
    exists,
    identifier,
    literal,
    open_lake,
    orphaned_data_files,
    transaction,
)
from warehouse.faults import checkpoint
from warehouse.home import Home
from warehouse.loader import insert_arrow, insert_rows, label
from warehouse.lock import run_lock
from warehouse.nearindex import BANDS_TABLE, FORMAT, SIGNATURES_TABLE, index_rows
from warehouse.search import reindex

log = logging.getLogger(__name__)

BACKUP = "pre-ducklake"
KIND = "migrate"
MESSAGE = "migrate from the Parquet layout"
PLACEHOLDER = "_schema.parquet"
# Tables whose rows count only for runs that committed with status succeeded.
DATA_TABLES = ("articles", "duplicates", "quarantine", "files")
# Partition folder values of articles without a publication time (now `undated`).
NO_MONTH = ("none", "None", "__HIVE_DEFAULT_PARTITION__", UNDATED_MONTH)
# Columns the old files lack whose value the old code implied: it only read times off the page.
DERIVED = {"published_at_source": "CASE WHEN published_at IS NULL THEN 'none' ELSE 'page' END"}
# The only kinds a run of the old layout had (its report says which; nightly by default).
OLD_KINDS = ("nightly", "backfill")
# The DuckLake schema folder under the data path: everything else there is the old layout's.
LAKE_SCHEMA_DIR = "main"


class MigrationError(RuntimeError):
    """The migration cannot go on, or its result differs from the old layout: nothing moved."""


@dataclass(frozen=True, slots=True)
class Migrated:
    """What a migration did: row counts per table before (old layout) and after (DuckLake)."""

    run_id: str  # the migration's own run ("" when there was nothing to migrate)
    before: dict[str, int]
    after: dict[str, int]
    backup: Path  # where the old layout's files now are
    moved: tuple[Path, ...] = ()  # what this call moved there
    committed: bool = False  # whether this call wrote the DuckLake transaction


@dataclass(frozen=True, slots=True)
class OldLayout:
    """The old layout's files of one home, and its runs by commit status."""

    home: Home
    markers: tuple[str, ...]
    succeeded: tuple[str, ...]

    def files(self, table: str) -> list[str]:
        """A table's run files (not its empty schema placeholder, not temp files)."""
        pattern = "*/*.parquet" if table == "articles" else "*.parquet"
        return _parquet_files(self.locate(f"lake/{table}"), pattern)

    @property
    def index_dir(self) -> Path:
        """The MinHash index of the current parameters."""
        return self.locate("lake/_minhash") / FORMAT

    def locate(self, folder: str) -> Path:
        """An old folder: in place, or in the backup if a migration killed mid-move put it there."""
        here = self.home.root / folder
        return here if here.exists() else self.home.root / BACKUP / folder


def old_markers(home: Home) -> list[str]:
    """The run markers of the old layout (the runs that committed, whatever their status)."""
    return _parquet_files(home.lake / "runs", "*.parquet")


def _parquet_files(folder: Path, pattern: str) -> list[str]:
    """Parquet files of a folder, placeholders and hidden temp files left out."""
    if not folder.is_dir():
        return []
    found = folder.glob(pattern)
    return sorted(str(p) for p in found if p.name != PLACEHOLDER and not p.name.startswith("."))


def needs_migration(home: Home) -> bool:
    """Old markers are there and the DuckLake holds no runs but the old ones and a migration."""
    markers = old_markers(home)
    if not markers:
        return False
    if not exists(home):
        return True
    old = {Path(m).stem for m in markers}
    return all(kind == KIND or run_id in old for run_id, kind in _lake_runs(home))


def _lake_runs(home: Home) -> list[tuple[str, str | None]]:
    """(run_id, kind) of the DuckLake's runs; none when the table is not there yet."""
    with closing(connect(home)) as con:
        try:
            rows = con.execute("SELECT run_id, kind FROM runs").fetchall()
        except duckdb.CatalogException:
            return []
    return [(str(r[0]), r[1]) for r in rows]


def migrate(home: Home, *, hold_lock: bool = True) -> Migrated:
    """Copy the old layout into the DuckLake in one snapshot, check it, move the old files."""
    with _locked(home, hold_lock):
        backup = home.root / BACKUP
        markers = old_markers(home)
        if not markers:
            return Migrated("", {}, {}, backup)
        with closing(open_lake(home)) as con:
            old = read_layout(con, home, markers)
            before = old_counts(con, old)
            run_id = migration_run(con)
            committed = run_id is None
            if run_id is None:
                refuse_other_runs(con)
                run_id = commit_migration(con, old, before)
            after = check(con, old, before)
            named = _packs_named(con)
        moved = move_old_files(home, named)
        _remove_orphans(home)
    log.info("migrated %s: %s; old files in %s", home.root, after, backup)
    return Migrated(run_id, before, after, backup, moved, committed)


@contextmanager
def _locked(home: Home, hold: bool) -> Iterator[None]:
    """The run lock for the block, unless the caller already holds it."""
    if not hold:
        yield
        return
    with run_lock(home):
        yield


def read_layout(con: duckdb.DuckDBPyConnection, home: Home, markers: list[str]) -> OldLayout:
    """The old layout's committed runs, and which of them succeeded (as the old views read)."""
    rows = con.execute(
        "SELECT run_id, status FROM read_parquet($files, union_by_name = true)",
        {"files": markers},
    ).fetchall()
    succeeded = sorted(str(r[0]) for r in rows if r[1] == "succeeded")
    return OldLayout(home, tuple(markers), tuple(succeeded))


def old_counts(con: duckdb.DuckDBPyConnection, old: OldLayout) -> dict[str, int]:
    """Rows per table in the old layout, as its views showed them (index tables too)."""
    counts = {
        table: _count(con, *_old_source(con, old, table, ["run_id"])) for table in DATA_TABLES
    }
    markers = {"files": list(old.markers)}
    counts["runs"] = _count(
        con, "SELECT * FROM read_parquet($files, union_by_name = true)", markers
    )
    counts["archive_index"] = sum(pq.read_metadata(p).num_rows for p in _archive_files(old))
    bands = sum(pq.read_metadata(p).num_rows for p in _index_files(old, "postings", ".parquet"))
    counts[BANDS_TABLE] = bands
    sigs = sum(pq.read_metadata(p).num_rows for p in _index_files(old, "ids", ".parquet"))
    counts[SIGNATURES_TABLE] = sigs
    return counts


def _count(con: duckdb.DuckDBPyConnection, query: str, params: dict[str, Any]) -> int:
    """How many rows a query returns (0 for no query: a table without files)."""
    if not query:
        return 0
    rows = con.execute(f"SELECT count(*) FROM ({query})", params).fetchall()
    return int(rows[0][0])


def _old_source(
    con: duckdb.DuckDBPyConnection, old: OldLayout, table: str, columns: list[str] | None = None
) -> tuple[str, dict[str, Any]]:
    """A SELECT of a data table's rows of succeeded runs, its columns named as in the lake."""
    files = old.files(table)
    if not files:
        return "", {}
    options = "union_by_name = true"
    if table == "articles":
        options += ", hive_partitioning = true, hive_types = {'published_month': VARCHAR}"
    source = f"read_parquet($files, {options})"
    present = set(_describe(con, source, files))
    wanted = columns or [c for c in LAKE_SCHEMAS[table].names if c in present or c in DERIVED]
    select = [_column(table, c, present) for c in wanted]
    query = (
        f"SELECT {', '.join(select)} FROM {source} "
        "WHERE run_id IN (SELECT unnest($succeeded::VARCHAR[]))"
    )
    return query, {"files": files, "succeeded": list(old.succeeded)}


def _column(table: str, column: str, present: set[str]) -> str:
    """One column of the SELECT: read as it is, or derived as the old code would have set it."""
    if column == MONTH_COLUMN and table == "articles":
        none = ", ".join(literal(v) for v in NO_MONTH)
        return (
            f"CASE WHEN coalesce({MONTH_COLUMN}, 'none') IN ({none}) THEN {literal(UNDATED_MONTH)} "
            f"ELSE {MONTH_COLUMN} END AS {MONTH_COLUMN}"
        )
    if column in present or column not in DERIVED:
        return identifier(column)
    return f"{DERIVED[column]} AS {identifier(column)}"


def _archive_files(old: OldLayout) -> list[str]:
    """The archive index files of succeeded runs (the old recovery dropped the others' packs)."""
    folder = old.locate("archive/index")
    return [
        str(folder / f"{run}.parquet") for run in old.succeeded if _is_file(folder, run, ".parquet")
    ]


def _index_files(old: OldLayout, part: str, suffix: str) -> list[str]:
    """One part of the MinHash index, for the succeeded runs that have it."""
    folder = old.index_dir / part
    return [
        str(folder / f"{run}{suffix}") for run in old.succeeded if _is_file(folder, run, suffix)
    ]


def _is_file(folder: Path, run: str, suffix: str) -> bool:
    """Whether a run has its file in a folder of the old layout."""
    return (folder / f"{run}{suffix}").is_file()


def migration_run(con: duckdb.DuckDBPyConnection) -> str | None:
    """The migration already committed to this DuckLake, if any (its run id)."""
    rows = con.execute(
        "SELECT run_id FROM runs WHERE kind = ? AND status = 'succeeded' "
        "ORDER BY started_at DESC LIMIT 1",
        [KIND],
    ).fetchall()
    return str(rows[0][0]) if rows else None


def refuse_other_runs(con: duckdb.DuckDBPyConnection) -> None:
    """Refuse to mix the old layout's history into a DuckLake that already has runs."""
    rows = con.execute("SELECT count(*) FROM runs").fetchall()
    if int(rows[0][0]):
        raise MigrationError(
            f"the DuckLake already holds {rows[0][0]} runs: migrating the Parquet layout into "
            "it would mix two histories. Point WIREHOUSE_CATALOG at a new catalog, or move the "
            "old `lake/` folders away."
        )


def commit_migration(con: duckdb.DuckDBPyConnection, old: OldLayout, before: dict[str, int]) -> str:
    """Every table's rows in one transaction, checked before the commit: the run's id."""
    started = datetime.now(UTC)
    run_row = _run_row(started, before)
    with transaction(con):
        copy_runs(con, old)
        for table in DATA_TABLES:
            copy_table(con, old, table)
        copy_archive_index(con, old)
        copy_near_index(con, old)
        reindex(con)  # the old layout had no search index
        insert_rows(con, "runs", [{**run_row, "finished_at": datetime.now(UTC)}])
        check(con, old, before)
        label(con, run_row, MESSAGE)
        checkpoint("migrate:copied")
    checkpoint("migrate:committed")
    return str(run_row["run_id"])


def _run_row(started: datetime, before: dict[str, int]) -> dict[str, Any]:
    """The migration's own `runs` row: it loads no new file, its message says what it moved."""
    moved = ", ".join(f"{table} {n}" for table, n in before.items())
    return {
        "run_id": f"{KIND}-{started:%Y%m%dT%H%M%SZ}",
        "flow_run_id": None,
        "kind": KIND,
        "started_at": started,
        "finished_at": started,
        "status": "succeeded",
        "message": f"{MESSAGE}: {moved}",
        "inbox": None,
        "files_seen": 0,
        "files_new": 0,
        "articles": 0,
        "duplicates": 0,
        "quarantined": 0,
        "failure_ratio": None,
        "max_failure_ratio": None,
        "parser_version": None,
    }


def copy_runs(con: duckdb.DuckDBPyConnection, old: OldLayout) -> None:
    """Every marker's row, `visible_at` dropped, `kind` from the run's report (or nightly)."""
    present = set(_describe(con, "read_parquet($files, union_by_name = true)", old.markers))
    wanted = [c for c in LAKE_SCHEMAS["runs"].names if c in present and c != "kind"]
    runs = con.execute(
        f"SELECT {', '.join(identifier(c) for c in wanted)} "
        "FROM read_parquet($files, union_by_name = true) ORDER BY started_at, run_id",
        {"files": list(old.markers)},
    ).to_arrow_table()
    kinds = [_kind_of(old.home, str(run)) for run in runs.column("run_id").to_pylist()]
    insert_arrow(con, "runs", runs.append_column("kind", pa.array(kinds, pa.string())))


def _describe(con: duckdb.DuckDBPyConnection, source: str, files: Sequence[str]) -> list[str]:
    """The column names of a read_parquet over files (`$files` in the source)."""
    described = con.execute(f"DESCRIBE SELECT * FROM {source}", {"files": list(files)})
    return [str(r[0]) for r in described.fetchall()]


def _kind_of(home: Home, run_id: str) -> str:
    """A run's kind as its report recorded it; nightly when there is no report."""
    report = home.reports / f"{run_id}.json"
    try:
        kind = json.loads(report.read_text()).get("kind")
    except (OSError, ValueError, AttributeError):
        return "nightly"
    return kind if kind in OLD_KINDS else "nightly"


def copy_table(con: duckdb.DuckDBPyConnection, old: OldLayout, table: str) -> None:
    """A data table's rows of succeeded runs, by name, in the order a night writes them."""
    query, params = _old_source(con, old, table)
    if query:
        order = "published_at, dump_file" if table == "articles" else "run_id, dump_file"
        con.execute(f"INSERT INTO {table} BY NAME {query} ORDER BY {order}", params)


def copy_archive_index(con: duckdb.DuckDBPyConnection, old: OldLayout) -> None:
    """Each succeeded run's archive index file, with its run id (the file's name)."""
    for path in _archive_files(old):
        index = pq.read_table(path).select(INDEX_SCHEMA.names).cast(INDEX_SCHEMA)
        run = pa.array([Path(path).stem] * index.num_rows, pa.string())
        insert_arrow(con, "archive_index", index.append_column("run_id", run))


def copy_near_index(con: duckdb.DuckDBPyConnection, old: OldLayout) -> None:
    """Each succeeded run's MinHash ids and signatures, as the two index tables' rows."""
    if not old.index_dir.is_dir() and old.locate("lake/_minhash").is_dir():
        log.warning("no MinHash index of %s: `wirehouse reprocess` rebuilds it", FORMAT)
    for path in _index_files(old, "ids", ".parquet"):
        run = Path(path).stem
        ids = [str(a) for a in pq.read_table(path, columns=["article_id"]).column(0).to_pylist()]
        sigs = np.load(old.index_dir / "signatures" / f"{run}.npy")
        if sigs.shape[0] != len(ids):
            raise MigrationError(
                f"the MinHash index of run {run} has {len(ids)} ids but {sigs.shape[0]} "
                "signatures: nothing was migrated"
            )
        for table, rows in index_rows(ids, sigs.astype(np.uint32), run).items():
            insert_arrow(con, table, rows)


def lake_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows per table of the DuckLake, as this connection sees them."""
    return {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]) for t in LAKE_SCHEMAS}


def check(con: duckdb.DuckDBPyConnection, old: OldLayout, before: dict[str, int]) -> dict[str, int]:
    """The DuckLake's counts; raises if they, or the article ids, differ from the old layout's."""
    after = lake_counts(con)
    expected = {**before, "runs": before["runs"] + 1}  # and the migration's own row
    differ = {t: (expected[t], after.get(t)) for t in expected if after.get(t) != expected[t]}
    if differ:
        raise MigrationError(f"row counts differ (old layout, DuckLake): {differ}")
    query, params = _old_source(con, old, "articles", ["article_id", "run_id"])
    if query:
        missing = _count(
            con,
            f"SELECT article_id FROM ({query}) EXCEPT ALL SELECT article_id FROM articles",
            params,
        )
        if missing:
            raise MigrationError(f"{missing} article ids of the old layout are not in articles")
    return after


def _packs_named(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The packs the archive index names (the others are moved to the backup)."""
    return {str(r[0]) for r in con.execute("SELECT DISTINCT pack FROM archive_index").fetchall()}


def move_old_files(home: Home, packs: set[str]) -> tuple[Path, ...]:
    """Move the old layout's files into the backup, the run markers last (a rerun's cue)."""
    backup = home.root / BACKUP
    moved = []
    for source in _old_files(home, packs):
        if source.exists():
            _move(source, backup / source.relative_to(home.root))
            moved.append(source)
            checkpoint("migrate:moved")
    return tuple(moved)


def _old_files(home: Home, packs: set[str]) -> list[Path]:
    """What the old layout has beside DuckLake's files, its run markers' folder last."""
    markers = home.lake / "runs"
    keep = {LAKE_SCHEMA_DIR, markers.name}
    found = sorted(home.lake.iterdir()) if home.lake.is_dir() else []
    sources = [p for p in found if p.name not in keep]
    archive = Path(home.archive)  # the old layout's archive was always the home's folder
    sources += [archive / "index", home.root / "warehouse.duckdb"]
    sources += [home.root / "warehouse.duckdb.wal"]
    # Packs no index row names (a failed or killed old run's): a night would delete them.
    sources += [p for p in sorted((archive / "packs").glob("*")) if p.name not in packs]
    return [*sources, markers]


def _move(source: Path, target: Path) -> None:
    """Rename a file or folder into the backup; folders merge into one already there."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        os.replace(source, target)
    elif source.is_dir() and target.is_dir():
        for child in sorted(source.iterdir()):
            _move(child, target / child.name)
        source.rmdir()
    else:
        raise MigrationError(f"{target} exists already: move it away, then migrate again")


def _remove_orphans(home: Home) -> None:
    """Data files of an attempt killed before its commit (the old files are out of the way)."""
    with closing(connect(home, read_only=False)) as con:
        for path in orphaned_data_files(con, delete=True):
            log.warning("migration: removed %s, left by an attempt that did not commit", path)
