"""Time `wirehouse ingest` on rendered inboxes of growing size: wall, flow, stages, memory, counts.

Each size is rendered once (bench/render.py), then ingested by the real command in a subprocess
with a fresh WIREHOUSE_HOME, and ingested again over the same inbox (which must be a no-op).
Wall time includes Prefect's start-up (process, ephemeral API server); the run report's
`seconds` is the flow alone. One more run per repeat goes to a Prefect server the bench keeps
running, as a scheduled night's does (`serve` or a worker, with the server operators watch):
its wall time has the command's imports but no server start. Peak RSS is measured per child
(os.wait4) and, by sampling /proc, for the whole process tree (the ingest and its Prefect
server).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.render import REPO, RenderSummary, render_inbox
from flows.server import ServerNotReady, TemporaryServer
from flows.settings import quiet_third_parties

STAGES = ("discover", "parse and validate", "dedupe", "load", "report")
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_SAMPLE_SECONDS = 0.2
_TAIL_LINES = 40
_SERVER_START_SECONDS = 120


@dataclass(slots=True)
class Child:
    """How one subprocess ran: exit code, wall time, peak memory, captured output."""

    returncode: int
    wall: float
    maxrss_mb: float  # the largest single process (the child or a descendant it reaped)
    tree_peak_mb: float  # the largest sampled sum over the child's process tree
    stdout: str
    stderr: str
    cpu: float = 0.0  # user and system seconds of the child and the descendants it reaped


@dataclass(slots=True)
class Ingest:
    """One `wirehouse ingest` run and its JSON report."""

    child: Child
    report: dict[str, Any]


@dataclass(slots=True)
class SizeResult:
    """Every run of one inbox size."""

    size: int
    render: RenderSummary
    first: list[Ingest] = field(default_factory=list)
    rerun: list[Ingest] = field(default_factory=list)
    served: list[Ingest] = field(default_factory=list)  # a Prefect server already running
    docs: Ingest | None = None


class IngestFailed(RuntimeError):
    """`wirehouse ingest` exited non-zero or wrote no report."""


def wirehouse_command() -> str:
    """The `wirehouse` script of the running environment (the repo's venv)."""
    beside = Path(sys.executable).parent / "wirehouse"
    found = str(beside) if beside.exists() else shutil.which("wirehouse")
    if not found:
        raise SystemExit("no `wirehouse` command: run from the project's venv")
    return found


def run_child(cmd: Sequence[str], env: dict[str, str], cwd: Path) -> Child:
    """Run a command, timing it and taking its own rusage (os.wait4) and its tree's peak RSS."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=err)
        sampler = _TreeSampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        sampler.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Child(
            returncode=proc.returncode,
            wall=wall,
            maxrss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
            tree_peak_mb=sampler.peak / 2**20,
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
            cpu=usage.ru_utime + usage.ru_stime,
        )


def ingest_env(
    home: Path,
    prefect_home: Path,
    docs: bool,
    pycache: Path | None = None,
    api_url: str | None = None,
) -> dict[str, str]:
    """The child's environment: a fresh warehouse home, no settle wait, docs on or off, and the
    API of a running Prefect server if given (else the command starts its own)."""
    env = _prefect_env(prefect_home, pycache)
    if api_url is not None:
        env["PREFECT_API_URL"] = api_url
    env.update(
        WIREHOUSE_HOME=str(home),
        WIREHOUSE_SETTLE_SECONDS="0",
        WIREHOUSE_BUILD_DOCS="1" if docs else "0",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
    )
    return env


def _prefect_env(prefect_home: Path, pycache: Path | None) -> dict[str, str]:
    """What every process the bench starts shares: Prefect's home, the bytecode cache, no API
    taken from the bench's own environment."""
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    if pycache is not None:
        # Without .pyc files every start compiles Prefect, GX, pandas and scipy anew (tens of
        # seconds); a production install has them. Cached in the bench's folder, not the venv.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env.update(PREFECT_HOME=str(prefect_home), DO_NOT_TRACK="1")
    return env


@dataclass(frozen=True, slots=True)
class Places:
    """What every run of one bench shares: Prefect's home, the bytecode cache, and the API of
    the Prefect server kept running for the `served` runs."""

    prefect_home: Path
    pycache: Path | None
    api_url: str | None = None


def ingest(
    inbox: Path,
    home: Path,
    places: Places,
    docs: bool = False,
    served: bool = False,
    extra_env: dict[str, str] | None = None,
) -> Ingest:
    """One `wirehouse ingest --inbox` run, sent to the bench's running Prefect server if
    `served`, with `extra_env` added; its report is the one new file in reports/."""
    api_url = places.api_url if served else None
    before = set((home / "reports").glob("*.json")) if (home / "reports").is_dir() else set()
    cmd = [wirehouse_command(), "ingest", "--inbox", str(inbox)]
    env = ingest_env(home, places.prefect_home, docs, places.pycache, api_url)
    env.update(extra_env or {})
    child = run_child(cmd, env, REPO)
    new = sorted(set((home / "reports").glob("*.json")) - before)
    if child.returncode != 0 or len(new) != 1:
        tail = "\n".join((child.stderr or child.stdout).splitlines()[-_TAIL_LINES:])
        raise IngestFailed(
            f"`{' '.join(cmd)}` exited {child.returncode} with {len(new)} new report(s); "
            f"stderr tail:\n{tail}"
        )
    return Ingest(child, _with_flow_seconds(json.loads(new[0].read_text()), new[0]))


def _with_flow_seconds(report: dict[str, Any], path: Path) -> dict[str, Any]:
    """The report, with `seconds` estimated from its start and file time where it lacks one."""
    if "seconds" not in report:
        started = datetime.fromisoformat(report["started_at"]).timestamp()
        report["seconds"] = round(path.stat().st_mtime - started, 3)
        report["seconds_estimated"] = True
    return report


def bench_size(
    size: int, work: Path, places: Places, args: argparse.Namespace, docs: bool
) -> SizeResult:
    """Render one size and ingest it `repeat` times (each with a re-run), plus a docs-on run."""
    inbox = work / f"inbox-{size}"
    rendered = render_inbox(inbox, size, args.seed, args.rescrape_share)
    _say(
        f"[{size:,}] rendered {rendered.dumps:,} dumps ({rendered.bytes / 2**20:.0f} MB) "
        f"in {rendered.seconds:.1f} s into {inbox}"
    )
    result = SizeResult(size, rendered)
    for k in range(args.repeat):
        home = work / f"home-{size}-{k}"
        result.first.append(ingest(inbox, home, places))
        _say(f"[{size:,}] run {k + 1}/{args.repeat}: {_brief(result.first[-1])}")
        result.rerun.append(ingest(inbox, home, places))
        _say(f"[{size:,}] re-run {k + 1}/{args.repeat}: {_brief(result.rerun[-1])}")
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
        if places.api_url is not None:
            home = work / f"home-{size}-{k}-served"
            result.served.append(ingest(inbox, home, places, served=True))
            _say(f"[{size:,}] server running {k + 1}/{args.repeat}: {_brief(result.served[-1])}")
            if not args.keep:
                shutil.rmtree(home, ignore_errors=True)
    if docs:
        home = work / f"home-{size}-docs"
        result.docs = ingest(inbox, home, places, docs=True)
        _say(f"[{size:,}] docs on: {_brief(result.docs)}")
    if not args.keep:
        shutil.rmtree(inbox, ignore_errors=True)
    return result


def check_counts(result: SizeResult) -> list[str]:
    """Where the runs' counts differ from what was rendered, or the re-run was not a no-op."""
    problems: list[str] = []
    expected = result.render.expected_counts()
    for run in [*result.first, *result.served]:
        got = run.report["counts"]
        for key in ("files", "quarantined"):
            if got.get(key) != expected[key]:
                problems.append(f"{result.size}: {key} = {got.get(key)}, expected {expected[key]}")
        # The BBC corpus holds near-identical stories besides its byte-identical pairs: the near
        # stage folds them (and their re-scrapes), so `near` copies may replace articles and
        # exact or same_page copies, one for one, and nothing else may change.
        near = int(got.get("duplicates_by_kind", {}).get("near", 0))
        articles, want_articles = int(got.get("articles", 0)), int(str(expected["articles"]))
        total = articles + int(got.get("duplicates", 0))
        want_total = want_articles + int(str(expected["duplicates"]))
        if total != want_total:
            problems.append(f"{result.size}: articles + duplicates {total}, expected {want_total}")
        if articles < want_articles - near:
            problems.append(
                f"{result.size}: articles {articles}, expected {want_articles} less {near} near"
            )
    for run in result.rerun:
        got = run.report["counts"]
        if got.get("files") or got.get("articles") or got.get("already_recorded") != result.size:
            problems.append(f"{result.size}: re-run was not a no-op: {_counts_line(got)}")
    return sorted(set(problems))


def figures(result: SizeResult) -> dict[str, Any]:
    """Median figures of one size, as printed and as written to --json."""
    first, rerun = result.first, result.rerun
    wall = _median(first, lambda r: r.child.wall)
    flow = _median(first, lambda r: float(r.report["seconds"]))
    out: dict[str, Any] = {
        "dumps": result.size,
        "megabytes": round(result.render.bytes / 2**20, 1),
        "runs": len(first),
        "wall_s": round(wall, 2),
        "flow_s": round(flow, 2),
        "startup_s": round(wall - flow, 2),
        "dumps_per_s_wall": round(result.size / wall, 1),
        "dumps_per_s_flow": round(result.size / flow, 1),
        "stage_s": {s: round(_median(first, lambda r, s=s: _stage(r, s)), 2) for s in STAGES},
        "unstaged_s": round(_median(first, _unstaged), 2),
        "flow_s_estimated": any(r.report.get("seconds_estimated") for r in first),
        "maxrss_mb": round(_median(first, lambda r: r.child.maxrss_mb), 1),
        "tree_peak_mb": round(_median(first, lambda r: r.child.tree_peak_mb), 1),
        "rerun_wall_s": round(_median(rerun, lambda r: r.child.wall), 2),
        "rerun_flow_s": round(_median(rerun, lambda r: float(r.report["seconds"])), 2),
        "rerun_stage_s": {s: round(_median(rerun, lambda r, s=s: _stage(r, s)), 2) for s in STAGES},
        "counts": {
            k: first[-1].report["counts"].get(k)
            for k in (
                "files",
                "articles",
                "duplicates",
                "quarantined",
                "duplicates_by_kind",
                "quarantined_by_reason",
            )
        },
        "expected_counts": result.render.expected_counts(),
    }
    if result.served:
        served_wall = _median(result.served, lambda r: r.child.wall)
        out["server_running"] = {
            "wall_s": round(served_wall, 2),
            "flow_s": round(_median(result.served, lambda r: float(r.report["seconds"])), 2),
            "dumps_per_s_wall": round(result.size / served_wall, 1),
        }
    if result.docs is not None:
        out["docs_on"] = {
            "wall_s": round(result.docs.child.wall, 2),
            "flow_s": round(float(result.docs.report["seconds"]), 2),
            "stage_s": {s: round(_stage(result.docs, s), 2) for s in STAGES},
            "maxrss_mb": round(result.docs.child.maxrss_mb, 1),
        }
    return out


def print_table(rows: list[dict[str, Any]], baseline: Child | None) -> None:
    """A plain table: one column per size."""
    lines: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("dumps", lambda f: f"{f['dumps']:,}"),
        ("inbox MB", lambda f: f"{f['megabytes']:,.0f}"),
        ("runs (median of)", lambda f: str(f["runs"])),
        ("wall s (whole command)", lambda f: f"{f['wall_s']:.2f}"),
        ("flow s (report)", lambda f: f"{f['flow_s']:.2f}{'~' * f['flow_s_estimated']}"),
        ("start-up s (wall - flow)", lambda f: f"{f['startup_s']:.2f}"),
        ("dumps/s (wall)", lambda f: f"{f['dumps_per_s_wall']:,.0f}"),
        ("dumps/s (flow)", lambda f: f"{f['dumps_per_s_flow']:,.0f}"),
        *((f"  {s} s", lambda f, s=s: _num(f["stage_s"][s])) for s in STAGES),
        ("  outside stages s", lambda f: f"{f['unstaged_s']:.2f}"),
        ("peak RSS MB (largest process)", lambda f: f"{f['maxrss_mb']:,.0f}"),
        ("peak RSS MB (process tree)", lambda f: f"{f['tree_peak_mb']:,.0f}"),
        ("re-run wall s", lambda f: f"{f['rerun_wall_s']:.2f}"),
        ("re-run flow s", lambda f: f"{f['rerun_flow_s']:.2f}"),
        ("articles", lambda f: f"{f['counts']['articles']:,}"),
        ("duplicates", lambda f: f"{f['counts']['duplicates']:,}"),
        ("  by kind", lambda f: _kinds(f["counts"]["duplicates_by_kind"])),
        ("quarantined", lambda f: f"{f['counts']['quarantined']:,}"),
        ("  by reason", lambda f: _kinds(f["counts"]["quarantined_by_reason"]) or "-"),
        ("server running: wall s / flow s", _served),
        ("server running: dumps/s (wall)", lambda f: _served(f, "dumps_per_s_wall")),
        ("docs on: wall s / flow s", lambda f: _docs(f)),
        ("docs on: parse and validate s", lambda f: _docs(f, "parse and validate")),
    ]
    width = max(len(name) for name, _ in lines) + 2
    cells = [[render(f) for f in rows] for _, render in lines]
    col = max([len(c) for row in cells for c in row] + [10]) + 2
    print()
    for (name, _), row in zip(lines, cells, strict=True):
        print(name.ljust(width) + "".join(c.rjust(col) for c in row))
    if any(f["flow_s_estimated"] for f in rows):
        print("~ the report has no `seconds`: flow time is its file's mtime minus started_at")
    if baseline is not None:
        print(
            f"\nempty-inbox ingest (Prefect start-up and teardown alone): {baseline.wall:.2f} s "
            f"wall, {baseline.maxrss_mb:,.0f} MB peak RSS"
        )
    if len(rows) > 1:
        small, large = rows[0], rows[-1]
        growth = large["maxrss_mb"] / small["maxrss_mb"]
        scale = large["dumps"] / small["dumps"]
        verdict = "flat" if growth < 1.5 else "NOT flat"
        print(f"memory: x{growth:.2f} peak RSS for x{scale:.0f} dumps ({verdict})")
    rates = margin(rows)
    if rates:
        small, large = rows[0]["dumps"], rows[-1]["dumps"]
        said = ", ".join(f"{rate:,.0f} dumps/s {how}" for how, rate in rates.items())
        print(
            f"throughput past the fixed start-up ({large - small:,} more dumps, {small:,} to "
            f"{large:,}): {said}"
        )


def margin(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Dumps per second of the extra dumps between the smallest and largest size: the night's
    throughput once it runs, without its fixed start-up (Prefect, imports, a server)."""
    if len(rows) < 2:
        return {}
    small, large = rows[0], rows[-1]
    extra = large["dumps"] - small["dumps"]
    seconds = {
        "wall": large["wall_s"] - small["wall_s"],
        "flow": large["flow_s"] - small["flow_s"],
    }
    if "server_running" in small and "server_running" in large:
        seconds["wall, server running"] = (
            large["server_running"]["wall_s"] - small["server_running"]["wall_s"]
        )
    return {how: round(extra / s, 1) for how, s in seconds.items() if s > 0}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: render, ingest, re-ingest each size; print the table."""
    args = _parser().parse_args(argv)
    quiet_third_parties()  # for the bench's Prefect server too (the commands set their own)
    sizes = sorted(int(s) for s in args.sizes.split(",") if s.strip())
    work = Path(tempfile.mkdtemp(prefix="wirehouse-bench-"))
    places = Places(work / "prefect-home", work / "pycache" if args.bytecode_cache else None)
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    server: TemporaryServer | None = None
    try:
        # A throw-away run creates Prefect's database (and the bytecode cache), so the measured
        # runs do not pay for them.
        (work / "empty").mkdir()
        warmup = ingest(work / "empty", work / "home-warmup", places).child
        _say(f"warm-up (empty inbox, cold caches): {warmup.wall:.1f} s wall")
        baseline = ingest(work / "empty", work / "home-empty", places).child
        server = running_server(places)
        places = replace(places, api_url=server.api_url)
        for size in sizes:
            result = bench_size(size, work, places, args, args.docs and size == sizes[-1])
            rows.append(figures(result))
            problems += check_counts(result)
    except IngestFailed as error:
        print(f"ingest failed: {error}", file=sys.stderr)
        return 1
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            print(f"kept inboxes and homes under {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print_table(rows, baseline)
    cache = "on (PYTHONPYCACHEPREFIX in the bench folder)" if args.bytecode_cache else "off"
    print(f"bytecode cache for the children: {cache}")
    for problem in problems:
        print(f"WARNING: {problem}")
    if args.json:
        document = _without_nan({"sizes": rows, "margin": margin(rows), "problems": problems})
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


def running_server(places: Places) -> TemporaryServer:
    """A Prefect API server on Prefect's home of the bench, answering (stopped at exit)."""
    server = TemporaryServer(_prefect_env(places.prefect_home, places.pycache)).start()
    try:
        server.wait_until_ready(_SERVER_START_SECONDS)
    except ServerNotReady as error:
        server.stop()
        raise IngestFailed(f"the bench's Prefect server: {error}") from error
    _say(f"Prefect server running for the `served` runs: {server.api_url}")
    return server


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", default="20000,60000", help="comma-separated dump counts")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size; medians are shown")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rescrape-share", type=float, default=0.1)
    parser.add_argument(
        "--no-docs",
        dest="docs",
        action="store_false",
        help="skip the extra run with Data Docs on for the largest size",
    )
    parser.add_argument(
        "--no-bytecode-cache",
        dest="bytecode_cache",
        action="store_false",
        help="pass PYTHONDONTWRITEBYTECODE through (children compile every import)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the inboxes and homes")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser


class _TreeSampler:
    """Samples the summed RSS of a process and its descendants from /proc, keeping the peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        """Begin sampling in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling and wait for the thread."""
        self._done.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, _tree_rss(self.pid))
            self._done.wait(_SAMPLE_SECONDS)


def _tree_rss(root: int) -> int:
    """Bytes resident in a process and all its descendants (0 where /proc is missing)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rpartition(")")[2].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        stack += children.get(pid, [])
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


def _median(runs: list[Ingest], value: Callable[[Ingest], float]) -> float:
    return statistics.median(value(r) for r in runs)


def _stage(run: Ingest, stage: str) -> float:
    """A stage's seconds, or NaN when the report does not give it."""
    return float(run.report.get("stage_seconds", {}).get(stage, math.nan))


def _unstaged(run: Ingest) -> float:
    """Flow seconds outside the timed stages (bookkeeping between them, teardown)."""
    stages = run.report.get("stage_seconds", {})
    return float(run.report["seconds"]) - sum(float(v) for v in stages.values())


def _without_nan(value: Any) -> Any:
    """The value with NaN (a stage the report lacks) made null, for strict JSON."""
    if isinstance(value, dict):
        return {k: _without_nan(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _num(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def _kinds(by: dict[str, int] | None) -> str:
    return " ".join(f"{k}={v:,}" for k, v in (by or {}).items())


def _docs(f: dict[str, Any], stage: str | None = None) -> str:
    docs = f.get("docs_on")
    if docs is None:
        return "-"
    if stage is not None:
        return _num(docs["stage_s"][stage])
    return f"{docs['wall_s']:.1f} / {docs['flow_s']:.1f}"


def _served(f: dict[str, Any], figure: str | None = None) -> str:
    """The runs with a Prefect server already running: wall / flow, or one figure."""
    served = f.get("server_running")
    if served is None:
        return "-"
    if figure is not None:
        return f"{served[figure]:,.0f}"
    return f"{served['wall_s']:.2f} / {served['flow_s']:.2f}"


def _brief(run: Ingest) -> str:
    return (
        f"wall {run.child.wall:.1f} s, flow {run.report['seconds']:.1f} s, "
        f"{run.child.maxrss_mb:,.0f} MB; {_counts_line(run.report['counts'])}"
    )


def _counts_line(counts: dict[str, Any]) -> str:
    return (
        f"files {counts.get('files')}, articles {counts.get('articles')}, duplicates "
        f"{counts.get('duplicates')} ({_kinds(counts.get('duplicates_by_kind'))}), "
        f"quarantined {counts.get('quarantined')}, already recorded "
        f"{counts.get('already_recorded')}"
    )


def _say(message: str) -> None:
    print(message, flush=True)


if __name__ == "__main__":
    sys.exit(main())
