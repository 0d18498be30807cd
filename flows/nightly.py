"""The `nightly-ingest` Prefect flow: discover, parse, validate, dedupe, load, report."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from prefect import Task, flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.context import TaskRunContext
from prefect.futures import PrefectFuture
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from expectations.runner import StoredResult, build_docs, import_gx_in_background
from flows.artifacts import lake_figures, publish_artifacts
from flows.backfill import Window, flow_run_name, run_kind, within_window
from flows.cluster import MOST_IN_FLIGHT, Engine, connected, hash_on_cluster, night_engine
from flows.collector import night_collection, settle
from flows.oncall import announce_night, check_health
from flows.operations import flow_run_id, new_run_id, patiently
from flows.settings import NIGHT_TIMEOUT_SECONDS, Settings, quiet_third_parties
from flows.stages import (
    Deduped,
    Plan,
    account,
    dedupe_against_history,
    discover_plan,
    kept_by_batch,
    night_rows,
    plan_files,
    summary_counts,
)
from flows.worker import WRITTEN_TABLES, Batch, ToRead
from transforms.night import Ledger, Lineage
from transforms.records import PARSER_VERSION
from warehouse.archive import ArchiveEntry, remove_unindexed
from warehouse.catalog import CommitUncertain, cursor, orphaned_data_files, table_folder
from warehouse.home import errors_masked
from warehouse.inbox import find_arrivals, inbox_problem
from warehouse.loader import NightRows, commit_night
from warehouse.lock import run_lock
from warehouse.maintenance import compact, needs_compaction
from warehouse.outage import (
    ServiceUnavailable,
    catalog_down,
    catalog_unavailable,
    unavailable,
    verdict,
)
from warehouse.recovery import failing_cleanly_on_disk_faults, open_recovered
from warehouse.storage import join, remove_tree
from warehouse.verify import verify_night

if TYPE_CHECKING:
    from distributed import Client

quiet_third_parties()

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")
# Disk hiccups and the like: worth a retry on the I/O tasks; bad input never raises.
_TRANSIENT = (OSError, TimeoutError)
# What a night whose commit met a lasting outage of the catalog left: the commit may have gone
# through just before it (its answer lost), and only the catalog can tell.
_NOTHING_CHANGED = "nothing was changed"
_COMMIT_UNKNOWN = (
    "its commit may or may not have gone through (`wirehouse status` shows it once the catalog "
    "answers; the next run completes the night either way)"
)
# Tries of a task failing with one of those (outages of the catalog get the settings' retries).
_IO_TRIES = 3
# Big task arguments are wrapped in prefect's `quote`: otherwise Prefect visits every element
# of every argument (twice) to track dependencies, which cost more than parsing itself.


class NightFailed(RuntimeError):
    """The night was refused as a whole: nothing was loaded; the message says what to do."""

    def __init__(self, message: str, summary: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.summary = summary  # the refused night's summary, when it got that far


def _retry_transient(_task: Any, run: Any, state: Any) -> bool:
    """Retry only failures that a second try can fix (a service's passing trouble, an I/O
    hiccup), never logic errors, nor a full or read-only disk; bad input never raises."""
    try:
        state.result()
    except Exception as error:
        found = verdict(error)  # a service's passing trouble, its lasting fault, or neither
        if found:
            get_run_logger().warning("%s: trying again", _outage_line(error))
            return True
        return found is None and isinstance(error, _TRANSIENT) and run.run_count < _IO_TRIES
    return False


def _retried() -> bool:
    """Whether the running task is a retry of a try that failed."""
    context = TaskRunContext.get()
    return context is not None and context.task_run.run_count > 1


def _outage_line(error: BaseException) -> str:
    """What broke, in a line fit for the log (the catalog's driver quotes its connection
    string, password and all: only the kind of error is told)."""
    what = "the catalog did not answer" if catalog_down(error) else "a transient failure"
    return f"{what} ({type(error).__name__})"


def _patient(a_task: Task[P, R], settings: Settings) -> Task[P, R]:
    """The task, its transient failures tried again after the settings' delays."""
    return a_task.with_options(
        retries=settings.retries,
        retry_delay_seconds=settings.retry_delays,
        retry_condition_fn=_retry_transient,
    )


def retried_task(name: str, run_name: str) -> Callable[[Callable[P, R]], Task[P, R]]:
    """A task that touches storage (the inbox, the lake, the workers): a transient failure is
    tried again, twice; its errors never show a password."""

    def decorate(fn: Callable[P, R]) -> Task[P, R]:
        return task(
            name=name,
            task_run_name=run_name,
            cache_policy=NONE,
            retries=2,
            retry_delay_seconds=2,
            retry_condition_fn=_retry_transient,
        )(errors_masked(fn))

    return decorate


@dataclass(slots=True)
class Timings:
    """Wall time per stage, in seconds."""

    seconds: dict[str, float] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)  # the stages that finished without an error

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time one stage."""
        start = time.perf_counter()
        try:
            yield
            self.done.add(name)
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - start, 4)


@retried_task("discover", "discover")
def discover(
    settings: Settings,
    window: Window,
    lineage: Lineage,
    lake: duckdb.DuckDBPyConnection,
    client: Client | None = None,
) -> Plan:
    """Walk the inbox, hash what settled, open bundles, and match it against the ledger.

    On a cluster the inbox's files (folder or S3) are hashed by the workers."""
    s3 = settings.home.s3
    hasher = hash_on_cluster(client, s3) if client is not None else None
    found = find_arrivals(settings.inbox, settings.settle_seconds, s3, hasher)
    arrivals, outside = within_window(found, window)
    if outside:
        get_run_logger().info("%d files modified outside %s left out", outside, window)
    with cursor(lake) as con:
        plan = discover_plan(arrivals, con, settings.home, lineage, settings.bundle_limits)
    get_run_logger().info(
        "discovered %d files: %d new, %d same bytes as earlier files, %d already recorded, "
        "%d symlinks, %d bundles opened, %d refused unread, %d still being written",
        len(arrivals.files) + len(arrivals.symlinks),
        len(plan.to_read),
        len(plan.known_copies) + sum(map(len, plan.night_copies.values())),
        plan.already_recorded,
        len(plan.symlinks),
        len(plan.unpacked),
        len(plan.refused),
        len(plan.unsettled),
    )
    return plan


@retried_task("batch", "batch-{index}")
def work(
    index: int,
    batch: list[ToRead],
    settings: Settings,
    lineage: Lineage,
    engine: Engine,
) -> Batch:
    """Read, archive, decode, parse, sign and validate one batch of dumps on a worker."""
    worked = engine.work(index, batch, settings.home, settings.max_dump_bytes, lineage)
    get_run_logger().info(
        "worked %d dumps (%s ...) on %s: %d valid articles, %d quarantined",
        len(batch),
        batch[0].dump.dump_file,
        worked.worker,
        worked.keys.num_rows,
        worked.dumps.num_rows - worked.keys.num_rows,
    )
    return worked


@task(name="dedupe", task_run_name="dedupe", cache_policy=NONE)
@errors_masked
def dedupe(valid: list[Batch], settings: Settings, lake: duckdb.DuckDBPyConnection) -> Deduped:
    """Match the valid articles against the warehouse's history and each other."""
    if not any(batch.keys.num_rows for batch in valid):
        return Deduped.nothing()
    with cursor(lake) as con:
        deduped = dedupe_against_history(valid, con, settings.near_threshold)
    kinds = pc.value_counts(deduped.links["kind"]).to_pylist()
    get_run_logger().info(
        "deduplicated: %d kept, %d copies %s",
        int(deduped.kept.sum()),
        deduped.links.num_rows,
        {k["values"]: k["counts"] for k in kinds},
    )
    return deduped


@retried_task("load", "load")
def load(
    ledger: Ledger,
    bundles: list[ArchiveEntry],
    files: dict[str, list[str]],
    run_row: dict[str, Any],
    settings: Settings,
    lake: duckdb.DuckDBPyConnection,
    uncertain: threading.Event,
) -> int:
    """Commit the night in one DuckLake transaction (all or nothing visible); its snapshot id.

    `uncertain` is set when a try's COMMIT was broken off (it may have gone through)."""
    home, run_id = settings.home, run_row["run_id"]
    night = NightRows(run_row)
    if run_row["status"] == "succeeded":
        night = night_rows(run_row, bundles, ledger, files)
    with cursor(lake) as con:
        try:
            snapshot = commit_night(con, night)
        except CommitUncertain:
            uncertain.set()
            raise
        if run_row["status"] != "succeeded":
            remove_unindexed(home, con)  # its dumps are read again by the next night
        if _retried():
            # A try that failed may have written data files of its own (rows DuckLake wrote
            # itself) before its transaction was lost; now that the night's files are all
            # referenced, whatever no snapshot references is that.
            orphaned_data_files(con, delete=True)
    remove_tree(join(home.staging, run_id), home.s3)
    get_run_logger().info(
        "committed run %s (%s) as snapshot %d", run_id, run_row["status"], snapshot
    )
    return snapshot


@retried_task("write", "write")
def write(
    batches: list[Batch],
    deduped: Deduped,
    settings: Settings,
    lineage: Lineage,
    engine: Engine,
    lake: duckdb.DuckDBPyConnection,
) -> dict[str, list[str]]:
    """The workers write the night's rows of the lake as its data files: each batch stages its
    kept articles, their MinHash index and where its raw bytes are in pieces by table and
    partition, then each table partition's pieces are gathered into files (a month of articles
    in one, or a few on a large night). The commit registers them; the files of each table."""
    home = settings.home
    with cursor(lake) as con:
        folders = {table: table_folder(con, home, table) for table in WRITTEN_TABLES}
    jobs = [
        (batch, kept)
        for batch, kept in zip(batches, kept_by_batch(batches, deduped), strict=True)
        if len(kept) or batch.archived is not None
    ]
    split = engine.each(lambda job: engine.split(job[0], job[1], home, lineage), jobs)
    planned = plan_files([piece for pieces in split for piece in pieces], folders, lineage.run_id)
    engine.each(lambda f: engine.write_file(f.table, f.pieces, f.location, home), planned)
    files: dict[str, list[str]] = {}
    for planned_file in planned:
        files.setdefault(planned_file.table, []).append(planned_file.location)
    get_run_logger().info(
        "%d batches wrote data files: %s",
        len(jobs),
        ", ".join(f"{len(paths)} of {table}" for table, paths in files.items()) or "none",
    )
    return files


@task(name="compact", task_run_name="compact", cache_policy=NONE)
@errors_masked
def maintain(settings: Settings, lake: duckdb.DuckDBPyConnection) -> dict[str, int] | None:
    """Compact the lake when small files have piled up (most nights: nothing to do)."""
    with cursor(lake) as con:
        if not needs_compaction(con):
            return None
        done = asdict(compact(con, settings.snapshot_retention_days))
    get_run_logger().info("small files piled up, compacted: %s", done)
    return done


@task(name="report", task_run_name="report", cache_policy=NONE)
@errors_masked
def report(
    summary: dict[str, Any],
    settings: Settings,
    validations: list[StoredResult],
    quarantine: pa.Table,
    lake: duckdb.DuckDBPyConnection,
) -> dict[str, Any]:
    """Store the workers' validation results and build their Data Docs, read the committed
    night back, write the summary, publish UI artifacts."""
    started = datetime.fromisoformat(summary["started_at"])
    summary["seconds"] = round((datetime.now(UTC) - started).total_seconds(), 3)
    if settings.build_docs and validations:
        docs = build_docs(settings.home.gx, validations)
        summary["data_docs"] = str(docs) if docs else None
    with cursor(lake) as con:
        per_day, summary["warehouse"] = lake_figures(con, summary["run_id"])
        # `wirehouse verify` over what the night changed: its files read, its rows keep the
        # tables' invariants, its raw bytes are archived. A night that recorded no file
        # changed nothing but its runs row.
        checked = []
        if summary["counts"]["files"]:
            checked = verify_night(con, summary["run_id"], summary["snapshot"])
    summary["violations"] = [f"{v.check}: {v.count} broken ({v.promise})" for v in checked]
    path = settings.home.reports / f"{summary['run_id']}.json"
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    publish_artifacts(summary, quarantine, per_day)
    get_run_logger().info("night summary: %s", json.dumps(summary["counts"], default=str))
    return summary


# A thread waits for each batch in flight (one per worker, and one more), on a cluster as in the
# local pool.
TASK_RUNNER: ThreadPoolTaskRunner[Any] = ThreadPoolTaskRunner(max_workers=MOST_IN_FLIGHT + 1)


@flow(
    name="nightly-ingest",
    log_prints=False,
    task_runner=TASK_RUNNER,  # type: ignore[arg-type]
    timeout_seconds=NIGHT_TIMEOUT_SECONDS,
    flow_run_name=flow_run_name,
)
def nightly_ingest(
    inbox: str | None = None,
    max_failure_ratio: float | None = None,
    home: str | None = None,
    backfill: bool = False,
    since: date | None = None,
    until: date | None = None,
    dask_scheduler: str | None = None,
) -> dict[str, Any]:
    """Ingest the dumps that arrived in the inbox since the last run; returns the summary.

    `dask_scheduler` (or WIREHOUSE_DASK_SCHEDULER): parse on that Dask cluster's workers.
    """
    settings = Settings.from_env(
        home=home, inbox=inbox, max_failure_ratio=max_failure_ratio, dask_scheduler=dask_scheduler
    )
    where = settings.home
    timings = Timings()
    try:
        if (problem := inbox_problem(settings.inbox, settings.home.s3)) is not None:
            raise NightFailed(problem)
        where.ensure()
        # The cluster is checked first: one that is unreachable fails the night before any work.
        with connected(settings) as client, ExitStack() as held:
            lake = _opened(held, settings)
            held.enter_context(
                failing_cleanly_on_disk_faults(where, lake, lambda: "load" in timings.done)
            )
            with night_collection():
                window = Window(since, until)
                summary = _run_night(settings, window, run_kind(backfill), lake, client, timings)
    except BaseException as error:  # every night ends in an event, a refused one with its counts
        # Still down after every retry, a full disk: one sentence naming the service and what
        # to do, not the library's traceback (which may quote a connection string).
        outage = unavailable(error, where, [str(settings.inbox)])
        announce_night(getattr(error, "summary", None), outage or error)
        if outage is not None and outage is not error:
            raise outage from None
        raise
    announce_night(summary)
    return summary


@contextmanager
def _outage_told(settings: Settings, outcome: Callable[[], str]) -> Iterator[None]:
    """Within the block, an outage of the catalog that outlasted the retries is told with what
    the night had done by then (`outcome()`)."""
    try:
        yield
    except Exception as error:
        if not catalog_down(error) or isinstance(error, ServiceUnavailable):
            raise
        raise catalog_unavailable(settings.home, "the night", outcome()) from None


def _opened(held: ExitStack, settings: Settings) -> duckdb.DuckDBPyConnection:
    """The run lock taken, then the lake opened and recovered, both held by `held`: tried again
    from the start (`patiently`) while a service has passing trouble, what a failed try took
    let go first."""

    def attempt(_retried: bool) -> duckdb.DuckDBPyConnection:
        with ExitStack() as taken:
            taken.enter_context(run_lock(settings.home))
            lake = taken.enter_context(closing(open_recovered(settings.home)))
            held.enter_context(taken.pop_all())
            return lake

    return patiently(settings, "the night", attempt)


def _run_night(
    settings: Settings,
    window: Window,
    kind: str,
    lake: duckdb.DuckDBPyConnection,
    client: Client | None,
    timings: Timings,
) -> dict[str, Any]:
    started = datetime.now(UTC)
    lineage = Lineage(new_run_id(started), started)
    with timings.stage("discover"):
        plan = _patient(discover, settings)(
            settings, window, lineage, _quoted(lake), _quoted(client)
        )
    settle()
    if plan.to_read and settings.build_docs:
        # Great Expectations takes seconds to import: the Data Docs need it once the batches
        # are worked, so it loads while they are (a `wirehouse ingest` that started its own
        # Prefect server imported it meanwhile).
        import_gx_in_background()
    with night_engine(settings, client, plan.to_read) as (engine, batches):
        with timings.stage("parse and validate"):

            def work_next(i: int) -> PrefectFuture[Batch]:
                return _patient(work, settings).submit(
                    i, _quoted(batches[i]), settings, lineage, _quoted(engine)
                )

            # As many batches in flight as there are workers, and one more: tasks submitted
            # all at once would each hold a thread and a worker's queue for the whole night.
            working = [work_next(i) for i in range(min(engine.ahead, len(batches)))]
            worked = []
            for i in range(len(batches)):
                worked.append(working[i].result())
                settle()
                if len(working) < len(batches):
                    working.append(work_next(len(working)))
        with timings.stage("dedupe"):
            deduped = _patient(dedupe, settings)(_quoted(worked), settings, _quoted(lake))
        ledger = account(plan, worked, deduped, lineage)
        counts = summary_counts(plan, ledger)
        ratio, gate_message = _failure_gate(plan, ledger, settings)
        files: dict[str, list[str]] = {}
        if gate_message is None:
            with timings.stage("write"):
                files = _patient(write, settings)(
                    _quoted(worked),
                    _quoted(deduped),
                    settings,
                    lineage,
                    _quoted(engine),
                    _quoted(lake),
                )
    run_row = _run_row(settings, lineage, kind, counts, ratio, gate_message)
    uncertain = threading.Event()

    def told() -> str:
        """What a lasting outage during the load left of the night."""
        return _COMMIT_UNKNOWN if uncertain.is_set() else _NOTHING_CHANGED

    with timings.stage("load"), _outage_told(settings, told):
        snapshot = _patient(load, settings)(
            _quoted(ledger),
            _quoted(plan.archived),
            _quoted(files),
            run_row,
            settings,
            _quoted(lake),
            _quoted(uncertain),
        )
    summary: dict[str, Any] = {
        "run_id": lineage.run_id,
        "snapshot": snapshot,
        "kind": kind,
        "status": run_row["status"],
        "message": run_row["message"],
        "inbox": str(settings.inbox),
        "home": str(settings.home.root),
        "started_at": started.isoformat(),
        "counts": counts,
        "failure_ratio": ratio,
        "failing_expectations": _failing_expectations(worked),
        "data_docs": None,
        "stage_seconds": timings.seconds,
    }
    committed = f"run {lineage.run_id} was committed (snapshot {snapshot}), its report was not made"
    with _outage_told(settings, lambda: committed):
        if run_row["status"] == "succeeded" and counts["files"]:  # nothing added: nothing to merge
            with timings.stage("compact"):
                summary["compacted"] = _patient(maintain, settings)(settings, _quoted(lake))
        if kind == "nightly":  # a backfill is no night: nothing to compare it with
            with timings.stage("health"):
                summary["health"] = _patient(check_health, settings)(
                    summary, settings, _quoted(lake)
                )
        with timings.stage("report"):
            validations = [b.validation for b in worked if b.validation is not None]
            summary = _patient(report, settings)(
                summary, settings, _quoted(validations), _quoted(ledger.quarantine), _quoted(lake)
            )
    if gate_message is not None:
        raise NightFailed(gate_message, summary)
    if summary["violations"]:
        raise NightFailed(
            "the warehouse breaks its invariants after this run: "
            + "; ".join(summary["violations"])
            + ". This is a bug or a damaged disk, not bad input: run `wirehouse verify --deep` "
            "and keep the home as it is for whoever looks into it.",
            summary,
        )
    return summary


def _failing_expectations(valid: list[Batch]) -> dict[str, int]:
    """Rows failing each expectation over the night; expectations nobody failed left out."""
    totals: Counter[str] = Counter()
    for batch in valid:
        totals.update({k: v for k, v in batch.statistics.items() if v})
    return dict(sorted(totals.items()))


def _failure_gate(plan: Plan, ledger: Ledger, settings: Settings) -> tuple[float, str | None]:
    """The night's failure ratio, and the refusal message when it passes the threshold."""
    copies = {"same_bytes_as_quarantined"}
    dumps = plan.new_dumps
    reasons = ledger.quarantine["reason"]
    failed = int(pc.sum(pc.invert(pc.is_in(reasons, value_set=pa.array(copies)))).as_py() or 0)
    ratio = round(failed / dumps, 4) if dumps else 0.0
    if dumps < settings.min_dumps_for_ratio or ratio <= settings.max_failure_ratio:
        return ratio, None
    return ratio, (
        f"{failed} of {dumps} new dumps ({ratio:.0%}) failed, above the "
        f"{settings.max_failure_ratio:.0%} limit: nothing was loaded. The parser has probably "
        "met a new page layout: look at the reasons in this run's report, fix the parser, and "
        "run again (the files stay in the inbox); or, if the night is really that bad, rerun "
        "with a higher --max-failure-ratio."
    )


def _run_row(
    settings: Settings,
    lineage: Lineage,
    kind: str,
    counts: dict[str, Any],
    ratio: float,
    message: str | None,
) -> dict[str, Any]:
    loaded = message is None
    return {
        "run_id": lineage.run_id,
        "flow_run_id": flow_run_id(),
        "kind": kind,
        "started_at": lineage.at,
        "finished_at": datetime.now(UTC),
        "status": "succeeded" if loaded else "failed",
        "message": message,
        "inbox": str(settings.inbox),
        "files_seen": counts["files"] + counts["already_recorded"],
        "files_new": counts["files"] if loaded else 0,
        "articles": counts["articles"] if loaded else 0,
        "duplicates": counts["duplicates"] if loaded else 0,
        "quarantined": counts["quarantined"] if loaded else 0,
        "failure_ratio": ratio,
        "max_failure_ratio": settings.max_failure_ratio,
        "parser_version": PARSER_VERSION,
    }


def _quoted(value: T) -> T:
    """`value` wrapped so Prefect does not walk it; typed as itself, which the task receives."""
    return cast(T, quote(value))
