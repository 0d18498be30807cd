"""Operations on the warehouse as Prefect flows, so that they show in the UI like the nights."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from contextlib import closing
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, TypeVar

import duckdb
from prefect import flow, get_run_logger

from flows.settings import Settings
from transforms.records import PARSER_VERSION, RUNS_SCHEMA
from warehouse.catalog import transaction
from warehouse.loader import insert_rows, label
from warehouse.lock import run_lock
from warehouse.maintenance import Compacted, RolledBack, compact, rollback
from warehouse.migrate import migrate
from warehouse.outage import transient, unavailable
from warehouse.recovery import open_recovered
from warehouse.search import reindex

T = TypeVar("T")


def new_run_id(started: datetime) -> str:
    """A run's id: when it started (UTC, sortable) and a random suffix."""
    return f"{started:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def flow_run_id() -> str | None:
    """The Prefect flow run this code runs in, if any."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    run = context.flow_run if context else None
    return str(run.id) if run is not None else None


def operation_row(kind: str, message: str) -> dict[str, Any]:
    """The `runs` row an operation that changes rows records about itself."""
    started = datetime.now(UTC)
    row: dict[str, Any] = {name: None for name in RUNS_SCHEMA.names}
    row.update(
        run_id=f"{kind}-{new_run_id(started)}",
        kind=kind,
        started_at=started,
        finished_at=started,
        status="succeeded",
        message=message,
        parser_version=PARSER_VERSION,
        flow_run_id=flow_run_id(),
    )
    return row


def patiently(settings: Settings, doing: str, attempt: Callable[[bool], T]) -> T:
    """`attempt(retried)`, tried again after the settings' delays while a service has passing
    trouble (the catalog restarting, object storage slowing down); each try takes the lock and
    opens the lake afresh, `retried` telling it an earlier try failed. Trouble that outlasts the
    delays, or a full disk, ends as one sentence naming the service and what to do
    (`ServiceUnavailable`); any other error is raised as it is."""
    for tries, delay in enumerate([*settings.retry_delays, None]):
        try:
            return attempt(tries > 0)
        except Exception as error:
            if delay is not None and transient(error):
                get_run_logger().warning(
                    "%s met a service's passing trouble (%s): trying again in %g s",
                    doing,
                    type(error).__name__,
                    delay,
                )
                time.sleep(delay)
                continue
            if (outage := unavailable(error, settings.home, doing=doing)) is not None:
                raise outage from None
            raise
    raise AssertionError("unreachable: the last try returns or raises")


def committed(lake: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    """Whether the operation's `runs` row is in: a try whose commit went through although
    its answer was lost (the catalog restarting then) needs no second one."""
    found = lake.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).fetchone()
    return found is not None and found[0] > 0


@flow(name="rollback", log_prints=False)
def rollback_night(run_id: str, cascade: bool = False, home: str | None = None) -> dict[str, Any]:
    """Undo a night: its rows leave every table in a compensating snapshot (newest first)."""
    settings = Settings.from_env(home=home)
    op = operation_row("rollback", f"rollback of {run_id}")

    def attempt(retried: bool) -> RolledBack:
        with run_lock(settings.home), closing(open_recovered(settings.home)) as lake:
            if retried and committed(lake, op["run_id"]):
                get_run_logger().info("the rollback was committed by the try that failed")
                return RolledBack(op["run_id"], {run_id: {}})
            return rollback(lake, run_id, op, cascade=cascade)

    done = patiently(settings, "the rollback", attempt)
    for night, removed in done.nights.items():
        get_run_logger().info("rolled back %s: %s", night, removed)
    return {"run_id": done.run_id, "nights": done.nights}


@flow(name="migrate", log_prints=False)
def migrate_home(home: str | None = None) -> dict[str, Any]:
    """Move a home of the Parquet layout into DuckLake: same ids and counts, one snapshot."""
    settings = Settings.from_env(home=home)
    done = migrate(settings.home)
    get_run_logger().info("migrated: %s", done)
    return {
        "run_id": done.run_id,
        "before": done.before,
        "after": done.after,
        "backup": str(done.backup),
    }


@flow(name="compact", log_prints=False)
def compact_lake(home: str | None = None) -> dict[str, Any]:
    """Merge small files, expire snapshots past the retention, delete unreferenced files."""
    settings = Settings.from_env(home=home)

    def attempt(_retried: bool) -> Compacted:
        with run_lock(settings.home), closing(open_recovered(settings.home)) as lake:
            return compact(lake, settings.snapshot_retention_days)

    done = patiently(settings, "the compaction", attempt)
    get_run_logger().info("compacted: %s", done)
    return asdict(done)


@flow(name="reindex", log_prints=False)
def reindex_search(home: str | None = None) -> dict[str, Any]:
    """Bring the search index to the articles: index those it misses (a lake made before it),
    drop what it holds of articles that are gone. One snapshot; nothing to do, none."""
    settings = Settings.from_env(home=home)
    op = operation_row("reindex", "search index brought to the articles")

    def attempt(_retried: bool) -> dict[str, int]:
        # A second try after a lost commit finds nothing left to do: no second snapshot.
        with run_lock(settings.home), closing(open_recovered(settings.home)) as lake:
            with transaction(lake):
                done = reindex(lake)
                if any(done.values()):
                    insert_rows(lake, "runs", [{**op, "finished_at": datetime.now(UTC)}])
                    label(lake, op, f"reindex: {done['indexed']:,} articles indexed")
            return done

    done = patiently(settings, "the reindex", attempt)
    get_run_logger().info("reindexed: %s", done)
    return {"run_id": op["run_id"] if any(done.values()) else None, **done}
