"""The soak: a long sequence of nights and operations with faults injected, against a reference.

    python -m bench.soak --steps 200 --seed 1 [--lake local|postgres-s3] [--readers 2]

Every step (a night of real dumps, a backfill, a rollback, a reprocess or a compaction) runs
twice: first on a reference warehouse with no fault, then on the soaked warehouse with the
faults the seed draws for it, each at a random instant. A step that a fault stopped is run again
unharmed ("recovered by the next run"). After every step the soaked warehouse must pass
`verify`, hold the same rows as the reference in every table (lineage columns aside) and the
same outcomes of the runs that completed; a step that failed or was killed must have changed
nothing or everything. Reader processes query the soaked warehouse the whole time and check that
every answer comes from whole nights.

Nights are made of the repo's own dumps: BBC stories rendered as Xinhua pages with re-scrapes
(bench/render.py, from tests/cases/bbc), the sample inbox's Xinhua layouts and other outlets,
pages in a dozen languages, hostile files and bundles, and re-deliveries of earlier nights' files.

Each step runs the real CLI (`flows.cli.main`) in a process forked from this one (the imports are
paid once), against one Prefect server. Faults, by kind:

- `kill`: the step's process killed (SIGKILL) at a random instant of it;
- `worker`: a Dask worker killed mid-night (another takes its place);
- `scheduler`: the Dask scheduler and its workers restarted before the step;
- `disk-full`: the disk fills at a random write point of the step and stays full for it;
- `disk-hiccup`: one write fails with EAGAIN (a transient error, retried);
- with `--lake postgres-s3`, also `catalog-restart` (PostgreSQL stopped and started again
  mid-step, `catalog-commit` (the same while the commit runs), `catalog-down` (down for the
  whole step), and `s3-slowdown`, `s3-error`, `s3-reset`, `s3-slow` (a share of the object
  store's answers disturbed by a proxy on loopback), `s3-down` (every answer refused).

With `--faults-per-step N`, up to N faults that can strike together do (a worker killed while
the catalog restarts and the disk hiccups, say).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

    from warehouse.home import Home

REPO = Path(__file__).resolve().parent.parent
CASES = REPO / "tests" / "cases"
SAMPLES = REPO / "samples" / "inbox"
# Lineage columns that differ between two warehouses built from the same inputs, and columns
# whose values depend on how a night's work was cut into batches (archive packs).
VOLATILE = {
    "run_id",
    "ingested_at",
    "first_seen_at",
    "quarantined_at",
    "captured_at",
    "pack",
    "offset",
}
# List columns whose order carries no meaning (a posting's positions in its article).
UNORDERED = {"positions"}
# The tables compared row for row (the lake's own; `runs` is compared by outcome).
TABLES = (
    "articles",
    "duplicates",
    "quarantine",
    "files",
    "archive_index",
    "minhash_bands",
    "minhash_signatures",
    "search_postings",
    "search_documents",
)
STEP_WEIGHTS = {"night": 70, "backfill": 8, "rollback": 8, "reprocess": 4, "compact": 10}
LOCAL_FAULTS = ("kill", "worker", "scheduler", "disk-full", "disk-hiccup")
REMOTE_FAULTS = (
    "catalog-restart",
    "catalog-commit",
    "catalog-down",
    "s3-slowdown",
    "s3-error",
    "s3-reset",
    "s3-slow",
    "s3-down",
)
# Checkpoints where a night writes: where a full disk is met.
WRITE_POINTS = ("write:batch", "write:file", "load:articles", "load:rows", "load:commit")
KILLED = -signal.SIGKILL
# The object store's keys (moto takes any): long, as real ones, since they are masked wherever
# they appear in a message.
SOAK_KEY_ID, SOAK_SECRET = "SOAKKEYID4Q7Z2W9X", "soak-secret-3f9c1e7a5b2d4c6e"


# --- the inputs ---------------------------------------------------------------------------


@dataclass
class Deliveries:
    """The files nights are made of, and what was delivered so far (for re-deliveries)."""

    pool: Path
    rng: random.Random
    bbc: list[Path] = field(default_factory=list)
    pages: list[Path] = field(default_factory=list)
    hostile: list[Path] = field(default_factory=list)
    delivered: list[Path] = field(default_factory=list)

    @classmethod
    def make(cls, work: Path, seed: int, stories: int) -> Deliveries:
        """Render `stories` BBC pages (with re-scrapes) and list the repo's other dumps."""
        from bench.render import render_inbox

        pool = work / "pool"
        render_inbox(pool / "bbc", stories, seed=seed, rescrape_share=0.15, shared=CASES / "bbc")
        made = cls(pool, random.Random(f"soak-inputs:{seed}"))
        made.bbc = sorted(p for p in (pool / "bbc").rglob("*") if p.is_file())
        made.pages = sorted(
            p
            for folder in (SAMPLES, CASES / "web-night", CASES / "web")
            for p in folder.rglob("*")
            if p.is_file() and p.suffix != ".md"
        )
        hostile = CASES / "hostile" / "inbox"
        made.hostile = sorted(p for p in hostile.rglob("*") if p.is_file())
        return made

    def night(self, folder: Path, size: int) -> int:
        """Deliver one night's files into `folder`; how many."""
        picks: list[tuple[str, Path]] = []
        for _ in range(size):
            roll = self.rng.random()
            if roll < 0.70 or not self.pages:
                picks.append(("bbc", self.bbc.pop(0) if self.bbc else self.rng.choice(self.pages)))
            elif roll < 0.92:
                picks.append(("pages", self.rng.choice(self.pages)))
            elif roll < 0.96 and self.delivered:
                picks.append(("again", self.rng.choice(self.delivered)))
            else:
                picks.append(("hostile", self.rng.choice(self.hostile)))
        for n, (kind, source) in enumerate(picks):
            target = folder / kind / f"{n:03d}" / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            self.delivered.append(target)
        return len(picks)


# --- running a step ---------------------------------------------------------------------


@dataclass
class Ended:
    """How one run of a step ended."""

    exit: int
    seconds: float
    stderr: str

    @property
    def killed(self) -> bool:
        """Whether SIGKILL ended it."""
        return self.exit == KILLED

    @property
    def last_line(self) -> str:
        """The last line it printed on stderr (its message, when it failed)."""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""


class Forker:
    """Runs `wirehouse` commands in children forked from this process (imports paid once)."""

    def __init__(self, work: Path) -> None:
        """Import the CLI and Great Expectations here, once."""
        from expectations.runner import import_gx
        from flows import cli

        import_gx()
        self.main = cli.main
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def start(self, argv: list[str], env: dict[str, str]) -> tuple[int, Path]:
        """Fork a child running `wirehouse argv` with `env` added; its pid and stderr file."""
        self.count += 1
        log = self.logs / f"{self.count:05d}.err"
        pid = os.fork()
        if pid:
            return pid, log
        code = 1
        try:
            os.environ.update(env)
            err = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            out = os.open(os.devnull, os.O_WRONLY)
            os.dup2(out, 1)
            os.dup2(err, 2)
            code = self.main(argv)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        except BaseException as error:  # a traceback here is a finding: it is kept in the log
            import traceback

            traceback.print_exc()
            sys.stderr.write(f"soak child: {type(error).__name__}: {error}\n")
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        raise AssertionError("unreachable")

    @staticmethod
    def wait(pid: int, log: Path, started: float, kill_after: float | None = None) -> Ended:
        """Wait for a child, SIGKILLing it past `kill_after` seconds."""
        status = None
        if kill_after is not None:
            deadline = started + kill_after
            while time.monotonic() < deadline:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                time.sleep(0.01)
            else:
                os.kill(pid, signal.SIGKILL)
                status = None
        if status is None or kill_after is None:
            status = os.waitpid(pid, 0)[1]
        return Ended(
            os.waitstatus_to_exitcode(status),
            round(time.monotonic() - started, 3),
            log.read_text(errors="replace") if log.exists() else "",
        )

    def run(
        self,
        argv: list[str],
        env: dict[str, str],
        kill_after: float | None = None,
        during: Sequence[Callable[[float], None]] = (),
    ) -> Ended:
        """Run a command to its end; each of `during(started)` runs in a thread meanwhile."""
        started = time.monotonic()
        pid, log = self.start(argv, env)
        threads = [threading.Thread(target=hook, args=(started,)) for hook in during]
        for thread in threads:
            thread.start()
        try:
            return self.wait(pid, log, started, kill_after)
        finally:
            for thread in threads:
                thread.join()


@dataclass
class Plan:
    """What the faults of one step do: settings for its process, actions before it starts,
    while it runs (each given its start time) and after it ended, and when to kill it."""

    env: dict[str, str]
    before: list[Callable[[], None]] = field(default_factory=list)
    during: list[Callable[[float], None]] = field(default_factory=list)
    after: list[Callable[[], None]] = field(default_factory=list)
    kill_after: float | None = None


# --- what the warehouses hold -----------------------------------------------------------


def _made(home: Any) -> bool:
    """Whether a warehouse's catalog has been made (by its first run)."""
    from warehouse.catalog import exists

    spec = home.catalog_spec
    if not spec.startswith("postgres:"):
        return exists(home)
    import psycopg

    with psycopg.connect(spec.removeprefix("postgres:")) as con:
        row = con.execute("SELECT to_regclass('ducklake_metadata') IS NOT NULL").fetchone()
    return bool(row and row[0])


def _home(env: dict[str, str]) -> Any:
    """The Home that a child with `env` would use."""
    from warehouse.home import Home

    saved = dict(os.environ)
    try:
        os.environ.update(env)
        return Home.from_env()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _columns(con: Any, table: str) -> str:
    """A table's compared columns, quoted and comma-separated; a posting's positions sorted
    (the index keeps them in no order: warehouse/search.py)."""
    described = con.execute(f"DESCRIBE SELECT * FROM {table}").fetchall()
    names = [row[0] for row in described if row[0] not in VOLATILE]
    return ", ".join(f'list_sort("{n}")' if n in UNORDERED else f'"{n}"' for n in names)


def fingerprints(env: dict[str, str]) -> dict[str, tuple[int, int]]:
    """Per table, its row count and the sum of its rows' hashes (lineage columns aside): equal
    for equal multisets of rows, and cheap enough to take after every step."""
    from warehouse.catalog import lake_connection

    home = _home(env)
    if not _made(home):
        return {}
    out = {}
    with lake_connection(home) as con:
        for table in TABLES:
            row = con.execute(
                f"SELECT count(*), coalesce(sum(hash({_columns(con, table)})::HUGEINT), 0) "
                f"FROM {table}"
            ).fetchone()
            assert row is not None
            out[table] = (int(row[0]), int(row[1]))
    return out


def _rows(found: dict[str, tuple[int, int]], table: str) -> tuple[int, int]:
    """A table's fingerprint; a warehouse not made yet holds empty tables."""
    return found.get(table, (0, 0))


def tables_of(env: dict[str, str], only: set[str]) -> dict[str, Any]:
    """The rows of some tables (Arrow), lineage columns aside; none before the first run."""
    import pyarrow as pa

    from warehouse.catalog import lake_connection

    home = _home(env)
    if not _made(home):
        return {}
    out = {}
    with lake_connection(home) as con:
        for table in sorted(only):
            found = con.execute(f"SELECT {_columns(con, table)} FROM {table}").arrow()
            out[table] = found.read_all() if isinstance(found, pa.RecordBatchReader) else found
    return out


def outcomes_of(env: dict[str, str]) -> Counter[tuple[Any, ...]]:
    """The runs that completed and changed something, by kind, status and counts.

    A night re-run after a kill that came after its commit finds nothing new: left out. An
    operation run again after such a kill (a rollback, a reprocess) counts once.
    """
    from warehouse.catalog import lake_connection

    home = _home(env)
    if not _made(home):
        return Counter()
    with lake_connection(home) as con:
        rows = con.execute(
            "SELECT kind, status, files_new, articles, duplicates, quarantined FROM runs "
            "WHERE status <> 'failed' AND kind <> 'compact' "
            "AND NOT (kind IN ('nightly', 'backfill') AND coalesce(files_new, 0) = 0 "
            "AND status = 'succeeded')"
        ).fetchall()
    nights = Counter(r for r in rows if r[0] in ("nightly", "backfill"))
    operations = Counter(set(r for r in rows if r[0] not in ("nightly", "backfill")))
    return nights + operations


def difference(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """Per table, (rows of `theirs` missing from `ours`, rows of `ours` not in `theirs`),
    as multisets: a row twice where it should be once counts as one extra."""
    import duckdb

    out = {}
    con = duckdb.connect()
    try:
        for table in TABLES:
            a, b = ours.get(table), theirs.get(table)
            if a is None and b is None:
                continue
            if a is None or b is None:
                present = a if a is not None else b
                rows = present.num_rows
                out[table] = (rows, 0) if a is None else (0, rows)
                continue
            con.register("a", a)
            con.register("b", b)
            missing = con.sql("SELECT count(*) FROM (FROM b EXCEPT ALL FROM a)").fetchone()
            extra = con.sql("SELECT count(*) FROM (FROM a EXCEPT ALL FROM b)").fetchone()
            out[table] = (int(missing[0]) if missing else 0, int(extra[0]) if extra else 0)
    finally:
        con.close()
    return {table: counts for table, counts in out.items() if counts != (0, 0)}


def violations_of(env: dict[str, str]) -> list[str]:
    """What `wirehouse verify` finds wrong with the warehouse (empty: all holds)."""
    from warehouse.verify import verify

    home = _home(env)
    if not _made(home):
        return []
    # With a sample of what breaks it: a data file's name carries the run that wrote it.
    return [f"{v.check}: {v.promise} (e.g. {v.sample[:2]})" for v in verify(home)]


# --- the soak ---------------------------------------------------------------------------


@dataclass
class Figures:
    """What the soak prints."""

    steps: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    survived: Counter[tuple[str, str]] = field(default_factory=Counter)
    rows_lost: int = 0
    rows_duplicated: int = 0
    mismatches: list[str] = field(default_factory=list)
    tracebacks: list[str] = field(default_factory=list)
    messages: Counter[str] = field(default_factory=Counter)
    readers: dict[str, Any] = field(default_factory=dict)
    combined: int = 0  # steps with more than one fault
    answers_disturbed: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {
            "steps": dict(self.steps),
            "faults_injected": dict(self.faults),
            "faults_total": sum(self.faults.values()),
            "steps_with_faults_combined": self.combined,
            "s3_answers_disturbed": self.answers_disturbed,
            "how_survived": {f"{k} / {how}": n for (k, how), n in sorted(self.survived.items())},
            "rows_lost": self.rows_lost,
            "rows_duplicated": self.rows_duplicated,
            "mismatches": self.mismatches,
            "failures_with_a_traceback": self.tracebacks,
            "failure_messages": dict(self.messages.most_common(20)),
            "readers": self.readers,
            "seconds": round(self.seconds, 1),
        }


@dataclass
class Place:
    """One warehouse of the soak: its environment and per-step memory."""

    name: str
    env: dict[str, str]
    run_ids: dict[int, str] = field(default_factory=dict)  # step -> the run it made


class Soak:
    """Runs the steps on the reference and on the soaked warehouse, faults on the latter."""

    def __init__(self, args: argparse.Namespace, work: Path, stack: ExitStack) -> None:
        """Set up the servers, the inputs, both warehouses and the readers."""
        self.args = args
        self.work = work
        self.rng = random.Random(f"soak:{args.seed}")
        self.figures = Figures()
        self.inbox = work / "inbox"
        self.inbox.mkdir()
        self.inputs = Deliveries.make(work, args.seed, max(40, args.steps * args.night_size))
        self.env = self._prefect(stack)
        self.remote = Remote.start(args.lake, work, stack)
        self.cluster = self._dask(stack) if args.dask else None
        base = {**self.env, "WIREHOUSE_SETTLE_SECONDS": "0", "WIREHOUSE_BATCH_SIZE": "16"}
        if args.retry_seconds is not None:
            base["WIREHOUSE_RETRY_SECONDS"] = str(args.retry_seconds)
        self.reference = Place("reference", {**base, **self.remote.env(work, "reference")})
        self.soaked = Place("soaked", {**base, **self.remote.env(work, "soaked")})
        self.faults = LOCAL_FAULTS + (REMOTE_FAULTS if args.lake == "postgres-s3" else ())
        if not args.dask:
            self.faults = tuple(f for f in self.faults if f not in ("worker", "scheduler"))
        if args.faults:
            self.faults = tuple(args.faults.split(","))
        self._due: list[str] = []
        self.forker = Forker(work)
        self.readers = Readers(work, self.soaked.env, args.readers, stack, args.reader_nice)

    def _prefect(self, stack: ExitStack) -> dict[str, str]:
        """A Prefect server for every step's flow run; the children's environment."""
        from bench.run import Places, running_server

        if os.environ.get("PREFECT_API_URL"):
            return {"PREFECT_API_URL": os.environ["PREFECT_API_URL"]}
        server = running_server(Places(self.work / "prefect-home", self.work / "pycache"))
        stack.callback(server.stop)
        return {
            "PREFECT_API_URL": server.api_url,
            "PREFECT_HOME": str(self.work / "prefect-home"),
            "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "ERROR",
        }

    def _dask(self, stack: ExitStack) -> Any:
        """A Dask scheduler and two workers, their environment holding the S3 keys."""
        from bench.dask_local import dask_cluster_of

        env = {**self.env, **self.remote.worker_env()}
        return stack.enter_context(dask_cluster_of(self.work / "dask", env=env))

    # -- steps

    def step(self, k: int) -> None:
        """Draw step k, run it on the reference, then on the soaked warehouse with faults."""
        kind = self._draw_kind(k)
        self.figures.steps[kind] = self.figures.steps[kind] + 1
        argv = self._argv(kind, k)
        if argv is None:
            self.figures.steps[kind] -= 1
            kind, argv = "night", self._argv("night", k)
            self.figures.steps["night"] += 1
        assert argv is not None
        self._last_argv = argv
        points_log = self.work / "points.log"
        points_log.unlink(missing_ok=True)
        ref = self.forker.run(
            self._resolve(argv, self.reference),
            {**self.reference.env, "WIREHOUSE_CHECKPOINT_LOG": str(points_log)},
        )
        if ref.exit != 0 and kind == "night":
            raise SystemExit(f"step {k} ({kind}) failed on the reference:\n{ref.stderr[-2000:]}")
        points = points_log.read_text().split() if points_log.exists() else []
        self._remember(self.reference, k, kind)
        faults = self._draw_faults(kind) if ref.exit == 0 else []
        before = fingerprints(self.soaked.env)
        ended = self._faulted(argv, faults, ref, points)
        if faults:
            self.figures.faults.update(faults)
            if len(faults) > 1:
                self.figures.combined += 1
            how = self._judge(k, kind, "+".join(faults), ended, before)
            self.figures.survived.update((fault, how) for fault in faults)
        elif ended.exit != ref.exit:
            self._mismatch(k, f"{kind} exited {ended.exit}, the reference {ref.exit}")
        self._remember(self.soaked, k, kind)
        self._compare(k, f"{kind} under {'+'.join(faults)}" if faults else kind)

    def _draw_kind(self, k: int) -> str:
        """The kind of step k: nights first, then a mix."""
        if k < 3:
            return "night"
        kinds, weights = zip(*STEP_WEIGHTS.items(), strict=True)
        return self.rng.choices(kinds, weights)[0]

    def _draw_faults(self, kind: str) -> list[str]:
        """The faults of this step on the soaked warehouse, one up to --faults-per-step that
        can strike together: the kinds are taken in a seeded order, round after round, so that
        a short soak meets each of them."""
        if self.rng.random() >= self.args.fault_share:
            return []
        wanted = self.rng.randint(1, max(1, self.args.faults_per_step))
        chosen: list[str] = []
        for _ in range(wanted):
            fits = [
                f
                for f in self.faults
                if (kind in ("night", "backfill") or f in _ANY_STEP)
                and f not in chosen
                and not any(_EXCLUSIVE.get(f, f) == _EXCLUSIVE.get(c, c) for c in chosen)
            ]
            if not fits:
                break
            if not any(f in fits for f in self._due):
                self._due = self.rng.sample(self.faults, len(self.faults))
            fault = next(f for f in self._due if f in fits)
            self._due.remove(fault)
            chosen.append(fault)
        return chosen

    def _argv(self, kind: str, k: int) -> list[str] | None:
        """The command of step k (run ids as placeholders); None when it cannot run yet."""
        cluster = ["--dask-scheduler", self.cluster.address] if self.cluster else []
        if kind == "night":
            self.inputs.night(self.inbox / f"night-{k:04d}", self.args.night_size)
            return ["ingest", "--inbox", str(self.inbox), "--max-failure-ratio", "0.5", *cluster]
        if kind == "backfill":
            folder = self.work / f"backfill-{k:04d}"
            self.inputs.night(folder, self.args.night_size)
            day = date(2025, 1, 1) + timedelta(days=k)
            stamp = datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp()
            for path in folder.rglob("*"):
                os.utime(path, (stamp, stamp))
            since = day.isoformat()
            return ["backfill", str(folder), "--since", since, "--until", since, *cluster]
        if kind == "rollback":
            standing = self._standing(self.reference)
            nights = [s for s, run in self.reference.run_ids.items() if run[6:] in standing]
            if not nights:
                return None
            return ["rollback", f"@{self.rng.choice(nights[-5:])}", "--cascade"]
        if kind == "reprocess":
            return ["reprocess", *cluster]
        return ["compact"]

    @staticmethod
    def _standing(place: Place) -> set[str]:
        """The nightly runs of a place that are not rolled back."""
        from warehouse.catalog import lake_connection

        with lake_connection(_home(place.env)) as con:
            rows = con.execute(
                "SELECT run_id FROM runs WHERE kind = 'nightly' AND status = 'succeeded'"
            ).fetchall()
        return {run for (run,) in rows}

    def _resolve(self, argv: list[str], place: Place) -> list[str]:
        """The command with a step's placeholder (@k) replaced by that place's run id."""
        out = []
        for arg in argv:
            if arg.startswith("@"):
                arg = place.run_ids[int(arg[1:])].split(":", 1)[1]
            out.append(arg)
        return [*(["--home", place.env["WIREHOUSE_HOME"]]), *out]

    def _remember(self, place: Place, k: int, kind: str) -> None:
        """Note the nightly run step k made (for rollbacks drawn later)."""
        if kind != "night":
            return
        from warehouse.catalog import lake_connection

        home = _home(place.env)
        if not _made(home):
            return
        with lake_connection(home) as con:
            row = con.execute(
                "SELECT run_id FROM runs WHERE kind = 'nightly' AND status = 'succeeded' "
                "AND coalesce(files_new, 0) > 0 ORDER BY started_at DESC LIMIT 1"
            ).fetchone()
        known = {run for run in place.run_ids.values()}
        if row and f"night:{row[0]}" not in known:
            place.run_ids[k] = f"night:{row[0]}"

    # -- faults

    def _faulted(self, argv: list[str], faults: list[str], ref: Ended, points: list[str]) -> Ended:
        """Run the step on the soaked warehouse with its faults injected."""
        plan = Plan(dict(self.soaked.env))
        span = max(ref.seconds, 0.5)
        for fault in faults:
            self._plan(fault, plan, span, points)
        try:
            for action in plan.before:
                action()
            return self.forker.run(
                self._resolve(argv, self.soaked), plan.env, plan.kill_after, plan.during
            )
        finally:
            for action in plan.after:
                action()

    def _plan(self, fault: str, plan: Plan, span: float, points: list[str]) -> None:
        """Add what one fault does to the step's plan."""
        writes = [p for p in points if p in WRITE_POINTS] or ["load:commit"]
        if fault == "kill":
            plan.kill_after = self.rng.uniform(0.05, 1.0) * span
        elif fault == "disk-full":
            plan.env["WIREHOUSE_FAIL_AT"] = f"{self.rng.choice(writes)}:1000000"
        elif fault == "disk-hiccup":
            plan.env["WIREHOUSE_FAIL_AT"] = f"{self.rng.choice(writes)}:1:EAGAIN"
        elif fault == "scheduler":
            cluster = self.cluster
            assert cluster is not None
            plan.before.append(cluster.restart)  # at the same address
        elif fault == "worker":
            cluster = self.cluster
            assert cluster is not None
            delay = self.rng.uniform(0.1, 0.9) * span
            plan.during.append(lambda started: kill_a_worker(cluster, started, delay))
        else:
            self.remote.plan(fault, plan, span, self.rng)

    def _judge(self, k: int, kind: str, fault: str, ended: Ended, before: dict[str, Any]) -> str:
        """How the soaked warehouse survived a fault; reruns the step when it stopped it."""
        if ended.exit == 0:
            return "completed (retried, or the fault not met)"
        after = fingerprints(self.soaked.env)
        half = sorted(t for t in set(after) | set(before) if _rows(after, t) != _rows(before, t))
        if ended.killed:
            how = "killed, recovered by the next run"
        else:
            how = "failed cleanly, recovered by the next run"
            if "Traceback" in ended.stderr:
                self.figures.tracebacks.append(f"step {k} ({kind}, {fault}): {ended.last_line}")
            self.figures.messages[_shape(ended.last_line)] += 1
        self.remote.heal()
        again = self.forker.run(self._resolve(self._last_argv, self.soaked), self.soaked.env)
        if again.exit != 0:
            self._mismatch(k, f"the run after {fault} failed too: {again.last_line}")
            return "not recovered"
        if half and not ended.killed:
            self._mismatch(k, f"{kind} failed under {fault} but changed rows: {half}")
        return how

    def _mismatch(self, k: int, what: str) -> None:
        """Record a difference from what must hold."""
        self.figures.mismatches.append(f"step {k}: {what}")
        print(f"  MISMATCH step {k}: {what}", flush=True)

    def _count_lost(self, k: int, ours: dict[str, Any], theirs: dict[str, Any]) -> None:
        """The rows the soaked warehouse lacks or has too many of, table by table."""
        for table, (missing, extra) in difference(ours, theirs).items():
            self.figures.rows_lost += missing
            self.figures.rows_duplicated += extra
            self._mismatch(k, f"{table}: {missing} rows missing, {extra} extra")

    def _compare(self, k: int, step: str) -> None:
        """The soaked warehouse against the reference, after step k (`step`: its kind and
        faults, for the record)."""
        ours, theirs = fingerprints(self.soaked.env), fingerprints(self.reference.env)
        differ = {t for t in set(ours) | set(theirs) if _rows(ours, t) != _rows(theirs, t)}
        if differ and not (theirs and ours):
            self._mismatch(k, f"one warehouse is empty: {sorted(differ)}")
        elif differ:
            rows = (tables_of(self.soaked.env, differ), tables_of(self.reference.env, differ))
            self._count_lost(k, *rows)
        mine, reference = outcomes_of(self.soaked.env), outcomes_of(self.reference.env)
        if mine != reference:
            self._mismatch(k, f"runs differ: {dict(mine - reference)} / {dict(reference - mine)}")
        if found := violations_of(self.soaked.env):
            self._mismatch(k, f"verify after {step}: {found}")


_ANY_STEP = ("kill", "disk-full", "disk-hiccup", "catalog-restart", "catalog-down", "s3-down")
# Faults that cannot strike one step together: one way for the disk to fail, one thing done to
# the catalog's server, one mood of the proxy.
_EXCLUSIVE = {
    "disk-full": "disk",
    "disk-hiccup": "disk",
    "catalog-restart": "catalog",
    "catalog-commit": "catalog",
    "catalog-down": "catalog",
    **{f"s3-{kind}": "s3" for kind in ("slowdown", "error", "reset", "slow", "down")},
}


def _shape(line: str) -> str:
    """A failure message with its numbers and paths blurred, to count them by kind."""
    import re

    line = re.sub(r"(/[^\s:;,'\"]+)+", "<path>", line)
    return re.sub(r"\d+", "N", line)[:160]


# --- the catalog and object storage -----------------------------------------------------


class Remote:
    """Where both warehouses keep their catalog and data: this machine's folders (`local`)."""

    answers_disturbed = 0  # object storage's answers the proxy turned into faults

    @staticmethod
    def start(kind: str, work: Path, stack: ExitStack) -> Remote:
        """The servers of `kind`, started for the soak's length."""
        if kind == "local":
            return Remote()
        return RemoteServers.started(work, stack)

    def env(self, work: Path, name: str) -> dict[str, str]:
        """A warehouse's settings."""
        return {"WIREHOUSE_HOME": str(work / name)}

    def worker_env(self) -> dict[str, str]:
        """What a Dask worker's environment holds (the S3 keys, when there is S3)."""
        return {}

    def heal(self) -> None:
        """End every fault still in force."""

    def plan(self, fault: str, plan: Plan, span: float, rng: random.Random) -> None:
        """Add what a fault of the servers does to a step's plan."""
        raise SystemExit(f"the fault {fault!r} needs --lake postgres-s3")


class RemoteServers(Remote):
    """A PostgreSQL catalog and an S3 data path and archive, S3 behind a disturbing proxy."""

    def __init__(self, postgres: Any, s3_url: str, proxy: Any) -> None:
        """Servers already running."""
        self.postgres = postgres
        self.s3_url = s3_url
        self.proxy = proxy
        self.made: set[str] = set()

    @classmethod
    def started(cls, work: Path, stack: ExitStack) -> RemoteServers:
        """Start PostgreSQL, moto's S3 server and the proxy in front of it."""
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise

        from bench.pg_local import postgres_cluster
        from bench.s3proxy import disturbing_proxy

        postgres = stack.enter_context(postgres_cluster())
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        stack.callback(moto.stop)
        host, port = moto.get_host_and_port()
        proxy = stack.enter_context(disturbing_proxy(f"http://{host}:{port}", seed=0))
        return cls(postgres, f"http://{host}:{port}", proxy)

    def _keys(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": SOAK_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SOAK_SECRET,
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.proxy.endpoint_url,
        }

    def env(self, work: Path, name: str) -> dict[str, str]:
        """A warehouse with its own database and bucket."""
        import boto3

        if name not in self.made:
            self.postgres.create_database(f"soak_{name}")
            boto3.client(
                "s3",
                endpoint_url=self.s3_url,
                aws_access_key_id=SOAK_KEY_ID,
                aws_secret_access_key=SOAK_SECRET,
                region_name="us-east-1",
            ).create_bucket(Bucket=f"soak-{name}")
            self.made.add(name)
        return {
            **self._keys(),
            "WIREHOUSE_HOME": str(work / name),
            "WIREHOUSE_CATALOG": f"postgres:{self.postgres.dsn(f'soak_{name}')}",
            "WIREHOUSE_DATA_PATH": f"s3://soak-{name}/lake/",
            "WIREHOUSE_ARCHIVE": f"s3://soak-{name}/archive/",
        }

    def worker_env(self) -> dict[str, str]:
        """The workers reach S3 through the proxy, with the keys."""
        return self._keys()

    def heal(self) -> None:
        """PostgreSQL running, the proxy calm."""
        self.proxy.calm()
        if not self.postgres.running:
            self.postgres.start()

    def plan(self, fault: str, plan: Plan, span: float, rng: random.Random) -> None:
        """Add what PostgreSQL or the proxy in front of S3 does to a step's plan."""
        if fault.startswith("s3-"):
            kind = fault.removeprefix("s3-")
            share = rng.uniform(0.05, 0.3)
            start = sum(self.proxy.injected.values())

            def disturbed() -> None:
                self.proxy.calm()
                self.answers_disturbed += sum(self.proxy.injected.values()) - start

            down = kind == "down"
            plan.before.append(
                self.proxy.down if down else lambda: self.proxy.disturb(share, [kind])
            )
            plan.after.append(disturbed)
        elif fault == "catalog-down":
            plan.before.append(self.postgres.stop)
            plan.after.append(self.postgres.start)
        elif fault == "catalog-commit":
            log = Path(tempfile.mkdtemp(prefix="soak-points-")) / "points.log"
            plan.env["WIREHOUSE_CHECKPOINT_LOG"] = str(log)

            def at_commit(started: float) -> None:
                deadline = started + 10 * span + 30
                while time.monotonic() < deadline:
                    if log.exists() and "load:rows" in log.read_text():
                        self._restart(rng)
                        return
                    time.sleep(0.02)

            plan.during.append(at_commit)
            plan.after.append(lambda: shutil.rmtree(log.parent, ignore_errors=True))
        elif fault == "catalog-restart":
            delay = rng.uniform(0.1, 0.8) * span

            def mid_step(started: float) -> None:
                time.sleep(max(0.0, started + delay - time.monotonic()))
                self._restart(rng)

            plan.during.append(mid_step)
        else:
            raise SystemExit(f"unknown fault {fault!r}")

    def _restart(self, rng: random.Random) -> None:
        """PostgreSQL stopped (sessions cut), then started again a few seconds later."""
        self.postgres.stop(mode="immediate")
        time.sleep(rng.uniform(1.0, 4.0))
        self.postgres.start()


# --- the Dask cluster -------------------------------------------------------------------


def kill_a_worker(cluster: Any, started: float, delay: float) -> None:
    """SIGKILL one worker `delay` seconds into the step; a new one takes its place."""
    time.sleep(max(0.0, started + delay - time.monotonic()))
    workers = [n for n, p in cluster.processes.items() if n != "scheduler" and p.poll() is None]
    if not workers:
        return
    name = workers[0]
    cluster.processes[name].kill()
    cluster.processes[name].wait()
    del cluster.processes[name]
    cluster.start_worker(f"{name.split('.')[0]}.{int(time.time() * 1000) % 100000}")


# --- readers ----------------------------------------------------------------------------

# An answer from whole nights: every night that succeeded holds exactly its files' rows.
WHOLE_NIGHTS = """
WITH seen AS (SELECT run_id, count(*) AS n FROM files GROUP BY run_id)
SELECT count(*) FROM runs LEFT JOIN seen USING (run_id)
WHERE runs.status = 'succeeded' AND runs.kind IN ('nightly', 'backfill')
  AND coalesce(seen.n, 0) <> runs.files_new
"""
ANALYSTS = (
    "SELECT source, count(*) FROM articles GROUP BY ALL",
    "SELECT count(*) FROM articles a JOIN stories s ON s.story_id = a.article_id",
    "SELECT kind, count(*) FROM duplicates GROUP BY ALL",
    "SELECT published_month, count(*) FROM articles GROUP BY ALL ORDER BY 1",
)


class Readers:
    """Reader processes querying the soaked warehouse until the soak ends."""

    def __init__(
        self, work: Path, env: dict[str, str], count: int, stack: ExitStack, nice: int = 0
    ) -> None:
        """Start `count` readers (at niceness `nice`); they are stopped, and their figures
        read, at the end."""
        self.stop = work / "readers.stop"
        self.outs = [work / f"reader-{i}.json" for i in range(count)]
        self.processes = [
            subprocess.Popen(
                [
                    *(["nice", "-n", str(nice)] if nice else []),
                    sys.executable,
                    "-m",
                    "bench.soak",
                    "--reader",
                    str(out),
                    "--stop",
                    str(self.stop),
                ],
                cwd=REPO,
                env={**os.environ, **env},
            )
            for out in self.outs
        ]
        stack.callback(self.close)

    def close(self) -> dict[str, Any]:
        """Stop the readers; their summed figures."""
        self.stop.touch()
        for process in self.processes:
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
        total: Counter[str] = Counter()
        errors: list[str] = []
        for out in self.outs:
            if out.exists():
                found = json.loads(out.read_text())
                total.update(found["counts"])
                errors += found["errors"]
        self.processes = []
        return {"queries": dict(total), "errors": errors[:10]}


def read_until_stopped(out: Path, stop: Path) -> None:
    """A reader's loop: connect, check whole nights, run analysts' queries, again."""
    import warehouse
    from warehouse.catalog import NoWarehouse
    from warehouse.home import Home

    home = Home.from_env(None)
    counts: Counter[str] = Counter()
    errors: list[str] = []
    while not stop.exists():
        try:
            con = warehouse.connect()
        except NoWarehouse:
            time.sleep(0.2)
            continue
        except Exception as error:  # every error is a finding, classified
            _count_error(error, counts, errors)
            time.sleep(0.2)
            continue
        try:
            read(con, counts, home)
        except Exception as error:
            _count_error(error, counts, errors)
        finally:
            con.close()
        time.sleep(0.5)
    out.write_text(json.dumps({"counts": counts, "errors": errors}))


def read(con: duckdb.DuckDBPyConnection, counts: Counter[str], home: Home) -> None:
    """One round of a reader's queries, their failures told as `wirehouse sql` tells them."""
    from warehouse.catalog import catalog_errors

    with catalog_errors(home, "the query"):
        # As analysts read (the latest snapshot, found by the query itself) ...
        row = con.execute(WHOLE_NIGHTS).fetchone()
        if row and row[0]:
            counts["torn"] += 1  # an answer mixing snapshots (seen during compactions)
        # ... and pinned to the snapshot the connection attached: was it made of whole nights?
        pinned = con.execute("SELECT max(snapshot_id) FROM wh.snapshots()").fetchone()
        at = f" AT (VERSION => {int(pinned[0])})" if pinned else ""
        row = con.execute(
            WHOLE_NIGHTS.replace("FROM files", f"FROM files{at}").replace(
                "FROM runs", f"FROM runs{at}"
            )
        ).fetchone()
        counts["inconsistent" if row and row[0] else "whole"] += 1
        for query in ANALYSTS:
            con.execute(query).fetchall()
            counts["queries"] += 1


def _count_error(error: Exception, counts: Counter[str], errors: list[str]) -> None:
    """An error a reader met: the one sentence of an outage (the service is unavailable, run
    again) or anything else (a finding)."""
    from warehouse.outage import ServiceUnavailable

    text = f"{type(error).__name__}: {error}".splitlines()[0][:300]
    if isinstance(error, ServiceUnavailable):  # names the service, says to run again
        counts["unavailable"] += 1
    else:
        counts["errors"] += 1
        if len(errors) < 20:
            errors.append(text)


# --- entry point ------------------------------------------------------------------------


def soak(args: argparse.Namespace) -> Figures:
    """Run the soak; its figures."""
    started = time.monotonic()
    work = Path(args.work or tempfile.mkdtemp(prefix="wirehouse-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        run = Soak(args, work, stack)
        for k in range(args.steps):
            run.step(k)
            run.figures.answers_disturbed = run.remote.answers_disturbed
            # the figures so far, for a long soak stopped before its end
            (work / "figures.json").write_text(json.dumps(run.figures.as_dict(), indent=2))
            if args.progress:
                print(
                    f"step {k + 1}/{args.steps}: {sum(run.figures.faults.values())} faults, "
                    f"{len(run.figures.mismatches)} mismatches",
                    flush=True,
                )
        run.figures.readers = run.readers.close()
        run.figures.answers_disturbed = run.remote.answers_disturbed
    run.figures.seconds = time.monotonic() - started
    if not args.keep and not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return run.figures


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--steps", type=int, default=200, help="nights and operations")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--night-size", type=int, default=24, help="files delivered a night")
    parser.add_argument("--fault-share", type=float, default=0.8, help="steps with a fault")
    parser.add_argument("--faults", help="comma-separated fault kinds (default: all that apply)")
    parser.add_argument(
        "--faults-per-step", type=int, default=1, help="up to this many faults strike a step"
    )
    parser.add_argument("--lake", choices=("local", "postgres-s3"), default="local")
    parser.add_argument("--no-dask", dest="dask", action="store_false", help="parse here")
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument(
        "--reader-nice", type=int, default=0, help="the readers' niceness (0: as the steps')"
    )
    parser.add_argument("--retry-seconds", type=float, help="WIREHOUSE_RETRY_SECONDS for steps")
    parser.add_argument("--work", help="folder for the soak's files (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--progress", action="store_true", help="a line per step")
    parser.add_argument("--reader", help=argparse.SUPPRESS)
    parser.add_argument("--stop", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the soak and print its figures; exit 1 if anything did not hold."""
    args = _parser().parse_args(argv)
    if args.reader:
        read_until_stopped(Path(args.reader), Path(args.stop))
        return 0
    # Stopped (kill, Ctrl-C): its servers, cluster and readers are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for key, value in (("DO_NOT_TRACK", "1"), ("PREFECT_SERVER_ANALYTICS_ENABLED", "false")):
        os.environ.setdefault(key, value)
    figures = soak(args)
    found = figures.as_dict()
    if args.json:
        print(json.dumps(found, indent=2))
    else:
        print(render(found))
    failed = found["mismatches"] or found["failures_with_a_traceback"]
    return 1 if failed or found["readers"].get("errors") else 0


def render(found: dict[str, Any]) -> str:
    """The figures as a short report."""
    readers = found["readers"]
    lines = [
        f"soak: {sum(found['steps'].values())} steps in {found['seconds']} s: {found['steps']}",
        f"faults injected: {found['faults_total']}: {found['faults_injected']}",
        f"steps where faults struck together: {found['steps_with_faults_combined']}",
        f"object storage answers disturbed (within the s3 faults): {found['s3_answers_disturbed']}",
        "how each was survived:",
        *(f"  {k}: {n}" for k, n in found["how_survived"].items()),
        f"rows lost: {found['rows_lost']}, rows duplicated: {found['rows_duplicated']}",
        f"reader queries: {readers.get('queries')} (torn: an unpinned answer that mixed"
        " snapshots; inconsistent: a snapshot not made of whole nights)",
        f"reader errors: {readers.get('errors')}",
        f"failures with a traceback: {len(found['failures_with_a_traceback'])}",
        f"mismatches: {len(found['mismatches'])}",
        *(f"  {m}" for m in found["mismatches"][:20]),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
