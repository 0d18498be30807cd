"""The floor and the embedded night (issue 14): how close a night comes to our parsing alone.

- The floor: the same dumps read, decoded, parsed and signed by `transforms.batch.parse_dumps`
  in one spawned process per core and nothing else. Each worker reads its share of the inbox
  from disk itself (in the page cache: the inbox was just written), in slices of about
  `flows.worker.SLICE_BYTES`, and sends back counts only. Timed from the moment every worker
  has imported and warmed up (a first slice parsed) until the last one is done; no hashing,
  no archive, no staging, no validation, no Prefect.
- The embedded night, past its fixed start-up: the whole `wirehouse ingest` command, sent to a
  Prefect server that is already running on a Prefect home already set up (a nightly job's
  case), in a fresh warehouse home, for a 20,000 and a 60,000-dump inbox: the extra 40,000
  dumps over the extra seconds. Its fixed start-up is t(20,000) less 20,000 at that rate, and is
  also measured directly: a night with nothing new, in a warehouse home that a night of a few
  dumps set up (each night runs in a copy of that home).
- The first night on a new Prefect home: the night with nothing new by the standalone command
  (its own temporary server), on a Prefect home never used, then on the one set up.

Runs are alternated (floor, 20,000, 60,000, nothing new; then again) and medians printed.

`--parts cluster` (not in `make bench`: 13 minutes for 2 rounds here) starts a scheduler and two
single-threaded workers first, as an operator's cluster would be running, then alternates the
60,000-dump night embedded and on the cluster (`cluster_night`: `WIREHOUSE_DASK_SCHEDULER` set):
the ratio, CPU per dump on each side, and what the cluster costs per batch.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.dask_local import DaskCluster, dask_cluster_of
from bench.render import render_inbox
from bench.run import IngestFailed, Places, ingest, running_server
from flows.server import TemporaryServer
from flows.settings import DEFAULT_PARSE_PROCESSES, quiet_third_parties
from flows.worker import SLICE_BYTES
from transforms.night import Dump, Lineage

SMALL, LARGE, FEW = 20_000, 60_000, 10
CLUSTER_WORKERS = 2
IDLE_SECONDS = 20
# Dumps each worker parses before the clock starts: imports, caches and code paths warmed.
_WARM_DUMPS = 50


@dataclass(slots=True)
class Sitting:
    """Every timed run of one bench sitting, in seconds (per run, in run order)."""

    floor: list[float] = field(default_factory=list)
    floor_cpu: list[float] = field(default_factory=list)  # CPU seconds of the workers
    floor_dumps: int = 0
    small: list[float] = field(default_factory=list)
    large: list[float] = field(default_factory=list)
    nothing_new: list[float] = field(default_factory=list)
    small_cpu: list[float] = field(default_factory=list)  # the command's tree, its workers in
    large_cpu: list[float] = field(default_factory=list)
    small_server_cpu: list[float] = field(default_factory=list)  # the running Prefect server's
    large_server_cpu: list[float] = field(default_factory=list)
    large_stages: list[dict[str, float]] = field(default_factory=list)
    large_flow: list[float] = field(default_factory=list)
    new_prefect_home: list[float] = field(default_factory=list)
    set_up_prefect_home: list[float] = field(default_factory=list)
    cluster: list[float] = field(default_factory=list)
    embedded_runs: list[NightRun] = field(default_factory=list)  # the cluster comparison's
    cluster_runs: list[NightRun] = field(default_factory=list)
    cluster_idle_cpu: float = 0.0  # CPU seconds a second of the idle cluster's processes


def floor(inbox: Path, processes: int = DEFAULT_PARSE_PROCESSES) -> tuple[float, float, int]:
    """Seconds for `processes` spawned workers to read, decode, parse and sign every dump of
    the inbox (warm-up excluded), the CPU seconds they spent on it, and how many dumps."""
    paths = sorted(str(p) for p in inbox.rglob("*.txt"))
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(processes + 1)
    done = context.Queue()
    workers = [
        context.Process(target=_floor_worker, args=(paths[k::processes], str(inbox), ready, done))
        for k in range(processes)
    ]
    for worker in workers:
        worker.start()
    ready.wait()  # every worker imported and warmed up
    start = time.perf_counter()
    counts, cpus = zip(*(done.get() for _ in workers), strict=True)
    seconds = time.perf_counter() - start
    for worker in workers:
        worker.join()
    if sum(counts) != len(paths):
        raise RuntimeError(f"the floor's workers parsed {sum(counts)} of {len(paths)} dumps")
    return seconds, sum(cpus), len(paths)


def _floor_worker(paths: list[str], inbox: str, ready: Any, done: Any) -> None:
    """One core's share: read, decode, parse and sign in slices; put the dumps done and the
    CPU seconds spent past the warm-up."""
    from transforms.batch import parse_dumps

    lineage = Lineage("floor", datetime.now(UTC))
    warm, paths = paths[:_WARM_DUMPS], paths[_WARM_DUMPS:]
    parse_dumps([_read(p, inbox) for p in warm], lineage)
    ready.wait()
    cpu = time.process_time()
    count, pending, held = len(warm), [], 0
    for path in paths:
        pending.append(_read(path, inbox))
        held += pending[-1][0].bytes
        if held >= SLICE_BYTES:
            count += _parsed(parse_dumps(pending, lineage))
            pending, held = [], 0
    count += _parsed(parse_dumps(pending, lineage))
    done.put((count, time.process_time() - cpu))


def _read(path: str, inbox: str) -> tuple[Dump, bytes]:
    """A dump's bytes and its record as discovery would make it (no content hash)."""
    with open(path, "rb") as f:
        data = f.read()
        mtime = os.fstat(f.fileno()).st_mtime
    return Dump(os.path.relpath(path, inbox), "", len(data), mtime), data


def _parsed(result: Any) -> int:
    """Dumps accounted for by one `parse_dumps` result: articles and rejections."""
    return len(result.articles) + len(result.rejected)


def night(inbox: Path, home: Path, places: Places, extra_env: dict[str, str] | None = None) -> Any:
    """The whole `wirehouse ingest` command, sent to the bench's running Prefect server, into a
    copy of the set-up warehouse home (removed after)."""
    copy = home.with_name(f"{home.name}-night")
    shutil.copytree(home, copy, symlinks=True)
    try:
        return ingest(inbox, copy, places, served=True, extra_env=extra_env)
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def cluster_night(scene: Scene, scheduler: str) -> Any:
    """The 60,000-dump night with its CPU sent to the Dask scheduler at `scheduler`
    (tcp://host:port), as `night_round` runs it embedded."""
    return night(
        scene.inboxes[LARGE],
        scene.home,
        scene.places,
        {"WIREHOUSE_DASK_SCHEDULER": scheduler},
    )


@dataclass(frozen=True, slots=True)
class NightRun:
    """One 60,000-dump night of the cluster comparison: wall and CPU seconds, where the CPU
    went, the report's stage seconds, how many parse batches, the load average before it."""

    wall: float
    command_cpu: float  # the command and the processes it reaped (the embedded pool's workers)
    cluster_cpu: float  # the Dask workers' and scheduler's processes (0 for the embedded night)
    flow: float
    stages: dict[str, float]
    batches: int
    load: float


def compared_night(scene: Scene, cluster: DaskCluster | None) -> NightRun:
    """The 60,000-dump night, embedded (`cluster` None) or on the running cluster."""
    pids = [p.pid for p in cluster.processes.values()] if cluster is not None else []
    load = os.getloadavg()[0]
    before = sum(_pid_cpu_seconds(pid) for pid in pids)
    if cluster is None:
        run = night(scene.inboxes[LARGE], scene.home, scene.places)
    else:
        run = cluster_night(scene, cluster.address)
    output = run.child.stdout + run.child.stderr
    return NightRun(
        wall=run.child.wall,
        command_cpu=run.child.cpu,
        cluster_cpu=sum(_pid_cpu_seconds(pid) for pid in pids) - before,
        flow=float(run.report["seconds"]),
        stages=run.report.get("stage_seconds", {}),
        batches=len(_PARSED_LINE.findall(output)),
        load=load,
    )


# The batch task's log line, once per batch ("worked 5000 dumps (x ...) on worker-1 (...)").
_PARSED_LINE = re.compile(r"worked \d+ dumps \(.*?\) on ")


def idle_cpu(cluster: DaskCluster, seconds: float = IDLE_SECONDS) -> float:
    """CPU seconds a second the scheduler and workers spend while no night runs (heartbeats,
    the event loops): part of what a cluster night's processes are charged."""
    pids = [p.pid for p in cluster.processes.values()]
    before = sum(_pid_cpu_seconds(pid) for pid in pids)
    time.sleep(seconds)
    return (sum(_pid_cpu_seconds(pid) for pid in pids) - before) / seconds


def cluster_rounds(scene: Scene, cluster: DaskCluster, sitting: Sitting, repeat: int) -> None:
    """The 60,000-dump night embedded and on the cluster, alternated, which goes first
    swapped every round (the machine's load drifts)."""
    for k in range(repeat):
        order = (None, cluster) if k % 2 == 0 else (cluster, None)
        for where in order:
            run = compared_night(scene, where)
            (sitting.embedded_runs if where is None else sitting.cluster_runs).append(run)
            sitting.cluster.extend([run.wall] if where is not None else [])
        e, c = sitting.embedded_runs[-1], sitting.cluster_runs[-1]
        _say(
            f"round {k + 1}/{repeat}: embedded {e.wall:.2f} s (load {e.load:.1f}), "
            f"cluster {c.wall:.2f} s (load {c.load:.1f}), batches {e.batches} and {c.batches}"
        )


@dataclass(frozen=True, slots=True)
class Scene:
    """What the rounds share: the inboxes, a warehouse home set up by a first night of a few
    dumps, and the Prefect home and running server of the served nights."""

    work: Path
    inboxes: dict[int, Path]
    home: Path
    places: Places


def set_up(work: Path, sizes: Sequence[int] = (SMALL, LARGE, FEW)) -> tuple[Scene, TemporaryServer]:
    """Render the inboxes, set up Prefect's home, start its server, set up a warehouse home."""
    inboxes = {}
    for size in sizes:
        inboxes[size] = work / f"inbox-{size}"
        # The few dumps of the set-up home get other names than the nights' (another seed):
        # a later night bringing other bytes under a recorded name fails the night on the
        # warehouse's one-place-per-dump check (seen while building this bench).
        rendered = render_inbox(inboxes[size], size, seed=1 if size == FEW else 0)
        _say(f"rendered {size:,} dumps ({rendered.bytes / 2**20:.0f} MB) in {rendered.seconds} s")
    places = Places(work / "prefect-home", work / "pycache")
    warm = ingest(inboxes[FEW], work / "home-warm-up", places).child.wall
    _say(f"warm-up (sets up the Prefect home and the bytecode cache): {warm:.1f} s")
    server = running_server(places)
    places = replace(places, api_url=server.api_url)
    home = work / "home"
    first = ingest(inboxes[FEW], home, places, served=True).child.wall
    _say(f"a warehouse home set up by a night of {FEW} dumps: {first:.1f} s")
    return Scene(work, inboxes, home, places), server


def night_round(scene: Scene, server: TemporaryServer, sitting: Sitting) -> None:
    """One round: the floor, then the served nights of 20,000, 60,000 and nothing new."""
    seconds, cpu, sitting.floor_dumps = floor(scene.inboxes[LARGE])
    sitting.floor.append(seconds)
    sitting.floor_cpu.append(cpu)
    for size, walls, cpus, server_cpus in (
        (SMALL, sitting.small, sitting.small_cpu, sitting.small_server_cpu),
        (LARGE, sitting.large, sitting.large_cpu, sitting.large_server_cpu),
    ):
        before = _cpu_seconds(server)
        run = night(scene.inboxes[size], scene.home, scene.places)
        server_cpus.append(_cpu_seconds(server) - before)
        walls.append(run.child.wall)
        cpus.append(run.child.cpu)
    sitting.large_flow.append(float(run.report["seconds"]))
    sitting.large_stages.append(run.report.get("stage_seconds", {}))
    sitting.nothing_new.append(night(scene.inboxes[FEW], scene.home, scene.places).child.wall)


def first_night_pair(scene: Scene, sitting: Sitting, k: int) -> None:
    """The standalone command (its own temporary server) over nothing new, on a Prefect home
    never used, then on the set-up one."""
    for prefect_home, walls in (
        (scene.work / f"prefect-home-new-{k}", sitting.new_prefect_home),
        (scene.places.prefect_home, sitting.set_up_prefect_home),
    ):
        places = Places(prefect_home, scene.places.pycache)
        copy = scene.home.with_name("home-first")
        shutil.copytree(scene.home, copy, symlinks=True)
        try:
            walls.append(ingest(scene.inboxes[FEW], copy, places).child.wall)
        finally:
            shutil.rmtree(copy, ignore_errors=True)
    shutil.rmtree(scene.work / f"prefect-home-new-{k}", ignore_errors=True)


def measure(work: Path, repeat: int, parts: str, cluster: str | None) -> Sitting:
    """Set up, then alternate the floor and the nights `repeat` times, then the first nights;
    or (`parts` "cluster") alternate the 60,000 night embedded and on a two-worker cluster."""
    if parts == "cluster":
        return _measure_cluster(work, repeat)
    scene, server = set_up(work)
    sitting = Sitting()
    try:
        for k in range(repeat if parts in ("all", "night") else 0):
            night_round(scene, server, sitting)
            if cluster is not None:
                sitting.cluster.append(cluster_night(scene, cluster).child.wall)
            _say(f"round {k + 1}/{repeat}: {_round_line(sitting, k)}")
    finally:
        server.stop()
    for k in range(repeat if parts in ("all", "first") else 0):
        first_night_pair(scene, sitting, k)
        _say(
            f"first night {k + 1}/{repeat}: new Prefect home {sitting.new_prefect_home[-1]:.2f} s,"
            f" set up {sitting.set_up_prefect_home[-1]:.2f} s"
        )
    return sitting


def _measure_cluster(work: Path, repeat: int) -> Sitting:
    """A scheduler and two single-threaded workers started first (an operator's cluster is
    running before the night), then the alternated 60,000-dump nights."""
    scene, server = set_up(work, (LARGE, FEW))
    sitting = Sitting()
    try:
        with dask_cluster_of(work / "dask", workers=CLUSTER_WORKERS) as cluster:
            _say(f"cluster: scheduler {cluster.address}, {CLUSTER_WORKERS} workers of one thread")
            sitting.cluster_idle_cpu = idle_cpu(cluster)
            _say(f"the idle cluster's processes: {sitting.cluster_idle_cpu:.3f} CPU s a second")
            cluster_rounds(scene, cluster, sitting, repeat)
    finally:
        server.stop()
    return sitting


def _cpu_seconds(server: TemporaryServer) -> float:
    """User and system seconds the server's process has used so far (Linux /proc)."""
    assert server.process is not None
    return _pid_cpu_seconds(server.process.pid)


def _pid_cpu_seconds(pid: int) -> float:
    """User and system seconds one process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def figures(sitting: Sitting) -> dict[str, Any]:
    """Medians and what follows from them: rates, ratio, start-up, CPU, first-night cost."""
    out: dict[str, Any] = {"runs": len(sitting.floor) or len(sitting.new_prefect_home)}
    if sitting.floor:
        out.update(_night_figures(sitting))
    if sitting.new_prefect_home:
        out["first_night_new_prefect_home_s"] = _median(sitting.new_prefect_home)
        out["first_night_set_up_prefect_home_s"] = _median(sitting.set_up_prefect_home)
    if sitting.cluster_runs:
        out.update(_cluster_figures(sitting))
    elif sitting.cluster:
        out["cluster_60k_s"] = _median(sitting.cluster)
        out["cluster_ratio"] = round(out["night_60k_s"] / out["cluster_60k_s"], 3)
    out["all"] = {k: [round(v, 2) for v in getattr(sitting, k)] for k in _SERIES}
    return out


def _cluster_figures(sitting: Sitting) -> dict[str, Any]:
    """The cluster against the embedded night: walls, the ratio, CPU per dump on each side,
    stages, and the parse-and-validate stage's extra seconds per batch on the cluster."""
    out: dict[str, Any] = {"runs": len(sitting.cluster_runs)}
    for name, runs in (("embedded", sitting.embedded_runs), ("cluster", sitting.cluster_runs)):
        stages = sorted({s for run in runs for s in run.stages})
        out[name] = {
            "wall_s": _median([r.wall for r in runs]),
            "flow_s": _median([r.flow for r in runs]),
            "command_cpu_ms_per_dump": _ms_per_dump([r.command_cpu for r in runs]),
            "cluster_cpu_ms_per_dump": _ms_per_dump([r.cluster_cpu for r in runs]),
            "stage_s": {s: _median([r.stages.get(s, 0.0) for r in runs]) for s in stages},
            "batches": sorted({r.batches for r in runs}),
            "load": [round(r.load, 1) for r in runs],
            "walls": [round(r.wall, 2) for r in runs],
            "command_cpu_s": [round(r.command_cpu, 2) for r in runs],
            "cluster_cpu_s": [round(r.cluster_cpu, 2) for r in runs],
        }
    embedded, cluster = out["embedded"], out["cluster"]
    out["cluster_60k_s"] = cluster["wall_s"]
    out["cluster_over_embedded"] = round(cluster["wall_s"] / embedded["wall_s"], 3)
    batches = max(cluster["batches"])
    extra = cluster["stage_s"]["parse and validate"] - embedded["stage_s"]["parse and validate"]
    out["cluster_extra_s_per_batch"] = round(extra / batches, 3) if batches else None
    cpu = {
        name: statistics.median(r.command_cpu + r.cluster_cpu for r in runs)
        for name, runs in (("embedded", sitting.embedded_runs), ("cluster", sitting.cluster_runs))
    }
    extra_cpu = cpu["cluster"] - cpu["embedded"]
    out["cluster_extra_cpu_s_per_batch"] = round(extra_cpu / batches, 3) if batches else None
    out["cluster_idle_cpu_s_per_s"] = round(sitting.cluster_idle_cpu, 4)
    return out


def _ms_per_dump(seconds: list[float]) -> float:
    return round(1000 * statistics.median(seconds) / LARGE, 3)


def _night_figures(sitting: Sitting) -> dict[str, Any]:
    med = statistics.median
    floor_rate = sitting.floor_dumps / med(sitting.floor)
    extra = LARGE - SMALL
    rate = extra / (med(sitting.large) - med(sitting.small))
    stages = sorted({s for st in sitting.large_stages for s in st})
    return {
        "floor_s": _median(sitting.floor),
        "floor_dumps_per_s": round(floor_rate),
        "night_20k_s": _median(sitting.small),
        "night_60k_s": _median(sitting.large),
        "night_dumps_per_s": round(rate),
        "ratio": round(rate / floor_rate, 3),
        "startup_extrapolated_s": round(med(sitting.small) - SMALL / rate, 2),
        "night_nothing_new_s": _median(sitting.nothing_new),
        "floor_cpu_ms_per_dump": round(1000 * med(sitting.floor_cpu) / sitting.floor_dumps, 3),
        "night_cpu_ms_per_dump": round(
            1000 * (med(sitting.large_cpu) - med(sitting.small_cpu)) / extra, 3
        ),
        "server_cpu_ms_per_dump": round(
            1000 * (med(sitting.large_server_cpu) - med(sitting.small_server_cpu)) / extra, 3
        ),
        "night_60k_flow_s": _median(sitting.large_flow),
        "night_60k_stage_s": {
            s: round(med(st.get(s, 0.0) for st in sitting.large_stages), 2) for s in stages
        },
    }


_SERIES = (
    "floor",
    "floor_cpu",
    "small",
    "small_cpu",
    "small_server_cpu",
    "large",
    "large_cpu",
    "large_server_cpu",
    "large_flow",
    "nothing_new",
    "cluster",
    "new_prefect_home",
    "set_up_prefect_home",
)


def print_figures(f: dict[str, Any]) -> None:
    """The figures as lines, the ratio and the issue's aims beside them."""
    print(f"\nmedians of {f['runs']} alternated runs ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")
    if "floor_s" in f:
        _print_nights(f)
    if "first_night_new_prefect_home_s" in f:
        print(
            f"first night on a Prefect home, standalone command, nothing new: "
            f"{f['first_night_new_prefect_home_s']} s on a new one, "
            f"{f['first_night_set_up_prefect_home_s']} s on one set up"
        )
    if "embedded" in f:
        _print_cluster(f)
    elif "cluster_60k_s" in f:
        print(
            f"cluster: {LARGE:,} in {f['cluster_60k_s']} s "
            f"(the embedded night takes {f['cluster_ratio']}x that)"
        )
    for name, values in f["all"].items():
        if values:
            print(f"  all {name}: {values}")


def _print_cluster(f: dict[str, Any]) -> None:
    for name in ("embedded", "cluster"):
        g = f[name]
        stages = ", ".join(f"{s} {v}" for s, v in g["stage_s"].items())
        print(
            f"{name}: {LARGE:,} dumps, whole command {g['wall_s']} s (runs {g['walls']}, load "
            f"{g['load']}), flow {g['flow_s']} s, batches {g['batches']}; CPU per dump: "
            f"command {g['command_cpu_ms_per_dump']} ms (runs {g['command_cpu_s']} s), Dask "
            f"workers and scheduler {g['cluster_cpu_ms_per_dump']} ms (runs "
            f"{g['cluster_cpu_s']} s); stages (s): {stages}"
        )
    print(
        f"ratio cluster/embedded, whole command: {f['cluster_over_embedded']} "
        f"({CLUSTER_WORKERS} single-threaded workers on this machine)"
    )
    print(
        f"the cluster's cost per batch (parse and validate, cluster less embedded, over the "
        f"cluster's batches): {f['cluster_extra_s_per_batch']} s of wall, "
        f"{f['cluster_extra_cpu_s_per_batch']} s of CPU (every process of each night)"
    )


def _print_nights(f: dict[str, Any]) -> None:
    print(f"floor: {f['floor_dumps_per_s']:,} dumps/s ({LARGE:,} dumps in {f['floor_s']} s)")
    print(
        f"embedded night, whole command, Prefect server running: {SMALL:,} in "
        f"{f['night_20k_s']} s, {LARGE:,} in {f['night_60k_s']} s"
    )
    print(f"  past the fixed start-up: {f['night_dumps_per_s']:,} dumps/s")
    print(f"  ratio to the floor: {f['ratio']:.0%} (aim: at least 60%)")
    print(
        f"  fixed start-up: {f['startup_extrapolated_s']} s extrapolated to 0 dumps, "
        f"{f['night_nothing_new_s']} s for a night with nothing new (aim: at most 2 s)"
    )
    print(
        f"  CPU per dump: floor {f['floor_cpu_ms_per_dump']} ms; night past the start-up "
        f"{f['night_cpu_ms_per_dump']} ms in the command (its workers included), "
        f"{f['server_cpu_ms_per_dump']} ms in the Prefect server"
    )
    stages = ", ".join(f"{s} {v}" for s, v in f["night_60k_stage_s"].items())
    print(f"  {LARGE:,}-dump night: flow {f['night_60k_flow_s']} s; stages (s): {stages}")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: measure one sitting, print the figures (and write them as JSON)."""
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="alternated rounds; medians shown")
    parser.add_argument(
        "--parts",
        choices=("all", "night", "first", "cluster"),
        default="all",
        help="what to measure (cluster: the 60,000 night embedded and on a local two-worker "
        "Dask cluster, alternated)",
    )
    parser.add_argument("--dask-scheduler", help="also run the 60,000 night on this cluster")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the inboxes and homes")
    args = parser.parse_args(argv)
    quiet_third_parties()
    work = Path(tempfile.mkdtemp(prefix="wirehouse-floor-"))
    try:
        sitting = measure(work, args.repeat, args.parts, args.dask_scheduler)
    except IngestFailed as error:
        print(f"ingest failed: {error}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    result = figures(sitting)
    print_figures(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def _round_line(sitting: Sitting, k: int) -> str:
    line = (
        f"floor {sitting.floor[k]:.2f} s, night {SMALL:,} {sitting.small[k]:.2f} s, "
        f"{LARGE:,} {sitting.large[k]:.2f} s, nothing new {sitting.nothing_new[k]:.2f} s"
    )
    return line + (f", cluster {sitting.cluster[k]:.2f} s" if sitting.cluster else "")


def _say(message: str) -> None:
    print(message, flush=True)


if __name__ == "__main__":
    sys.exit(main())
