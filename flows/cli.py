"""The `wirehouse` command: ingest a night, query the warehouse, see recent runs."""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from rich.console import Console
from rich.markup import escape
from rich.status import Status
from rich.table import Table

from expectations.runner import import_gx
from flows.collector import imports_uncollected
from flows.output import FORMATS, print_rows
from flows.settings import DEFAULT_MAX_FAILURE_RATIO, NightSchedule, Settings, quiet_third_parties
from warehouse.home import NoWarehouse
from warehouse.outage import ServiceUnavailable, is_maybe_disk, transient

if TYPE_CHECKING:
    from flows.server import TemporaryServer

console = Console()
err = Console(stderr=True)

STATUS_SQL = (
    "SELECT r.run_id, coalesce(r.kind, 'nightly') AS kind, r.status, s.snapshot, r.started_at, "
    "round(epoch(r.finished_at) - epoch(r.started_at), 1) AS seconds, r.files_new, r.articles, "
    "r.duplicates, r.quarantined, r.failure_ratio FROM runs r LEFT JOIN ("
    "SELECT json_extract_string(commit_extra_info, '$.run_id') AS run_id, "
    "max(snapshot_id) AS snapshot FROM wh.snapshots() GROUP BY ALL) s USING (run_id) "
    "ORDER BY r.started_at DESC LIMIT ?"
)
FIRST_QUERY = (
    "SELECT published_month, count(*) AS articles, sum(word_count) AS words "
    "FROM articles GROUP BY ALL ORDER BY ALL"
)


class UserError(Exception):
    """Something the user can fix; shown as one line, exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `wirehouse` command."""
    args = _parser().parse_args(argv)
    quiet_third_parties()
    try:
        return int(args.command(args))
    except ServiceUnavailable as error:  # a service is down: try again once it is back
        err.print(f"[bold red]unavailable:[/] {escape(_one_line(str(error)))}", soft_wrap=True)
        return 1
    except (UserError, NoWarehouse) as error:
        # Escaped: a run id or path may hold `[` or a newline; unwrapped: one line at any width.
        err.print(f"[bold red]error:[/] {escape(_one_line(str(error)))}", soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except BrokenPipeError:
        # The reader stopped reading (`| head`): no traceback, nothing to flush at exit; exit 1
        # as rich does when its own output meets a closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _one_line(text: str) -> str:
    """The text with its control characters (a newline in a run id) written as escapes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def run() -> NoReturn:
    """The console script: `main`, then exit without tearing the interpreter down.

    With Prefect, Great Expectations and pandas loaded, Python's shutdown (freeing every module
    and object one by one) takes two seconds or more after the work is done. Threads are still
    waited for and exit handlers still run (Prefect stops its temporary server, logging
    flushes); only that teardown is skipped.
    """
    code = main()
    # What the interpreter does at exit, in its order: wait for threads and run their exit
    # hooks (Prefect drains its log and event queues there), then the exit handlers.
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def ingest(args: argparse.Namespace) -> int:
    """Run the nightly flow once and print its summary."""
    interactive = console.is_terminal and not args.verbose
    if interactive:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    settings = Settings.from_env(home=args.home, inbox=args.inbox)
    _require_window(args.since, args.until)
    _require_inbox(settings)
    _require_free(settings)
    from warehouse.lock import RunLocked

    server = _temporary_server()
    with imports_uncollected():
        from flows.cluster import ClusterRefused
        from flows.nightly import NightFailed, nightly_ingest

    status = console.status("starting Prefect…") if interactive else None
    handler = _StatusHandler(status) if status else None
    try:
        if status and handler:
            status.start()
            logging.getLogger("prefect").addHandler(handler)
        _import_gx_while_starting(server)
        with _reported(RunLocked, ClusterRefused, NightFailed, ServiceUnavailable):
            summary = nightly_ingest(
                inbox=str(settings.inbox),
                max_failure_ratio=args.max_failure_ratio,
                home=str(settings.home.root),
                backfill=args.backfill,
                since=args.since,
                until=args.until,
                dask_scheduler=args.dask_scheduler,
            )
    except RunLocked as error:
        raise UserError(str(error)) from None
    except (NightFailed, ClusterRefused, ServiceUnavailable) as error:
        _stop(status, handler)
        err.print(f"[bold red]night failed:[/] {escape(_one_line(str(error)))}", soft_wrap=True)
        return 1
    finally:
        _stop(status, handler)
    _print_summary(summary)
    return 0


def _require_inbox(settings: Settings) -> None:
    """A clear error when the inbox folder or bucket cannot be read."""
    from warehouse.inbox import inbox_problem

    problem = inbox_problem(settings.inbox, settings.home.s3)
    if problem is not None:
        raise UserError(
            f"{problem} (pass --inbox DIR or s3://bucket/prefix, or set WIREHOUSE_INBOX)"
        )


def _require_window(since: date | None, until: date | None) -> None:
    """A clear error for a date range that holds no day."""
    if since is not None and until is not None and since > until:
        raise UserError(f"--since {since} is after --until {until}")


def _require_free(settings: Settings) -> None:
    """A clear error, before any flow starts, when the home is no folder or another run holds it."""
    from warehouse.lock import lock_holder
    from warehouse.outage import catalog_down, disk_unavailable

    root = settings.home.root
    if root.exists() and not root.is_dir():
        raise UserError(f"the home {root} is a file, not a folder (pass --home DIR)")
    try:
        held = lock_holder(settings.home)
    except OSError as error:  # a read-only or full home: the lock file cannot be written
        if (unavailable := disk_unavailable(error, settings.home)) is None:
            raise
        raise UserError(str(unavailable)) from None
    except Exception as error:
        # A PostgreSQL catalog down (its advisory lock): the night waits for it, and says so
        # in one line if it does not come back.
        if not catalog_down(error):
            raise
        return
    if held is not None:
        raise UserError(held)


def _temporary_server() -> TemporaryServer | None:
    """Prefect's temporary server, starting, unless the environment names a Prefect API.

    The flow would start that server itself once Prefect is imported, then wait seconds for it
    with nothing to do. Started first, it boots while this process imports (`flows.server`).
    """
    if os.environ.get("PREFECT_API_URL"):
        return None
    from flows.server import TemporaryServer

    return TemporaryServer().start()


def _import_gx_while_starting(server: TemporaryServer | None) -> None:
    """Import Great Expectations (seconds of CPU) while the server starts, then use the server.

    With a server already running, the flow imports GX as a scheduled night does, in the
    background once discovery has found dumps to parse: imported here instead, before the flow,
    it held the GIL through the flow's start and discovery (1.8 s more wall at 20,000 dumps).
    """
    if server is None or not server.wanted():
        return
    with imports_uncollected():
        import_gx()
    _use_when_ready(server)


def _use_when_ready(server: TemporaryServer) -> None:
    """Point Prefect at the temporary server once it answers; a clear error if it never does."""
    from flows.server import ServerNotReady

    try:
        server.use_when_ready()
    except ServerNotReady as error:
        raise UserError(str(error)) from None


def backfill(args: argparse.Namespace) -> int:
    """Ingest an old archive folder (or its files of a date range) as a backfill run."""
    args.inbox = args.archive
    return ingest(args)


def serve(args: argparse.Namespace) -> int:
    """Serve the scheduled `nightly` deployment from this process until interrupted."""
    from deployments.serve import nightly_schedule, serve_nightly

    settings = Settings.from_env(
        home=args.home, inbox=args.inbox, dask_scheduler=args.dask_scheduler
    )
    _require_inbox(settings)
    schedule = NightSchedule.from_env(cron=args.cron, timezone=args.timezone)
    try:
        nightly_schedule(schedule)
    except ValueError as error:
        raise UserError(
            f"bad schedule {schedule.cron!r} in {schedule.timezone!r}: {error}"
        ) from None
    serve_nightly(settings, schedule)
    return 0


def sql(args: argparse.Namespace) -> int:
    """Run one read-only query on the warehouse (as it is, or as of a run) and print the result."""
    from contextlib import closing

    import duckdb

    from warehouse.catalog import catalog_errors, connect_as_of

    settings = Settings.from_env(home=args.home)
    _require_warehouse(settings)
    statements = _parse_sql(args.query)
    try:
        with catalog_errors(settings.home, "the query"):
            lake = connect_as_of(settings.home, args.as_of)
    except LookupError as error:
        raise UserError(str(error)) from None
    with closing(lake) as con:
        try:
            with catalog_errors(settings.home, "the query"):
                result = con.execute(statements)
                columns = [d[0] for d in result.description or []]
                rows = result.fetchall()
        except duckdb.Error as error:
            raise UserError(str(error).splitlines()[0]) from None
    print_rows(columns, rows, args.format, console=console)
    return 0


def search(args: argparse.Namespace) -> int:
    """Articles matching a query, best first; or, with --by, how many matched per period."""
    from contextlib import closing

    import duckdb

    from warehouse.catalog import catalog_errors, connect_as_of
    from warehouse.search import (
        ATTENTION_COLUMNS,
        FOUND_COLUMNS,
        Filters,
        IndexIncomplete,
        attention,
        find,
    )

    settings = Settings.from_env(home=args.home)
    _require_warehouse(settings)
    _require_window(args.since, args.until)
    filters = Filters(args.since, args.until, args.source, args.language)
    try:
        with catalog_errors(settings.home, "the search"):
            lake = connect_as_of(settings.home, args.as_of)
    except LookupError as error:
        raise UserError(str(error)) from None
    with closing(lake) as con:
        try:
            with catalog_errors(settings.home, "the search"):
                if args.by:
                    columns, rows = ATTENTION_COLUMNS, attention(con, args.query, args.by, filters)
                else:
                    columns, rows = FOUND_COLUMNS, find(con, args.query, args.limit, filters)
        except IndexIncomplete as error:
            raise UserError(str(error)) from None
        except duckdb.Error as error:
            raise UserError(str(error).splitlines()[0]) from None
    if args.chart and args.by:
        _print_chart(rows)
    else:
        print_rows(columns, rows, args.format, console=console)
    return 0


def _print_chart(rows: list[tuple[Any, ...]]) -> None:
    """Each period's share of matching articles as a bar."""
    widest = max((float(share) for *_, share in rows), default=0.0) or 1.0
    label = max((len(str(period)) for period, *_ in rows), default=6)
    for period, matching, total, share in rows:
        bar = "█" * round(40 * float(share) / widest)
        console.print(f"{period!s:<{label}} {bar:<40} {float(share):7.2%}  {matching:,}/{total:,}")


def reindex(args: argparse.Namespace) -> int:
    """Bring the search index to the articles (a lake made before it, or one `verify` faults)."""
    settings = Settings.from_env(home=args.home)
    _require_warehouse(settings)
    done = _operation(settings, "reindex_search")
    console.print(
        f"search index: {done['indexed']:,} articles indexed, "
        f"{done['removed']:,} that are gone removed"
    )
    return 0


def shell(args: argparse.Namespace) -> int:
    """Open the duckdb command-line tool on the warehouse, read-only, tables by bare names."""
    import shutil
    import subprocess
    import tempfile

    import duckdb

    from warehouse.catalog import (
        attach_statements,
        has_search_index,
        install_extensions,
        lake_connection,
        literal,
    )
    from warehouse.search import search_macro

    settings = Settings.from_env(home=args.home)
    _require_warehouse(settings)
    program = shutil.which("duckdb", path=os.path.dirname(sys.executable)) or shutil.which("duckdb")
    if program is None:
        raise UserError("the duckdb command-line tool is not installed (run `make venv`)")
    with duckdb.connect() as con:
        folder = install_extensions(con)
    with lake_connection(settings.home) as con:
        indexed = has_search_index(con)
    statements = [
        f"SET extension_directory = {literal(str(folder))}",
        *attach_statements(settings.home, read_only=True),
        *([search_macro()] if indexed else []),
    ]
    # Read-only against mistakes, not against a user set on writing: DuckDB 1.5 lets a session
    # ATTACH the catalog again READ_WRITE (even with enable_external_access off, the sqlite and
    # postgres extensions open their databases themselves), and allowed_directories cannot make
    # the data path readable but not writable. What stops a hostile analyst is below DuckDB: the
    # catalog's read-only role (docs/reader-role.sql), read-only object-store keys, or a catalog
    # file and data folder the analyst's OS account can only read.
    # Statements (an S3 secret among them) go in a private file, not on the command line.
    with tempfile.TemporaryDirectory(prefix="wirehouse-shell-") as folder_name:
        init = Path(folder_name) / "init.sql"
        init.write_text(";\n".join(statements) + ";\n")
        init.chmod(0o600)
        return subprocess.run([program, "-init", str(init), *args.duckdb_args]).returncode


def rollback(args: argparse.Namespace) -> int:
    """Roll a night back (and, with --cascade, the later nights that depend on it)."""
    from warehouse.maintenance import RollbackRefused

    settings = Settings.from_env(home=args.home)
    _require_warehouse(settings)
    _require_rollback(settings, args.run_id, args.cascade)
    _require_free(settings)
    _use_prefect()
    from flows.operations import rollback_night
    from warehouse.lock import RunLocked

    try:
        with _reported(RollbackRefused, RunLocked, ServiceUnavailable):
            done = rollback_night(args.run_id, cascade=args.cascade, home=str(settings.home.root))
    except (RollbackRefused, RunLocked) as error:
        raise UserError(str(error)) from None
    for night, removed in done["nights"].items():
        rows = ", ".join(f"{n:,} {table}" for table, n in removed.items() if n)
        # No counts: the commit went through but the catalog's answer was lost (a restart).
        said = rows or ("no rows" if removed else "rows not counted")
        console.print(f"rolled back [bold]{night}[/]: {said}")
    console.print("its files are read again by the next night")
    return 0


def _require_rollback(settings: Settings, run_id: str, cascade: bool) -> None:
    """The flow's own refusal (no such run, later nights depend on it), before the flow starts."""
    from warehouse.catalog import lake_connection
    from warehouse.maintenance import RollbackRefused, rollback_plan

    with lake_connection(settings.home) as con:
        try:
            rollback_plan(con, run_id, cascade)
        except RollbackRefused as error:
            raise UserError(str(error)) from None


def reprocess(args: argparse.Namespace) -> int:
    """Re-parse the archived raw bytes with the current parser; replace the nights' rows."""
    settings = Settings.from_env(home=args.home)
    _require_window(args.since, args.until)
    _require_warehouse(settings)
    if args.layout is not None:
        _require_layout(settings, args.layout)
    _require_free(settings)
    _use_prefect()
    with imports_uncollected():
        from flows.cluster import ClusterRefused
        from flows.reprocess import reprocess_archive
    from warehouse.lock import RunLocked

    try:
        with _reported(RunLocked, ClusterRefused, ServiceUnavailable):
            done = reprocess_archive(
                since=args.since,
                until=args.until,
                layout=args.layout,
                home=str(settings.home.root),
                dask_scheduler=args.dask_scheduler,
            )
    except RunLocked as error:
        raise UserError(str(error)) from None
    except ClusterRefused as error:
        err.print(f"[bold red]reprocess refused:[/] {escape(str(error))}", soft_wrap=True)
        return 1
    if not done["nights"]:
        console.print("no night matches: nothing was reprocessed")
        return 0
    table = Table("night", "articles", "duplicates", "quarantined", title=f"{done['run_id']}")
    for night, counts in done["nights"].items():
        table.add_row(night, *(f"{counts[k]:,}" for k in ("articles", "duplicates", "quarantined")))
    console.print(table)
    return 0


def _require_layout(settings: Settings, layout: str) -> None:
    """A clear error for a layout no article or quarantined dump of the warehouse has."""
    from warehouse.catalog import lake_connection

    with lake_connection(settings.home) as con:
        rows = con.execute(
            "SELECT DISTINCT layout FROM articles UNION SELECT DISTINCT layout FROM quarantine"
        ).fetchall()
    known = sorted(str(r[0]) for r in rows if r[0])
    if layout not in known:
        raise UserError(
            f"no dump of layout {layout!r} in this warehouse "
            f"(its layouts: {', '.join(known) or 'none'})"
        )


def migrate(args: argparse.Namespace) -> int:
    """Move a home of the Parquet layout before DuckLake into DuckLake (any writer does it too)."""
    settings = Settings.from_env(home=args.home)
    from warehouse.migrate import needs_migration

    if not needs_migration(settings.home):
        console.print(f"nothing to migrate in {escape(str(settings.home.root))}")
        return 0
    done = _operation(settings, "migrate_home")
    rows = ", ".join(f"{n:,} {table}" for table, n in done["after"].items())
    console.print(f"migrated: {rows}; the old files are in {done['backup']}")
    return 0


def compact(args: argparse.Namespace) -> int:
    """Merge small files, expire snapshots past the retention, delete unreferenced files."""
    settings = Settings.from_env(home=args.home)
    _require_warehouse(settings)
    done = _operation(settings, "compact_lake")
    console.print(
        f"data files {done['files_before']:,} -> {done['files_after']:,}; "
        f"{done['snapshots_expired']:,} snapshots expired (older than "
        f"{settings.snapshot_retention_days:g} days), {done['files_deleted']:,} files deleted"
    )
    return 0


def _operation(settings: Settings, name: str) -> dict[str, Any]:
    """Run the operation flow `name` of flows.operations on the home, the run lock checked
    first: its result. A run that took the lock since is the one-line message."""
    _require_free(settings)
    _use_prefect()
    import flows.operations
    from warehouse.lock import RunLocked

    try:
        with _reported(RunLocked, ServiceUnavailable):
            return dict(getattr(flows.operations, name)(home=str(settings.home.root)))
    except RunLocked as error:
        raise UserError(str(error)) from None


class _Untraced(logging.Filter):
    """Keeps Prefect's line about a run's exception but not its traceback, for these kinds and
    for a task's full or read-only disk (the flow's message names it)."""

    def __init__(self, kinds: tuple[type[BaseException], ...]) -> None:
        super().__init__()
        self.kinds = kinds

    def filter(self, record: logging.LogRecord) -> bool:
        """Drop the traceback of a record of these kinds, or of an outage or a disk's fault
        (retried, or told in one line at the end)."""
        error = record.exc_info[1] if record.exc_info else None
        outage = error is not None and (transient(error) or is_maybe_disk(error))
        if error is not None and (isinstance(error, self.kinds) or outage):
            record.exc_info = record.exc_text = None
        return True


@contextmanager
def _reported(*kinds: type[BaseException]) -> Iterator[None]:
    """A flow's failure of these kinds is the command's one-line message, with no traceback.

    The checks before the flow catch the user's mistakes; these are the ones that slip between
    (a run that took the lock since) or that only the flow finds (a bad scheduler address).
    """
    untraced = _Untraced(kinds)
    loggers = [logging.getLogger(name) for name in ("prefect.flow_runs", "prefect.task_runs")]
    for logger in loggers:
        logger.addFilter(untraced)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(untraced)


def _use_prefect() -> None:
    """Start Prefect's temporary server unless an API is configured, and wait for it."""
    server = _temporary_server()
    if server is not None and server.wanted():
        _use_when_ready(server)


def status(args: argparse.Namespace) -> int:
    """Show recent runs, their snapshots, their counts and the nights' anomalies."""
    from flows.oncall import night_anomalies
    from warehouse.catalog import catalog_errors, lake_connection

    settings = Settings.from_env(home=args.home)
    _require_warehouse(settings)
    with catalog_errors(settings.home, "the status"), lake_connection(settings.home) as con:
        result = con.execute(STATUS_SQL, [args.limit])
        columns = [d[0] for d in result.description or []]
        rows = result.fetchall()
        totals = con.execute(
            "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM duplicates), "
            "(SELECT count(*) FROM quarantine), (SELECT count(*) FROM files)"
        ).fetchall()[0]
    # The anomalies each night's health check found, as its report recorded them.
    found = night_anomalies(settings.home.reports, [str(row[0]) for row in rows])
    columns.append("anomalies")
    rows = [(*row, found.get(str(row[0]), "")) for row in rows]
    title = f"recent runs in {settings.home.root}"
    print_rows(columns, rows, args.format, title=title, console=console)
    if args.format == "table":
        console.print(
            f"warehouse: {totals[0]:,} articles, {totals[1]:,} duplicates, "
            f"{totals[2]:,} quarantined, {totals[3]:,} files"
        )
    return 0


def verify(args: argparse.Namespace) -> int:
    """Check the warehouse's invariants and print a report; exit 1 on any violation."""
    from warehouse.inbox import inbox_problem
    from warehouse.verify import verify as check

    settings = Settings.from_env(home=args.home, inbox=args.inbox)
    _require_warehouse(settings)
    if args.inbox is not None:
        _require_inbox(settings)  # the default inbox may be absent; one asked for must be there
    inbox = settings.inbox if inbox_problem(settings.inbox, settings.home.s3) is None else None
    found = check(settings.home, inbox=inbox, deep=args.deep)
    scope = "lake, views, archive" + (" (re-hashed)" if args.deep else "")
    scope += f", inbox {inbox}" if inbox else ""
    if not found:
        console.print(f"[green]ok[/]: every invariant holds ({scope})")
        return 0
    for violation in found:
        err.print(f"[bold red]{violation.check}[/]: {violation.count} broken: {violation.promise}")
        for row in violation.sample:
            err.print(f"    {escape(str(row))}")  # file names from the inbox
    return 1


def _parse_sql(query: str) -> str:
    """The query, if it is one statement that only reads; else the reason, as a UserError."""
    import duckdb

    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as error:
        raise UserError(str(error).splitlines()[0]) from None
    if len(statements) != 1:
        raise UserError("give exactly one SQL statement")
    kind = statements[0].type
    if kind not in {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}:
        raise UserError(f"only read-only queries (SELECT, EXPLAIN) are allowed, not {kind.name}")
    if kind == duckdb.StatementType.EXPLAIN:
        # EXPLAIN ANALYZE runs what it explains: a COPY ... TO would write a file.
        explained = _explained(query)
        if (
            not explained
            or duckdb.extract_statements(explained)[0].type != duckdb.StatementType.SELECT
        ):
            raise UserError("only a SELECT can be explained")
        query_checked = explained
    else:
        query_checked = query
    if (refused := _refused_function(query_checked)) is not None:
        raise UserError(refused)
    return query


# DuckLake's functions that only read. Its others change the lake or its files even on a
# read-only attachment: ducklake_cleanup_old_files deletes the files before the catalog refuses
# the change (tried, DuckLake 1.5.5), so `sql` refuses every DuckLake function but these.
_LAKE_READERS = frozenset(
    {
        "current_snapshot",
        "last_committed_snapshot",
        "list_files",
        "options",
        "scan",
        "settings",
        "snapshots",
        "table_changes",
        "table_deletions",
        "table_info",
        "table_insertions",
    }
)


# The catalog database's own functions (postgres_execute runs any SQL there; the others query
# or attach it around DuckLake): an analyst reads the lake's tables instead.
_CATALOG_ACCESS = ("postgres_", "sqlite_", "pg_clear_cache")


def _refused_function(select: str) -> str | None:
    """Why a SELECT is refused for a function it calls (one that changes the lake, `query`,
    which runs SQL given as text, or one that shows the S3 keys), or None when every function
    it calls only reads."""
    import json

    import duckdb

    from warehouse.catalog import ALIAS

    with duckdb.connect() as con:
        row = con.execute("SELECT json_serialize_sql(?)", [select]).fetchone()
    tree = json.loads(row[0]) if row else {"error": True}
    if tree.get("error"):
        return f"this query cannot be checked to be read-only: {tree.get('error_message', '')}"
    for name, place in _functions_called(tree):
        if name == "query":
            return "query() runs SQL given as text: give that SQL itself"
        if name.startswith(_CATALOG_ACCESS):
            return f"{name}() reaches the catalog's database itself: query the lake's tables"
        if name == "duckdb_secrets":
            return "duckdb_secrets() would show the object store's key id: it is not shown"
        lake_function = name.startswith("ducklake_") or ALIAS in place
        if lake_function and name.removeprefix("ducklake_") not in _LAKE_READERS:
            return f"{name}() changes the warehouse: only read-only queries are allowed"
    return None


def _functions_called(tree: object) -> Iterator[tuple[str, set[str]]]:
    """Each function a serialized statement calls: its name (lower case), and the catalog and
    schema it was named with."""
    if isinstance(tree, dict):
        if isinstance(tree.get("function_name"), str):
            place = {str(tree.get(key) or "").lower() for key in ("catalog", "schema")}
            yield tree["function_name"].lower(), place
        for value in tree.values():
            yield from _functions_called(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _functions_called(value)


def _explained(query: str) -> str:
    """The statement an EXPLAIN wraps: what follows its keywords and parenthesised options."""
    import re

    import duckdb

    depth = 0
    for start, _ in duckdb.tokenize(query):
        word = re.match(r"\w+|\S", query[start:])
        text = word.group().upper() if word else ""
        if text == "(":
            depth += 1
        elif text == ")":
            depth -= 1
        elif depth == 0 and text not in {"EXPLAIN", "ANALYZE", "ANALYSE"}:
            return query[start:]
    return ""


def _require_warehouse(settings: Settings) -> None:
    from warehouse.catalog import exists
    from warehouse.migrate import needs_migration

    if needs_migration(settings.home):
        raise UserError(
            f"{settings.home.root} holds a warehouse of the layout before DuckLake: run "
            "`wirehouse migrate` (or the next night) to move it into DuckLake first"
        )
    if not exists(settings.home):
        raise UserError(
            f"no warehouse at {settings.home.catalog_shown}: run `wirehouse ingest` first "
            "(or set WIREHOUSE_HOME / WIREHOUSE_CATALOG)"
        )


def _print_summary(summary: dict[str, Any]) -> None:
    counts = summary["counts"]
    table = Table(title=f"run {summary['run_id']}: {summary['status']}", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("files new", f"{counts['files']:,}")
    table.add_row("already recorded (skipped)", f"{counts['already_recorded']:,}")
    table.add_row("[green]articles loaded", f"{counts['articles']:,}")
    if counts.get("undated"):
        table.add_row("  of them undated (no time on the page)", f"{counts['undated']:,}")
    for kind, n in counts["duplicates_by_kind"].items():
        table.add_row(f"duplicates: {kind}", f"{n:,}")
    for reason, n in counts["quarantined_by_reason"].items():
        table.add_row(f"[yellow]quarantined: {reason}", f"{n:,}")
    if counts.get("unsettled"):
        table.add_row("still being written (next night)", f"{counts['unsettled']:,}")
    table.add_row("failure ratio", f"{summary['failure_ratio']:.1%}")
    table.add_row("time", f"{summary['seconds']:.1f} s")
    console.print(table)
    for anomaly in (summary.get("health") or {}).get("anomalies", []):
        console.print(f"[red]abnormal night: {anomaly['kind']}[/]: {anomaly['detail']}")
    if summary.get("data_docs"):
        console.print(f"Data Docs: {summary['data_docs']}")


class _StatusHandler(logging.Handler):
    """Shows the latest flow or task log line in the terminal's status spinner."""

    def __init__(self, status: Status) -> None:
        super().__init__(logging.INFO)
        self.status = status

    def emit(self, record: logging.LogRecord) -> None:
        task = getattr(record, "task_run_name", None) or getattr(record, "flow_run_name", "")
        self.status.update(f"[bold]{task}[/] {record.getMessage()[:100]}")


def _stop(status: Status | None, handler: logging.Handler | None) -> None:
    if handler is not None:
        logging.getLogger("prefect").removeHandler(handler)
    if status is not None:
        status.stop()


def _cluster_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--dask-scheduler",
        metavar="ADDRESS",
        help="parse on this Dask cluster, e.g. tcp://host:8786 "
        "(default $WIREHOUSE_DASK_SCHEDULER; none: this machine)",
    )


def _format_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="a table for people (the default), or csv or json for programs",
    )


def _count(text: str) -> int:
    """A command-line count: a whole number, 0 or more."""
    if not text.isdecimal():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 0 or more")
    return int(text)


def _ratio(text: str) -> float:
    """A command-line share: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number from 0 to 1")
    return value


_INBOX_HELP = "the inbox: a folder or s3://bucket/prefix (default $WIREHOUSE_HOME/inbox)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wirehouse", description=__doc__)
    parser.add_argument("--home", help="the warehouse home (default $WIREHOUSE_HOME or ./data)")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    run = commands.add_parser("ingest", help="ingest what arrived in the inbox (one nightly run)")
    run.add_argument("--inbox", help=_INBOX_HELP)
    run.add_argument(
        "--max-failure-ratio",
        type=_ratio,
        help="refuse the night above this share of failing dumps "
        f"(default {DEFAULT_MAX_FAILURE_RATIO})",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="show Prefect's log lines")
    _cluster_option(run)
    run.set_defaults(command=ingest, backfill=False, since=None, until=None)
    back = commands.add_parser(
        "backfill", help="ingest an old archive folder, or its files of a date range"
    )
    back.add_argument(
        "archive", help="the folder or s3://bucket/prefix of old dumps (read, never modified)"
    )
    back.add_argument("--since", type=date.fromisoformat, help="first day (UTC) of files to take")
    back.add_argument("--until", type=date.fromisoformat, help="last day (UTC) of files to take")
    back.add_argument("--max-failure-ratio", type=_ratio, help="as for ingest")
    back.add_argument("-v", "--verbose", action="store_true", help="show Prefect's log lines")
    _cluster_option(back)
    back.set_defaults(command=backfill, backfill=True)
    served = commands.add_parser(
        "serve", help="serve the scheduled nightly deployment from this process"
    )
    served.add_argument("--inbox", help=_INBOX_HELP)
    served.add_argument("--cron", help="schedule (default $WIREHOUSE_SCHEDULE or 0 2 * * *)")
    served.add_argument("--timezone", help="IANA zone of the schedule (default UTC)")
    _cluster_option(served)
    served.set_defaults(command=serve)
    query = commands.add_parser("sql", help="run a read-only SQL query on the warehouse")
    query.add_argument("query")
    query.add_argument("--as-of", metavar="RUN_ID", help="the warehouse right after that run")
    _format_option(query)
    query.set_defaults(command=sql)
    found = commands.add_parser(
        "search",
        help="find articles by words and phrases, ranked; or count them over time (--by)",
        description='Words must all match; "a phrase" in quotes; a OR b; -word excludes. '
        "Case and accents are ignored; words are stemmed by each article's language.",
    )
    found.add_argument("query")
    found.add_argument("--limit", type=_count, default=20, help="articles shown (default 20)")
    found.add_argument("--since", type=date.fromisoformat, help="published on or after this day")
    found.add_argument("--until", type=date.fromisoformat, help="published on or before this day")
    found.add_argument("--source", help="only articles of this source")
    found.add_argument("--language", help="only articles of this language (ISO 639-1 code)")
    found.add_argument("--as-of", metavar="RUN_ID", help="the warehouse right after that run")
    found.add_argument(
        "--by",
        choices=["day", "week", "month", "source"],
        help="count matching articles against all, per period or source",
    )
    found.add_argument("--chart", action="store_true", help="with --by: draw the shares")
    _format_option(found)
    found.set_defaults(command=search)
    opened = commands.add_parser(
        "shell", help="open the duckdb command-line tool on the warehouse (read-only)"
    )
    opened.add_argument("duckdb_args", nargs="*", help="passed on to duckdb (after --)")
    opened.set_defaults(command=shell)
    undo = commands.add_parser("rollback", help="roll a night back; its files are read again")
    undo.add_argument("run_id")
    undo.add_argument(
        "--cascade", action="store_true", help="also roll back later nights that depend on it"
    )
    undo.set_defaults(command=rollback)
    redo = commands.add_parser(
        "reprocess", help="re-parse archived dumps with the current parser, in one snapshot"
    )
    redo.add_argument(
        "--since", type=date.fromisoformat, help="first night (UTC day) that may start the replay"
    )
    redo.add_argument(
        "--until", type=date.fromisoformat, help="last night (UTC day) that may start the replay"
    )
    redo.add_argument("--layout", help="start at the first night holding a dump of this layout")
    _cluster_option(redo)
    redo.set_defaults(command=reprocess)
    move = commands.add_parser("migrate", help="move a home of the layout before DuckLake into it")
    move.set_defaults(command=migrate)
    tidy = commands.add_parser(
        "compact", help="merge small files, expire old snapshots, delete unreferenced files"
    )
    tidy.set_defaults(command=compact)
    again = commands.add_parser(
        "reindex", help="index the articles the search index misses (a lake made before it)"
    )
    again.set_defaults(command=reindex)
    recent = commands.add_parser("status", help="show recent runs and their counts")
    recent.add_argument("--limit", type=_count, default=10)
    _format_option(recent)
    recent.set_defaults(command=status)
    check = commands.add_parser("verify", help="check the warehouse's invariants")
    check.add_argument("--inbox", help="also check every inbox file (or object) was recorded")
    check.add_argument("--deep", action="store_true", help="re-read and re-hash the archive")
    check.set_defaults(command=verify)
    return parser


if __name__ == "__main__":
    run()
