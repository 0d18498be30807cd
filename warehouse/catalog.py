"""The DuckLake catalog: attaching it (read-write for runs, read-only for readers) and its tables.

Every connection is an in-memory DuckDB with the lake attached as `wh` and in use, so the
contract's tables answer to their bare names. DuckDB's extensions come from the PyPI wheels of
the project's environment (no machine here reaches DuckDB's extension repository), installed
once into an extension folder of that environment, with DuckDB's signature check on.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb
import pyarrow as pa

from transforms.records import SCHEMAS
from warehouse.files import temp_path
from warehouse.home import Home, NoWarehouse, S3Access, masked, secrets_of
from warehouse.lock import still_held
from warehouse.outage import catalog_broke_off, catalog_down, catalog_unavailable
from warehouse.search import POSTINGS_TABLE, search_macro, word_macros
from warehouse.search import SCHEMAS as SEARCH_SCHEMAS
from warehouse.stories import LAKE_VIEWS

ALIAS = "wh"
DUCKDB_VERSION = "v" + duckdb.__version__
EXTENSIONS = ("ducklake", "sqlite", "postgres", "httpfs", "fts")
# `articles` also stores its publication month, the analysts' usual grouping, and is
# partitioned by it (folders `published_month=2019-05`). Lakes made before issue 22 were
# partitioned by year(published_at), month(published_at): DuckLake 1.5.5 records both values of a
# file registered in that layout under one key (it keys them by column, not by transform:
# duckdb/ducklake #1234), and then cannot merge it; one column has one key.
MONTH_COLUMN = "published_month"
PARTITIONING = MONTH_COLUMN
# Where a night's dumps' raw bytes are: part of the night's snapshot, like its rows.
ARCHIVE_INDEX_SCHEMA = pa.schema(
    [
        ("dump_sha256", pa.string()),
        ("pack", pa.string()),  # file name under archive/packs, or "large/<sha>"
        ("offset", pa.int64()),
        ("length", pa.int64()),
        ("run_id", pa.string()),
    ]
)
# The near-duplicate index: each kept article's LSH band keys and its MinHash signature.
MINHASH_BANDS_SCHEMA = pa.schema(
    [("key", pa.uint64()), ("article_id", pa.string()), ("run_id", pa.string())]
)
MINHASH_SIGNATURES_SCHEMA = pa.schema(
    [("article_id", pa.string()), ("signature", pa.binary()), ("run_id", pa.string())]
)
# Every table of the lake and its columns: the contract's five, then the night's internals.
LAKE_SCHEMAS: dict[str, pa.Schema] = {
    "articles": SCHEMAS["articles"].append(pa.field(MONTH_COLUMN, pa.string())),
    **{name: schema for name, schema in SCHEMAS.items() if name != "articles"},
    "archive_index": ARCHIVE_INDEX_SCHEMA,
    "minhash_bands": MINHASH_BANDS_SCHEMA,
    "minhash_signatures": MINHASH_SIGNATURES_SCHEMA,
    **SEARCH_SCHEMAS,
}


class CommitUncertain(RuntimeError):
    """The catalog broke off a COMMIT: whether the server made it is not known until it
    answers again (the transaction was made whole or not at all)."""


# What DuckLake says when a read-only attach finds no lake in its catalog database.
_NO_LAKE = "creating a new DuckLake is explicitly disabled"


def extension_dir() -> Path:
    """Where this environment's DuckDB extensions are installed (inside the environment)."""
    return Path(sys.prefix) / "share" / "wirehouse" / "duckdb-extensions"


def install_extensions(con: duckdb.DuckDBPyConnection) -> Path:
    """Point DuckDB at the environment's extension folder, installing the wheels' files once."""
    folder = extension_dir()
    con.execute(f"SET extension_directory = {literal(str(folder))}")
    installed = {
        name
        for (name,) in con.execute(
            "SELECT extension_name FROM duckdb_extensions() WHERE installed"
        ).fetchall()
    }
    for name in EXTENSIONS:
        # The sqlite and postgres files install as sqlite_scanner and postgres_scanner.
        if name not in installed and f"{name}_scanner" not in installed:
            con.execute(f"INSTALL {literal(str(_wheel_file(name)))}")
    return folder


def _wheel_file(name: str) -> Path:
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"the DuckDB extension package duckdb-extension-{name} is not installed: "
            "run `make venv` (it installs the project's environment from uv.lock)"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    return root / "extensions" / DUCKDB_VERSION / f"{name}.duckdb_extension"


def attach_statements(
    home: Home, *, read_only: bool = False, snapshot: int | None = None
) -> list[str]:
    """The statements that attach the lake as `wh` and make it the default database."""
    # Times shown, and the months of lakes partitioned by year(published_at) and month(...),
    # follow the session's time zone: UTC.
    statements = ["SET TimeZone = 'UTC'"]
    if home.s3 is not None:
        statements += [*http_retry_settings(), s3_secret(home.s3)]
    options = [f"DATA_PATH {literal(home.data_url)}"]
    if not home.data_path:
        # The default data path is the home's `lake/`: a home moved or copied whole (catalog and
        # files together) keeps working. A data path set explicitly must match the catalog's.
        options.append("OVERRIDE_DATA_PATH true")
    if read_only:
        options.append("READ_ONLY")
    else:
        # Every insert goes to Parquet, none inlined in the catalog: flushing inlined rows
        # (compaction) publishes its snapshot before it is whole, and a reader's query that
        # lands in between counts rows twice or not at all (docs/decisions.md).
        options.append("DATA_INLINING_ROW_LIMIT 0")
    if not read_only and home.catalog_spec.startswith("sqlite:"):
        # Kept in the file: in SQLite's default journal a reader's open transaction makes the
        # night's COMMIT fail ("database is locked"); with a write-ahead log it never does.
        options.append("META_JOURNAL_MODE 'WAL'")
    if snapshot is not None:
        options.append(f"SNAPSHOT_VERSION {int(snapshot)}")
    target = literal(f"ducklake:{home.catalog_spec}")
    statements.append(f"ATTACH {target} AS {ALIAS} ({', '.join(options)})")
    statements.append(f"USE {ALIAS}")
    return [*statements, "LOAD fts", *word_macros()]


# DuckDB's httpfs tries a request again after an I/O error, a timeout or a 5xx answer (S3's 503
# SlowDown, 500 InternalError): 8 more tries after waits of 0.1, 0.2, 0.4 ... 12.8 s (25 s in
# all) before a lasting outage fails the statement; its defaults (3 tries, 2 s in all) fail a
# night when a share of S3's answers is disturbed. A request waits at most 30 s for an answer.
HTTP_RETRIES = {
    "http_retries": 8,
    "http_retry_wait_ms": 100,
    "http_retry_backoff": 2,
    "http_timeout": 30,
}


def http_retry_settings() -> list[str]:
    """The statements that set httpfs's retries of object storage's passing errors, for every
    connection of the database: a plain SET holds for one, not for its cursors nor for the
    connections DuckLake opens itself (its orphan listing, its commit)."""
    return [f"SET GLOBAL {name} = {int(value)}" for name, value in HTTP_RETRIES.items()]


def s3_secret(s3: S3Access) -> str:
    """A DuckDB secret for the data path on S3 (an S3-compatible endpoint: path-style URLs)."""
    options = [
        "TYPE s3",
        f"KEY_ID {literal(s3.key_id)}",
        f"SECRET {literal(s3.secret)}",
        f"REGION {literal(s3.region)}",
    ]
    if s3.endpoint:
        options += [f"ENDPOINT {literal(s3.endpoint)}", "URL_STYLE 'path'"]
    options.append(f"USE_SSL {'true' if s3.use_ssl else 'false'}")
    return f"CREATE OR REPLACE SECRET wirehouse_s3 ({', '.join(options)})"


def exists(home: Home) -> bool:
    """Whether the home's catalog has been created (for a PostgreSQL catalog: assumed so)."""
    spec = home.catalog_spec
    if spec.startswith("sqlite:"):
        return Path(spec.removeprefix("sqlite:")).is_file()
    return True


def connect(
    home: Home, *, read_only: bool = True, snapshot: int | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake attached as `wh` and in use (read-only by default)."""
    missing = NoWarehouse(
        f"no warehouse at {home.catalog_shown}: run `wirehouse ingest` first "
        "(or set WIREHOUSE_HOME / WIREHOUSE_CATALOG)"
    )
    if read_only and not exists(home):
        raise missing
    if not read_only:
        _make_folders(home)
    con = duckdb.connect(":memory:")
    try:
        install_extensions(con)
        with catalog_errors(home, "the query" if read_only else "the run"):
            for statement in attach_statements(home, read_only=read_only, snapshot=snapshot):
                con.execute(statement)
            if has_search_index(con):
                con.execute(search_macro())
    except duckdb.Error as error:
        con.close()
        if read_only and _NO_LAKE in str(error):  # a PostgreSQL database no night made a lake in
            raise missing from None
        # DuckDB names the catalog's whole connection string when it cannot reach it.
        shown = masked(str(error), *secrets_of(home))
        if shown == str(error):
            raise
        raise type(error)(shown) from None
    except BaseException:
        con.close()
        raise
    return con


@contextmanager
def catalog_errors(home: Home, doing: str) -> Iterator[None]:
    """A catalog that cannot be reached, within the block, is the one clear
    `ServiceUnavailable` (naming it without its password), not the driver's words."""
    try:
        yield
    except duckdb.Error as error:
        if not catalog_broke_off(error, home):
            raise
        raise catalog_unavailable(home, doing) from None


def has_search_index(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the lake has the search index's tables (a lake made before them gets them from
    the next night or `wirehouse reindex`)."""
    rows = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND table_name = ?",
        [ALIAS, POSTINGS_TABLE],
    ).fetchall()
    return bool(rows[0][0])


def _make_folders(home: Home) -> None:
    """The local folders a writer needs: the SQLite catalog's and the data path's."""
    if home.catalog_spec.startswith("sqlite:"):
        Path(home.catalog_spec.removeprefix("sqlite:")).parent.mkdir(parents=True, exist_ok=True)
    if home.data_is_local:
        Path(home.data_url).mkdir(parents=True, exist_ok=True)


@contextmanager
def lake_connection(
    home: Home, *, read_only: bool = True, snapshot: int | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """`connect` for the length of a block."""
    con = connect(home, read_only=read_only, snapshot=snapshot)
    try:
        yield con
    finally:
        con.close()


def snapshot_of(con: duckdb.DuckDBPyConnection, run_id: str) -> int:
    """The id of the last snapshot labelled with this run id (the warehouse right after it)."""
    rows = con.execute(
        f"SELECT max(snapshot_id) FROM {ALIAS}.snapshots() "
        "WHERE json_extract_string(commit_extra_info, '$.run_id') = ?",
        [run_id],
    ).fetchall()
    if not rows or rows[0][0] is None:
        raise LookupError(
            f"no snapshot of run {run_id}: not a run of this warehouse, or its snapshot has "
            "expired (see WIREHOUSE_SNAPSHOT_RETENTION_DAYS)"
        )
    return int(rows[0][0])


def connect_as_of(home: Home, run_id: str | None) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the warehouse as it was right after a run (None: as it is)."""
    if run_id is None:
        return connect(home)
    with lake_connection(home) as con:
        snapshot = snapshot_of(con, run_id)
    return connect(home, snapshot=snapshot)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN, then COMMIT at the end of the block, or ROLLBACK if it raises."""
    con.execute("BEGIN")
    try:
        yield
    except BaseException as error:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            # The catalog went away mid-transaction: the server dropped the transaction with
            # its connection. The error that broke the block is the one to tell.
            if not catalog_down(error):
                raise
        raise
    try:
        still_held()  # a catalog restarted since the run began: its lock is taken again
    except BaseException:
        with suppress(duckdb.Error):  # another run took the lock: nothing of this one stays
            con.execute("ROLLBACK")
        raise
    try:
        con.execute("COMMIT")
    except duckdb.Error as error:
        if not catalog_down(error):
            raise
        raise CommitUncertain(
            "the catalog went away during the commit: it may or may not have gone through"
        ) from error


def cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A connection of its own (for another thread) to the same attached lake, in use."""
    other = con.cursor()
    other.execute(f"USE {ALIAS}")
    return other


def open_lake(home: Home) -> duckdb.DuckDBPyConnection:
    """A read-write connection to the lake, its tables created or given new columns first."""
    if not exists(home):
        _create_sqlite_catalog(home)
    con = connect(home, read_only=False)
    try:
        ensure_tables(con)
    except BaseException:
        con.close()
        raise
    return con


def _create_sqlite_catalog(home: Home) -> None:
    """A new SQLite catalog with its tables, built under a temporary name and renamed into
    place, so that a process killed while creating it leaves no half-made catalog."""
    final = Path(home.catalog_spec.removeprefix("sqlite:"))
    building = temp_path(final)
    for leftover in building.parent.glob(f"{building.name}*"):
        leftover.unlink()  # one killed while building (its WAL and journal files too)
    con = connect(Home(home.root, f"sqlite:{building}", home.data_path, home.s3), read_only=False)
    try:
        ensure_tables(con)
    finally:
        con.close()
    os.replace(building, final)


def _partitioned_by_month(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether `articles` is partitioned by its publication month alone, as a new lake is."""
    meta = f"__ducklake_metadata_{ALIAS}"
    rows = con.execute(
        f"SELECT c.column_name, p.transform FROM {meta}.ducklake_partition_info i "
        f"JOIN {meta}.ducklake_table t ON t.table_id = i.table_id AND t.end_snapshot IS NULL "
        f"JOIN {meta}.ducklake_partition_column p USING (partition_id) "
        f"JOIN {meta}.ducklake_column c ON c.table_id = i.table_id "
        "AND c.column_id = p.column_id AND c.end_snapshot IS NULL "
        "WHERE t.table_name = 'articles' AND i.end_snapshot IS NULL"
    ).fetchall()
    return rows == [(MONTH_COLUMN, "identity")]


def ensure_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Create missing tables and add missing columns (one snapshot, only if anything changed)."""
    existing = _columns(con)
    statements: list[str] = []
    for table, schema in LAKE_SCHEMAS.items():
        if table not in existing:
            columns = ", ".join(f"{identifier(f.name)} {sql_type(f.type)}" for f in schema)
            statements.append(f"CREATE TABLE {table} ({columns})")
            if table == "articles":
                statements.append(f"ALTER TABLE articles SET PARTITIONED BY ({PARTITIONING})")
            continue
        for column in schema:
            if column.name not in existing[table]:
                statements.append(
                    f"ALTER TABLE {table} ADD COLUMN {identifier(column.name)} "
                    f"{sql_type(column.type)}"
                )
    if "articles" in existing and not _partitioned_by_month(con):
        # New files go in the month's folder; older ones stay as they are, still read and pruned.
        statements.append(f"ALTER TABLE articles SET PARTITIONED BY ({PARTITIONING})")
    statements += _view_statements(con)
    if "articles" not in existing:  # a new lake: its options are kept in the catalog
        # zstd at its fastest level: 17,140 articles (70 MB of text) inserted in 0.65 s against
        # 0.85 s at the default level (a micro-benchmark, medians of 3; snappy 0.50 s, but
        # about twice the size).
        statements[:0] = [
            f"CALL {ALIAS}.set_option('parquet_compression', 'zstd')",
            f"CALL {ALIAS}.set_option('parquet_compression_level', 1)",
        ]
    if statements:
        with transaction(con):
            for statement in statements:
                con.execute(statement)
            con.execute(
                f"CALL {ALIAS}.set_commit_message('wirehouse', 'schema: create or extend tables')"
            )
    return statements


def _view_statements(con: duckdb.DuckDBPyConnection) -> list[str]:
    """CREATE OR REPLACE for each view of LAKE_VIEWS that is missing or has other columns."""
    # DuckDB keeps a view's SQL re-rendered, so definitions are compared by their columns.
    rows = con.execute(
        "SELECT table_name, list(column_name ORDER BY column_index) FROM duckdb_columns() "
        "WHERE database_name = ? AND schema_name = 'main' GROUP BY ALL",
        [ALIAS],
    ).fetchall()
    present = {name: tuple(columns) for name, columns in rows}
    return [
        f"CREATE OR REPLACE VIEW {name} AS {view.sql.strip()}"
        for name, view in LAKE_VIEWS.items()
        if present.get(name) != view.columns
    ]


def _columns(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    rows = con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() "
        "WHERE database_name = ? AND schema_name = 'main'",
        [ALIAS],
    ).fetchall()
    out: dict[str, set[str]] = {}
    for table, column in rows:
        out.setdefault(table, set()).add(column)
    return out


_SQL_TYPES = {
    pa.string(): "VARCHAR",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.uint32(): "UINTEGER",
    pa.uint64(): "UBIGINT",
    pa.float64(): "DOUBLE",
    pa.binary(): "BLOB",
    pa.bool_(): "BOOLEAN",
    pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
    pa.list_(pa.string()): "VARCHAR[]",
    pa.list_(pa.int32()): "INTEGER[]",
}


def sql_type(arrow: pa.DataType) -> str:
    """The DuckDB type of an Arrow type used in the records' schemas."""
    return _SQL_TYPES[arrow]


def identifier(name: str) -> str:
    """A quoted SQL identifier (`offset` and friends are keywords)."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A SQL string literal (DDL and ATTACH take no bind parameters)."""
    return "'" + text.replace("'", "''") + "'"


def orphaned_data_files(con: duckdb.DuckDBPyConnection, delete: bool = False) -> list[str]:
    """Data files under the data path that no snapshot references (a killed writer's)."""
    rows = con.execute(
        f"CALL ducklake_delete_orphaned_files('{ALIAS}', cleanup_all => true, dry_run => ?)",
        [not delete],
    ).fetchall()
    return [str(row[0]) for row in rows]


def table_folder(con: duckdb.DuckDBPyConnection, home: Home, table: str) -> str:
    """Where DuckLake keeps a table's data files (a folder or an s3:// prefix, ending with a
    slash): files written there by others are the lake's own once registered."""
    rows = con.execute(
        f"SELECT s.path, s.path_is_relative, t.path, t.path_is_relative "
        f"FROM __ducklake_metadata_{ALIAS}.ducklake_table t "
        f"JOIN __ducklake_metadata_{ALIAS}.ducklake_schema s USING (schema_id) "
        "WHERE t.table_name = ? AND t.end_snapshot IS NULL AND s.end_snapshot IS NULL",
        [table],
    ).fetchall()
    schema_path, schema_relative, table_path, table_relative = rows[0]
    folder = (home.data_url + str(schema_path)) if schema_relative else str(schema_path)
    return (folder + str(table_path)) if table_relative else str(table_path)


def register_files(con: duckdb.DuckDBPyConnection, table: str, files: list[str]) -> int:
    """Data files written elsewhere, in the table's Hive-style partition folders, become part
    of the table in the open transaction (their footers are read for statistics, the rows are
    not rewritten). A file the table already holds is not registered again (DuckLake would count
    its rows twice: duckdb/ducklake #1293), so a retried commit registers each file once."""
    if not files:
        return 0
    held = {
        path
        for (path,) in con.execute(
            f"SELECT data_file FROM ducklake_list_files('{ALIAS}', ?)", [table]
        ).fetchall()
    }
    new = [f for f in files if f not in held]
    if new:
        con.execute(
            f"CALL ducklake_add_data_files('{ALIAS}', ?, ?, hive_partitioning => true)",
            [table, new],
        )
    return len(new)
