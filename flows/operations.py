"""Operations on the warehouse as Prefect flows, so that they show in the UI like the nights."""

from __future__ import annotations

import uuid
from contextlib import closing
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger

from flows.settings import Settings
from transforms.records import PARSER_VERSION, RUNS_SCHEMA
from warehouse.catalog import transaction
from warehouse.loader import insert_rows, label
from warehouse.lock import run_lock
from warehouse.maintenance import compact, rollback
from warehouse.migrate import migrate
from warehouse.recovery import open_recovered
from warehouse.search import reindex


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


@flow(name="rollback", log_prints=False)
def rollback_night(run_id: str, cascade: bool = False, home: str | None = None) -> dict[str, Any]:
    """Undo a night: its rows leave every table in a compensating snapshot (newest first)."""
    settings = Settings.from_env(home=home)
    with run_lock(settings.home), closing(open_recovered(settings.home)) as lake:
        op = operation_row("rollback", f"rollback of {run_id}")
        done = rollback(lake, run_id, op, cascade=cascade)
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
    with run_lock(settings.home), closing(open_recovered(settings.home)) as lake:
        done = compact(lake, settings.snapshot_retention_days)
    get_run_logger().info("compacted: %s", done)
    return asdict(done)


@flow(name="reindex", log_prints=False)
def reindex_search(home: str | None = None) -> dict[str, Any]:
    """Bring the search index to the articles: index those it misses (a lake made before it),
    drop what it holds of articles that are gone. One snapshot; nothing to do, none."""
    settings = Settings.from_env(home=home)
    with run_lock(settings.home), closing(open_recovered(settings.home)) as lake:
        op = operation_row("reindex", "search index brought to the articles")
        with transaction(lake):
            done = reindex(lake)
            if any(done.values()):
                insert_rows(lake, "runs", [{**op, "finished_at": datetime.now(UTC)}])
                label(lake, op, f"reindex: {done['indexed']:,} articles indexed")
    get_run_logger().info("reindexed: %s", done)
    return {"run_id": op["run_id"] if any(done.values()) else None, **done}
