"""A night under analysts' load: `python -m bench.load --dumps 60000 --rounds 2`.

One inbox of `--dumps` rendered dumps (bench/render.py) is ingested by the real `wirehouse
ingest` command (sent to a Prefect server the bench keeps running, as a scheduled night's is)
into a copy of a base warehouse (one earlier night of `--base` dumps, built once): once quiet,
once with `--readers` reader processes querying the warehouse in a loop from before the night
starts until it ends. Rounds alternate which comes first (a shared machine is noisy); the
medians are printed.

Each reader holds a connection as a notebook does (`warehouse.connect`, opened again every
`_RECONNECT` queries and after an error) and cycles through analysts' queries from the README:
a scan by month, a word in the bodies, the top `stories`, articles joined with `stories`, a
`search(...)` joined with articles, time travel `AT (VERSION => n)` to the base night, the last
`runs`, and a check that the answer came from whole nights: in one query (one snapshot), the
rows of articles, duplicates, quarantine and files equal the sums of the succeeded nights'
`runs` counts (articles, duplicates, quarantined, files_new), now and at the base's snapshot.

It prints both nights' seconds (whole command and the flow's own), the ratio, queries run per
reader, errors (every one, with its message) and answers not from whole nights. Nothing here
asserts on time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.render import REPO, render_inbox
from bench.run import IngestFailed, Places, _prefect_env, ingest, running_server
from flows.settings import quiet_third_parties

_RECONNECT = 25  # queries on one connection before a reader opens another
_READY_SECONDS = 300

# Rows of the tables and the sums of the succeeded nights' counts, in one snapshot; `{at}` is
# empty (now) or `AT (VERSION => n)`.
WHOLE = """
SELECT (SELECT count(*) FROM articles {at}), (SELECT count(*) FROM duplicates {at}),
       (SELECT count(*) FROM quarantine {at}), (SELECT count(*) FROM files {at}),
       r.a, r.d, r.q, r.f
FROM (SELECT coalesce(sum(articles), 0) AS a, coalesce(sum(duplicates), 0) AS d,
             coalesce(sum(quarantined), 0) AS q, coalesce(sum(files_new), 0) AS f
      FROM runs {at} WHERE status = 'succeeded' AND kind IN ('nightly', 'backfill')) r
"""

# The analysts' queries a reader cycles through (README's examples and their like).
QUERIES: dict[str, str] = {
    "scan by month": "SELECT published_month, count(*) FROM articles GROUP BY ALL ORDER BY ALL",
    "scan of bodies": "SELECT count(*) FROM articles WHERE body ILIKE '%minister%'",
    "stories": (
        "SELECT title, copies, near_copies, sources, last_seen_at FROM stories "
        "ORDER BY copies DESC LIMIT 10"
    ),
    "join with stories": (
        "SELECT a.dateline, count(*), sum(s.copies) FROM articles a "
        "JOIN stories s ON s.story_id = a.article_id GROUP BY ALL ORDER BY 2 DESC LIMIT 10"
    ),
    "search": (
        "SELECT a.published_month, count(*) FROM search('government OR election') s "
        "JOIN articles a USING (article_id) GROUP BY ALL ORDER BY ALL"
    ),
    "time travel": "SELECT count(*) FROM articles AT (VERSION => {base})",
    "runs": "SELECT * FROM runs ORDER BY started_at DESC LIMIT 5",
    "whole nights": WHOLE.format(at=""),
    "whole nights, time travel": WHOLE.format(at="AT (VERSION => {base})"),
}


@dataclass(slots=True)
class ReaderFigures:
    """What one reader did: queries run by kind, errors, answers not from whole nights."""

    reader: int
    queries: int = 0
    by_query: dict[str, int] = field(default_factory=dict)
    seconds_by_query: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    not_whole: list[list[int]] = field(default_factory=list)
    whole_checked: int = 0
    states_seen: int = 0


def read_until(home: Path, base: int, stop: Path, ready: Path, number: int) -> ReaderFigures:
    """Run the analysts' queries in a loop until `stop` exists; `ready` is written once the
    first round has run (so the night starts with every reader querying)."""
    import duckdb

    import warehouse

    figures = ReaderFigures(number)
    counts: Counter[str] = Counter()
    seconds: dict[str, float] = {}
    states: set[tuple[int, ...]] = set()
    names = list(QUERIES)
    con: duckdb.DuckDBPyConnection | None = None
    at = number  # readers start at different queries
    while not stop.exists():
        name = names[at % len(names)]
        at += 1
        try:
            if con is None or figures.queries % _RECONNECT == 0:
                if con is not None:
                    con.close()
                con = warehouse.connect(home)
            begin = time.perf_counter()
            rows = con.execute(QUERIES[name].format(base=base)).fetchall()
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - begin
        except Exception as error:  # a reader error: counted and shown, the loop goes on
            figures.errors.append(f"{name}: {type(error).__name__}: {error}".splitlines()[0])
            if con is not None:
                con.close()
            con = None
            continue
        finally:
            figures.queries += 1
        counts[name] += 1
        if name.startswith("whole nights"):
            figures.whole_checked += 1
            row = tuple(int(v) for v in rows[0])
            states.add(row)
            if row[:4] != row[4:]:
                figures.not_whole.append(list(row))
        if at >= number + len(names) and not ready.exists():
            ready.write_text("ready\n")
    if con is not None:
        con.close()
    figures.by_query = dict(counts)
    figures.seconds_by_query = {k: round(v, 3) for k, v in seconds.items()}
    figures.states_seen = len(states)
    return figures


@dataclass(slots=True)
class Night:
    """One night's times, and the readers' figures if it ran under load."""

    loaded: bool
    wall_seconds: float
    flow_seconds: float
    articles: int
    readers: list[ReaderFigures] = field(default_factory=list)


def night(
    inbox: Path,
    base_home: Path,
    home: Path,
    places: Places,
    readers: int,
    base_snapshot: int,
    nice: int,
) -> Night:
    """One night of `inbox` into a copy of the base warehouse, under `readers` readers."""
    shutil.copytree(base_home, home)
    stop, folder = home.parent / f"{home.name}.stop", home.parent / f"{home.name}.readers"
    folder.mkdir()
    env = _prefect_env(places.prefect_home, places.pycache)
    procs = []
    for n in range(readers):
        cmd = [
            *(["nice", "-n", str(nice)] if nice else []),
            sys.executable,
            "-m",
            "bench.load",
            "reader",
            str(home),
            str(base_snapshot),
            str(stop),
            str(folder / f"{n}"),
            str(n),
        ]
        procs.append(subprocess.Popen(cmd, env=env, cwd=REPO))
    deadline = time.monotonic() + _READY_SECONDS
    while any(not (folder / f"{n}.ready").exists() for n in range(readers)):
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            stop.touch()
            raise SystemExit("the readers did not start: see their output above")
        time.sleep(0.2)
    try:
        done = ingest(inbox, home, places, served=True)
    finally:
        stop.touch()
        for proc in procs:
            proc.wait()
    figures = [
        ReaderFigures(**json.loads((folder / f"{n}.json").read_text())) for n in range(readers)
    ]
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)
    stop.unlink(missing_ok=True)
    return Night(
        loaded=readers > 0,
        wall_seconds=round(done.child.wall, 2),
        flow_seconds=round(float(done.report["seconds"]), 2),
        articles=int(done.report["counts"]["articles"]),
        readers=figures,
    )


def base_warehouse(work: Path, places: Places, dumps: int) -> tuple[Path, int]:
    """The warehouse both nights start from: one night of `dumps` other dumps; its snapshot."""
    import warehouse

    inbox, home = work / "inbox-base", work / "base"
    render_inbox(inbox, dumps, seed=2)
    ingest(inbox, home, places, served=True)
    shutil.rmtree(inbox)
    with warehouse.connect(home) as con:
        snapshot = con.execute("SELECT max(snapshot_id) FROM wh.snapshots()").fetchall()[0][0]
    return home, int(snapshot)


def sitting(work: Path, args: argparse.Namespace) -> list[Night]:
    """Render, build the base, then alternate quiet and loaded nights `rounds` times."""
    inbox = work / "inbox"
    rendered = render_inbox(inbox, args.dumps, seed=1)
    _say(f"rendered {rendered.dumps:,} dumps in {rendered.seconds:.0f} s")
    places = Places(work / "prefect-home", work / "pycache")
    server = running_server(places)
    places = replace(places, api_url=server.api_url)
    nights: list[Night] = []
    try:
        base, snapshot = base_warehouse(work, places, args.base)
        _say(f"base warehouse: one night of {args.base:,} dumps, snapshot {snapshot}")
        for r in range(args.rounds):
            for readers in (0, args.readers) if r % 2 == 0 else (args.readers, 0):
                home = work / f"home-{r}-{readers}"
                done = night(inbox, base, home, places, readers, snapshot, args.nice)
                nights.append(done)
                _say(_brief(r, done))
    finally:
        server.stop()
    return nights


def summary(nights: list[Night]) -> dict[str, Any]:
    """Medians of the quiet and loaded nights, their ratio, and the readers' totals."""
    quiet = [n for n in nights if not n.loaded]
    loaded = [n for n in nights if n.loaded]
    readers = [r for n in loaded for r in n.readers]

    def median(ns: list[Night], what: str) -> float:
        return round(float(statistics.median(getattr(n, what) for n in ns)), 2)

    q_wall, l_wall = median(quiet, "wall_seconds"), median(loaded, "wall_seconds")
    q_flow, l_flow = median(quiet, "flow_seconds"), median(loaded, "flow_seconds")
    return {
        "nights_each": len(quiet),
        "quiet_wall_s": q_wall,
        "loaded_wall_s": l_wall,
        "ratio_wall": round(l_wall / q_wall, 2),
        "quiet_flow_s": q_flow,
        "loaded_flow_s": l_flow,
        "ratio_flow": round(l_flow / q_flow, 2),
        "readers": len(loaded[0].readers) if loaded else 0,
        "queries_per_reader": [r.queries for r in readers],
        "queries": sum(r.queries for r in readers),
        "queries_by_kind": dict(sum((Counter(r.by_query) for r in readers), Counter())),
        "errors": [e for r in readers for e in r.errors],
        "whole_night_checks": sum(r.whole_checked for r in readers),
        "not_from_whole_nights": [row for r in readers for row in r.not_whole],
        "states_seen_max": max((r.states_seen for r in readers), default=0),
        "articles": sorted({n.articles for n in nights}),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: the sitting, then the figures; exit 1 on a reader error or an answer not
    from whole nights. `reader ...` is a reader process's own entry."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["reader"]:
        return _reader(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m bench.load",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dumps", type=int, default=60_000, help="dumps of the measured night")
    parser.add_argument("--base", type=int, default=5_000, help="dumps of the base warehouse")
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1, help="quiet and loaded nights each")
    parser.add_argument(
        "--nice", type=int, default=0, help="the readers' niceness (0: as the night's)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if min(args.dumps, args.base, args.readers, args.rounds) < 1:
        parser.error("--dumps, --base, --readers and --rounds must be at least 1")
    quiet_third_parties()
    work = Path(tempfile.mkdtemp(prefix="wirehouse-load-"))
    try:
        nights = sitting(work, args)
    except IngestFailed as error:
        print(f"ingest failed: {error}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    totals = summary(nights)
    print(json.dumps(totals, indent=2))
    if args.json:
        document = {"summary": totals, "nights": [asdict(n) for n in nights]}
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    for message in totals["errors"]:
        print(f"READER ERROR: {message}")
    for row in totals["not_from_whole_nights"]:
        print(f"NOT FROM WHOLE NIGHTS: tables {row[:4]}, runs {row[4:]}")
    print(
        f"load: quiet night {totals['quiet_wall_s']:.1f} s, with {totals['readers']} readers "
        f"{totals['loaded_wall_s']:.1f} s (x{totals['ratio_wall']:.2f} wall, "
        f"x{totals['ratio_flow']:.2f} flow; medians of {totals['nights_each']}); "
        f"{totals['queries']:,} queries, {len(totals['errors'])} errors, "
        f"{len(totals['not_from_whole_nights'])} of {totals['whole_night_checks']:,} answers "
        f"not from whole nights"
    )
    return 1 if totals["errors"] or totals["not_from_whole_nights"] else 0


def _reader(argv: list[str]) -> int:
    """A reader process: HOME BASE_SNAPSHOT STOP OUT NUMBER; writes OUT.ready, then OUT.json."""
    home, base, stop, out, number = argv
    figures = read_until(Path(home), int(base), Path(stop), Path(out + ".ready"), int(number))
    Path(out + ".json").write_text(json.dumps(asdict(figures)) + "\n")
    return 0


def _brief(r: int, n: Night) -> str:
    """One line a night."""
    said = f"round {r + 1}, {'loaded' if n.loaded else 'quiet'}: wall {n.wall_seconds:.1f} s, "
    said += f"flow {n.flow_seconds:.1f} s, {n.articles:,} articles"
    if n.loaded:
        said += (
            f"; queries per reader {[x.queries for x in n.readers]}, errors "
            f"{sum(len(x.errors) for x in n.readers)}, not whole "
            f"{sum(len(x.not_whole) for x in n.readers)}"
        )
    return said


def _say(message: str) -> None:
    print(message, flush=True)


if __name__ == "__main__":
    sys.exit(main())
