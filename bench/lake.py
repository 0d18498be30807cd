"""Storage benchmark: a year of nights in a fresh DuckLake home, then what a one-day query reads.

Builds `--nights` nights (default 365) of `--per-night` synthetic articles each (default 2,740:
about a million in all) into a fresh home, each night committed as one transaction by
`warehouse.loader.commit_night`, as `wirehouse ingest` does: the night's articles written as the
lake's data files as the workers write them (staged by month, gathered into a file per month),
one `files` row per dump, its `runs` row; a night's time is its files written and its commit.
An article's `published_at` falls on the night's date or, for a share of them, up to three days
before (late articles), so a day's rows land in up to four nights' files. Bodies are a few
hundred bytes of random words.

Then it prints, before and after `warehouse.maintenance.compact(con, retention_days=0)`: the data
files of `articles`, the files a one-day query on `articles` reads (DuckDB's "Total Files Read"
in `EXPLAIN ANALYZE`, summed over the plan's scans) and the query's time (median of 5); then
compact's own time, and the time of `warehouse.maintenance.rollback` of the last night.
Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from flows.stages import plan_files
from flows.worker import stage_articles, write_file
from transforms.records import ARTICLES_SCHEMA, RUNS_SCHEMA, SCHEMAS, table_of
from warehouse.catalog import open_lake, table_folder
from warehouse.home import Home
from warehouse.loader import NightRows, commit_night
from warehouse.maintenance import compact, data_files, rollback
from warehouse.storage import join, remove_tree

FIRST_NIGHT = date(2025, 1, 1)
# How late an article arrives: days before the night's date, and the share of each.
LATE_DAYS = (0, 1, 2, 3)
LATE_SHARE = (0.7, 0.15, 0.1, 0.05)
QUERY_REPEAT = 5
_WORDS = 2_000  # vocabulary of the synthetic bodies
_FILES_READ = re.compile(r"Total Files Read:\s*(\d+)")


@dataclass(slots=True)
class DayQuery:
    """A one-day query on `articles`: the files it read and its time."""

    day: str
    rows: int
    files_read: int
    seconds_median: float
    seconds_all: list[float] = field(default_factory=list)


@dataclass(slots=True)
class LakeFigures:
    """Everything the benchmark measures (times in seconds)."""

    nights: int
    per_night: int
    articles: int
    build_seconds: float
    commit_seconds_median: float
    commit_seconds_last: float
    lake_megabytes: float
    articles_files_before: int
    query_before: DayQuery
    compact_seconds: float
    compacted: dict[str, int]
    articles_files_after: int
    articles_months: int
    query_after: DayQuery
    rollback_seconds: float
    rolled_back: dict[str, int]
    articles_files_after_rollback: int
    query_after_rollback: DayQuery


def night_rows(
    night: int, per_night: int, rng: np.random.Generator, vocabulary: list[str]
) -> tuple[NightRows, pa.Table]:
    """One night's synthetic articles, and its `files` rows and `runs` row."""
    day = FIRST_NIGHT + timedelta(days=night)
    run_id = f"bench-{day.isoformat()}"
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    ingested = midnight + timedelta(days=1, hours=2)
    late = rng.choice(LATE_DAYS, size=per_night, p=LATE_SHARE)
    seconds = rng.integers(0, 86_400, size=per_night)
    published = [
        midnight - timedelta(days=int(d)) + timedelta(seconds=int(s))
        for d, s in zip(late, seconds, strict=True)
    ]
    lengths = rng.integers(40, 90, size=per_night)  # words: 300-600 bytes
    picks = rng.integers(0, len(vocabulary), size=int(lengths.sum()))
    bodies, at = [], 0
    for n in lengths.tolist():
        bodies.append(" ".join(vocabulary[w] for w in picks[at : at + n].tolist()))
        at += n
    digests = [
        hashlib.sha256(f"{night}:{i}:{body}".encode()).hexdigest() for i, body in enumerate(bodies)
    ]
    dumps = [f"{day:%Y/%m/%d}/{i:05d}_{d[:16]}.txt" for i, d in enumerate(digests)]
    table = pa.table(
        {
            "article_id": [d[:24] for d in digests],
            "source": ["Xinhua"] * per_night,
            "title": [" ".join(b.split()[:8]).capitalize() for b in bodies],
            "published_at": published,
            "published_at_source": ["page"] * per_night,
            "editor": ["huaxia"] * per_night,
            "author": [None] * per_night,
            "dateline": ["BEIJING"] * per_night,
            "body": bodies,
            "captions": [[] for _ in range(per_night)],
            "word_count": lengths.astype(np.int32),
            "language": ["en"] * per_night,
            "page_code": [f"01002007075000000000000001110000{i:010d}" for i in range(per_night)],
            "body_fingerprint": [d[24:56] for d in digests],
            "dump_file": dumps,
            "dump_sha256": digests,
            "encoding": ["utf-8"] * per_night,
            "layout": ["xinhua-2019"] * per_night,
            "parser_version": ["bench"] * per_night,
            "run_id": [run_id] * per_night,
            "ingested_at": [ingested] * per_night,
        },
        schema=ARTICLES_SCHEMA,
    )
    files = [
        {
            "dump_file": dump,
            "dump_sha256": digest,
            "bytes": len(body) + 200,
            "status": "loaded",
            "article_id": digest[:24],
            "run_id": run_id,
            "first_seen_at": ingested,
            "captured_at": ingested,
        }
        for dump, digest, body in zip(dumps, digests, bodies, strict=True)
    ]
    run_row = run_row_for(run_id, ingested, per_night)
    return NightRows(run_row, tables={"files": table_of(files, SCHEMAS["files"])}), table


def write_articles(articles: pa.Table, home: Home, folder: str, run_id: str) -> list[str]:
    """A night's articles written as the lake's data files in the articles table's `folder`, as
    the workers write a night's: staged by month, gathered into files."""
    pieces = stage_articles(articles, 0, home, run_id)
    planned = plan_files(pieces, {"articles": folder}, run_id)
    written = [write_file(f.table, f.pieces, f.location, home) for f in planned]
    remove_tree(join(home.staging, run_id), None)
    return written


def run_row_for(run_id: str, started: datetime, articles: int) -> dict[str, Any]:
    """A succeeded nightly `runs` row over RUNS_SCHEMA's columns."""
    row: dict[str, Any] = dict.fromkeys(RUNS_SCHEMA.names)
    row.update(
        run_id=run_id,
        kind="nightly",
        started_at=started,
        finished_at=started + timedelta(minutes=1),
        status="succeeded",
        inbox="bench",
        files_seen=articles,
        files_new=articles,
        articles=articles,
        duplicates=0,
        quarantined=0,
        failure_ratio=0.0,
        max_failure_ratio=0.5,
        parser_version="bench",
    )
    return row


def files_read(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    """Data files the query's scans read, from DuckDB's `EXPLAIN ANALYZE` ("Total Files Read",
    which a multi-file scan reports after pruning its file list: DuckLake drops the files whose
    partition or column min/max cannot match the filter before any is opened)."""
    plan = "\n".join(str(row[-1]) for row in con.execute(f"EXPLAIN ANALYZE {sql}").fetchall())
    found = _FILES_READ.findall(plan)
    if not found:
        raise ValueError(f"no 'Total Files Read' in the plan of {sql!r}:\n{plan}")
    return sum(int(n) for n in found)


def day_query(con: duckdb.DuckDBPyConnection, day: date, repeat: int = QUERY_REPEAT) -> DayQuery:
    """A one-day count on `articles`: files read, rows, median time of `repeat` runs."""
    start = f"TIMESTAMPTZ '{day.isoformat()} 00:00:00+00'"
    sql = (
        f"SELECT count(*) FROM articles WHERE published_at >= {start} "
        f"AND published_at < {start} + INTERVAL 1 DAY"
    )
    files = files_read(con, sql)
    times, rows = [], 0
    for _ in range(repeat):
        begin = time.perf_counter()
        rows = int(con.execute(sql).fetchall()[0][0])
        times.append(time.perf_counter() - begin)
    return DayQuery(
        day.isoformat(),
        rows,
        files,
        round(statistics.median(times), 4),
        [round(t, 4) for t in times],
    )


def build(root: Path, nights: int, per_night: int, seed: int = 0) -> tuple[float, list[float]]:
    """Commit `nights` nights into a fresh home at root: wall seconds and each night's write and
    commit."""
    rng = np.random.default_rng(seed)
    vocabulary = [
        "".join(chr(97 + c) for c in rng.integers(0, 26, size=int(n)))
        for n in rng.integers(2, 11, size=_WORDS)
    ]
    commits: list[float] = []
    begin = time.perf_counter()
    home = Home.at(root)
    con = open_lake(home)
    try:
        folder = table_folder(con, home, "articles")
        for night in range(nights):
            rows, articles = night_rows(night, per_night, rng, vocabulary)
            start = time.perf_counter()
            rows.files = {
                "articles": write_articles(articles, home, folder, rows.run_row["run_id"])
            }
            commit_night(con, rows)
            commits.append(time.perf_counter() - start)
    finally:
        con.close()
    return time.perf_counter() - begin, commits


def measure(
    root: Path, nights: int, per_night: int, seed: int = 0, say: Any = print
) -> LakeFigures:
    """Build the home at root, then measure queries, compaction and rollback."""
    built, commits = build(root, nights, per_night, seed)
    say(
        f"built {nights} nights x {per_night:,} articles in {built:.1f} s "
        f"(commit median {statistics.median(commits):.3f} s, last {commits[-1]:.3f} s)"
    )
    day = FIRST_NIGHT + timedelta(days=nights // 2)
    con = open_lake(Home.at(root))
    try:
        articles = int(con.execute("SELECT count(*) FROM articles").fetchall()[0][0])
        files_before = data_files(con, "articles")
        before = day_query(con, day)
        say(f"before compact: {files_before} files; {_said(before)}")
        begin = time.perf_counter()
        compacted = compact(con, retention_days=0)
        compact_seconds = time.perf_counter() - begin
        files_after = data_files(con, "articles")
        months = int(
            con.execute("SELECT count(DISTINCT published_month) FROM articles").fetchall()[0][0]
        )
        after = day_query(con, day)
        say(
            f"compact: {compact_seconds:.2f} s ({asdict(compacted)}); after: {files_after} "
            f"files for {months} months; {_said(after)}"
        )
        last = f"bench-{FIRST_NIGHT + timedelta(days=nights - 1)}"
        now = datetime.now(UTC)
        op_row: dict[str, Any] = dict.fromkeys(RUNS_SCHEMA.names)
        op_row.update(
            run_id="rollback-bench",
            kind="rollback",
            status="succeeded",
            started_at=now,
            finished_at=now,
        )
        begin = time.perf_counter()
        done = rollback(con, last, op_row)
        rollback_seconds = time.perf_counter() - begin
        removed = done.nights[last]
        files_rolled = data_files(con, "articles")
        after_rollback = day_query(con, day)
        say(
            f"rollback of {last}: {rollback_seconds:.2f} s, removed {removed}; "
            f"{files_rolled} files; {_said(after_rollback)}"
        )
    finally:
        con.close()
    return LakeFigures(
        nights=nights,
        per_night=per_night,
        articles=articles,
        build_seconds=round(built, 2),
        commit_seconds_median=round(statistics.median(commits), 4),
        commit_seconds_last=round(commits[-1], 4),
        lake_megabytes=round(_megabytes(root / "lake"), 1),
        articles_files_before=files_before,
        query_before=before,
        compact_seconds=round(compact_seconds, 2),
        compacted=asdict(compacted),
        articles_files_after=files_after,
        articles_months=months,
        query_after=after,
        rollback_seconds=round(rollback_seconds, 3),
        rolled_back=removed,
        articles_files_after_rollback=files_rolled,
        query_after_rollback=after_rollback,
    )


def _said(query: DayQuery) -> str:
    return (
        f"one-day query ({query.day}, {query.rows:,} rows) read {query.files_read} files in "
        f"{query.seconds_median * 1000:.1f} ms (median of {len(query.seconds_all)})"
    )


def _megabytes(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: build, measure, print (and optionally write JSON)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.lake",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--nights", type=int, default=365)
    parser.add_argument("--per-night", type=int, default=2_740)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--home", type=Path, help="build here (must not exist; kept)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.nights < 1 or args.per_night < 1:
        parser.error("--nights and --per-night must be at least 1")
    if args.home is not None and args.home.exists():
        parser.error(f"--home {args.home} exists: give a new folder")
    root = args.home or Path(tempfile.mkdtemp(prefix="wirehouse-lake-bench-"))
    started = datetime.now(UTC)
    print(f"{started:%Y-%m-%d %H:%M} UTC: {args.nights} nights x {args.per_night:,} articles")
    try:
        figures = measure(root, args.nights, args.per_night, args.seed)
    finally:
        if args.home is None:
            shutil.rmtree(root, ignore_errors=True)
    document = asdict(figures)
    print(json.dumps(document, indent=2))
    if args.json:
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
