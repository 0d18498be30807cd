"""`reprocess`: the nights replayed from the archive with the current parser, in one snapshot.

The result is what the current parser would have built from the same files arriving in the
same nights. A night's dedupe depends on every night before it, so the replay runs from the
first selected night through the newest, in the order the nights ran, each against the history
as replayed so far: all inside one DuckLake transaction, which first deletes the rows of the
nights it replays and ends with one commit. The replayed rows keep their night's run id and
times, so an unchanged parser changes no row, and rollback and time travel still see nights.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import closing
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
from prefect import flow, get_run_logger

from flows.cluster import connected, night_engine
from flows.operations import committed, operation_row, patiently
from flows.settings import Settings
from flows.stages import Deduped, Plan, account, dedupe_against_history
from flows.worker import Batch, ToRead
from transforms.night import Dump, Ledger, Lineage
from transforms.records import PARSER_VERSION, Rejection
from warehouse.archive import read_many_archived
from warehouse.catalog import transaction
from warehouse.ledger import match_ledger
from warehouse.loader import insert_arrow, insert_articles, insert_rows, label
from warehouse.lock import run_lock
from warehouse.maintenance import NIGHT_TABLES
from warehouse.nearindex import index_rows
from warehouse.recovery import open_recovered
from warehouse.search import insert_index
from warehouse.storage import is_remote, join, remove_tree, write_bytes

if TYPE_CHECKING:
    from distributed import Client

# Quarantined without being read, or not by the parser: a replay keeps these rows as they are.
KEPT_AS_IS = {
    "symlink",
    "too_large",
    "bundle_refused",
    "corrupt_archive",
    "unsafe_member",
    "compression_bomb",
    "unreadable_member",
}
REPLAYED_KINDS = ("nightly", "backfill")


@dataclass(frozen=True, slots=True)
class Night:
    """A night to replay: its run id and when it started (its rows' lineage)."""

    run_id: str
    started_at: datetime


def nights_to_replay(
    con: duckdb.DuckDBPyConnection,
    since: date | None = None,
    until: date | None = None,
    layout: str | None = None,
) -> list[Night]:
    """The first selected night and every later one, oldest first.

    Selected: a succeeded night started on `since`..`until` (UTC days, both included) holding a
    row of `layout` in `articles` or `quarantine` when a layout is given.
    """
    nights = [
        Night(str(run_id), started)
        for run_id, started in con.execute(
            "SELECT run_id, started_at FROM runs WHERE status = 'succeeded' "
            "AND coalesce(kind, 'nightly') IN (SELECT unnest($kinds)) ORDER BY started_at, run_id",
            {"kinds": list(REPLAYED_KINDS)},
        ).fetchall()
    ]
    with_layout = None
    if layout is not None:
        with_layout = {
            str(r[0])
            for r in con.execute(
                "SELECT run_id FROM articles WHERE layout = $l UNION "
                "SELECT run_id FROM quarantine WHERE layout = $l",
                {"l": layout},
            ).fetchall()
        }
    for position, night in enumerate(nights):
        day = night.started_at.date()
        if (since is not None and day < since) or (until is not None and day > until):
            continue
        if with_layout is None or night.run_id in with_layout:
            return nights[position:]
    return []


def replay_plan(
    con: duckdb.DuckDBPyConnection, settings: Settings, night: Night, recorded: list[Any]
) -> Plan:
    """The night as discovery would have planned it against the history replayed so far.

    `recorded` are the night's ledger rows with their quarantine reason and detail, as the
    night recorded them. Bytes to parse again are read from the archive into the staging folder.
    """
    plan = Plan()
    readable = []
    for dump_file, sha, size, status, captured, reason, detail in recorded:
        dump = Dump(dump_file, sha, size, captured.timestamp() if captured else None)
        if status == "unpacked":
            plan.unpacked.append(dump)
        elif reason == "symlink":
            plan.symlinks.append(dump)
        elif reason in KEPT_AS_IS:
            plan.refused.append((dump, Rejection(reason, detail)))
        else:
            readable.append(dump)
    match = match_ledger(con, [d.sha256 for d in readable])
    first: dict[str, Dump] = {}
    copies: defaultdict[str, list[Dump]] = defaultdict(list)
    for dump in readable:  # path order: the first path of some bytes is the one read
        if dump.sha256 in match.by_sha:
            plan.known_copies.append((dump, match.by_sha[dump.sha256]))
        elif dump.sha256 in first:
            copies[dump.sha256].append(dump)
        else:
            first[dump.sha256] = dump
    plan.to_read = _staged_from_archive(con, settings, night, list(first.values()))
    plan.night_copies = dict(copies)
    return plan


def _staged_from_archive(
    con: duckdb.DuckDBPyConnection, settings: Settings, night: Night, dumps: list[Dump]
) -> list[ToRead]:
    """The dumps' archived bytes written to the night's staging folder, to be read from there
    (by the workers of a cluster too)."""
    home = settings.home
    found = read_many_archived(settings.home, con, [d.sha256 for d in dumps])
    missing = [d.dump_file for d in dumps if d.sha256 not in found]
    if missing:
        raise LookupError(f"the archive holds no bytes for {len(missing)} dumps: {missing[:3]}")
    out = []
    for dump in dumps:
        location = join(home.staging, night.run_id, "replay", dump.sha256)
        write_bytes(location, home.s3, found[dump.sha256])
        out.append(ToRead(dump, location if is_remote(location) else Path(location)))
    return out


def replay_night(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    night: Night,
    recorded: list[Any],
    client: Client | None = None,
) -> dict[str, int]:
    """Parse, validate, dedupe and insert one night again, inside the open transaction."""
    lineage = Lineage(night.run_id, night.started_at)
    plan = replay_plan(con, settings, night, recorded)
    with night_engine(settings, client, plan.to_read) as (engine, batches):
        home, limit = settings.home, settings.max_dump_bytes
        valid = engine.work_all(batches, home, limit, lineage, keep_raw=False)
    deduped = (
        dedupe_against_history(valid, con, settings.near_threshold)
        if any(batch.keys.num_rows for batch in valid)
        else Deduped.nothing()
    )
    ledger = account(plan, valid, deduped, lineage)
    _insert_night(con, night, valid, deduped, ledger)
    remove_tree(join(settings.home.staging, night.run_id), settings.home.s3)
    return ledger.counts()


def _insert_night(
    con: duckdb.DuckDBPyConnection,
    night: Night,
    valid: list[Batch],
    deduped: Deduped,
    ledger: Ledger,
) -> None:
    """The replayed night's rows (its counts go on its `runs` row with the others')."""
    insert_articles(con, [b.passed for b in valid if b.passed is not None], deduped.kept_files)
    insert_index(con, "run_id = $run", {"run": night.run_id})
    for table, rows in (
        ("duplicates", ledger.duplicates),
        ("quarantine", ledger.quarantine),
        ("files", ledger.files),
    ):
        insert_arrow(con, table, rows)
    for table, rows in index_rows(deduped.kept_ids, deduped.kept_signatures, night.run_id).items():
        insert_arrow(con, table, rows)


def _record_counts(con: duckdb.DuckDBPyConnection, done: dict[str, dict[str, int]]) -> None:
    """The replayed nights' counts on their `runs` rows, in one statement: a DuckLake
    transaction that changes rows of one data file in two statements leaves the file's earlier
    delete file behind, neither referenced nor scheduled for deletion (`docs/decisions.md`)."""
    counts = pa.table(
        {
            "run_id": list(done),
            **{
                name: pa.array([night[name] for night in done.values()], pa.int64())
                for name in ("articles", "duplicates", "quarantined")
            },
        }
    )
    con.register("replayed", counts)
    try:
        con.execute(
            "UPDATE runs SET articles = r.articles, duplicates = r.duplicates, "
            "quarantined = r.quarantined, parser_version = $parser "
            "FROM replayed r WHERE runs.run_id = r.run_id",
            {"parser": PARSER_VERSION},
        )
    finally:
        con.unregister("replayed")


_RECORDED_SQL = (
    "SELECT f.dump_file, f.dump_sha256, f.bytes, f.status, f.captured_at, q.reason, q.detail "
    "FROM files f LEFT JOIN quarantine q ON q.dump_file = f.dump_file AND q.run_id = f.run_id "
    "WHERE f.run_id = ? ORDER BY f.dump_file"
)


def reprocess(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    nights: list[Night],
    op: dict[str, Any],
    client: Client | None = None,
) -> dict[str, dict[str, int]]:
    """Replay the nights in one transaction; per night, its counts after the replay."""
    recorded = {n.run_id: con.execute(_RECORDED_SQL, [n.run_id]).fetchall() for n in nights}
    done: dict[str, dict[str, int]] = {}
    with transaction(con):
        ids = [n.run_id for n in nights]
        for table in NIGHT_TABLES:
            con.execute(f"DELETE FROM {table} WHERE run_id IN (SELECT unnest($ids))", {"ids": ids})
        for night in nights:
            done[night.run_id] = replay_night(con, settings, night, recorded[night.run_id], client)
        _record_counts(con, done)
        insert_rows(con, "runs", [op])
        label(con, op, f"reprocess of {len(nights)} nights from {ids[0]}" if ids else None)
    return done


def replayed_counts(
    con: duckdb.DuckDBPyConnection, nights: list[Night]
) -> dict[str, dict[str, int]]:
    """Per night, the counts its replay wrote on its `runs` row."""
    rows = con.execute(
        "SELECT run_id, articles, duplicates, quarantined FROM runs "
        "WHERE run_id IN (SELECT unnest($ids))",
        {"ids": [n.run_id for n in nights]},
    ).fetchall()
    found = {
        str(r[0]): dict(zip(("articles", "duplicates", "quarantined"), r[1:], strict=True))
        for r in rows
    }
    return {n.run_id: found[n.run_id] for n in nights}


@flow(name="reprocess", log_prints=False)
def reprocess_archive(
    since: date | None = None,
    until: date | None = None,
    layout: str | None = None,
    home: str | None = None,
    dask_scheduler: str | None = None,
) -> dict[str, Any]:
    """Re-parse the archived raw bytes with the current parser; replace the nights' rows.

    `dask_scheduler` (or WIREHOUSE_DASK_SCHEDULER): parse on that Dask cluster's workers.
    """
    settings = Settings.from_env(home=home, dask_scheduler=dask_scheduler)
    op = operation_row("reprocess", f"parser {PARSER_VERSION}")

    def attempt(retried: bool) -> dict[str, dict[str, int]] | None:
        with (
            connected(settings) as client,
            run_lock(settings.home),
            closing(open_recovered(settings.home)) as lake,
        ):
            if retried and committed(lake, op["run_id"]):
                get_run_logger().info("the reprocess was committed by the try that failed")
                return replayed_counts(lake, nights_to_replay(lake, since, until, layout))
            nights = nights_to_replay(lake, since, until, layout)
            if not nights:
                return None
            return reprocess(lake, settings, nights, op, client)

    done = patiently(settings, "the reprocess", attempt)
    if done is None:
        get_run_logger().info("no night matches: nothing to reprocess")
        return {"run_id": None, "nights": {}}
    for run_id, counts in done.items():
        get_run_logger().info("replayed %s: %s", run_id, counts)
    return {"run_id": op["run_id"], "nights": done}
