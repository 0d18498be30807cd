"""The floor and the embedded night (issue 14): how close a night comes to our parsing alone.

- The floor: the same dumps read, decoded, parsed and signed by `transforms.batch.parse_dumps`
  in one spawned process per core and nothing else. Each worker reads its share of the inbox
  from disk itself (in the page cache: the inbox was just written), in slices of about
  `flows.workers.SLICE_BYTES`, and sends back counts only. Timed from the moment every worker
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
`cluster_night` runs the 60,000-dump night with `WIREHOUSE_DASK_SCHEDULER` set, for the
two-worker cluster comparison.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
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

from bench.render import render_inbox
from bench.run import IngestFailed, Places, ingest, running_server
from flows.server import TemporaryServer
from flows.settings import DEFAULT_PARSE_PROCESSES, quiet_third_parties
from flows.workers import SLICE_BYTES
from transforms.night import Dump, Lineage

SMALL, LARGE, FEW = 20_000, 60_000, 10
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
class Scene:
    """What the rounds share: the inboxes, a warehouse home set up by a first night of a few
    dumps, and the Prefect home and running server of the served nights."""

    work: Path
    inboxes: dict[int, Path]
    home: Path
    places: Places


def set_up(work: Path) -> tuple[Scene, TemporaryServer]:
    """Render the inboxes, set up Prefect's home, start its server, set up a warehouse home."""
    inboxes = {}
    for size in (SMALL, LARGE, FEW):
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
    """Set up, then alternate the floor and the nights `repeat` times, then the first nights."""
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


def _cpu_seconds(server: TemporaryServer) -> float:
    """User and system seconds the server's process has used so far (Linux /proc)."""
    assert server.process is not None
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def figures(sitting: Sitting) -> dict[str, Any]:
    """Medians and what follows from them: rates, ratio, start-up, CPU, first-night cost."""
    out: dict[str, Any] = {"runs": len(sitting.floor) or len(sitting.new_prefect_home)}
    if sitting.floor:
        out.update(_night_figures(sitting))
    if sitting.new_prefect_home:
        out["first_night_new_prefect_home_s"] = _median(sitting.new_prefect_home)
        out["first_night_set_up_prefect_home_s"] = _median(sitting.set_up_prefect_home)
    if sitting.cluster:
        out["cluster_60k_s"] = _median(sitting.cluster)
        out["cluster_ratio"] = round(out["night_60k_s"] / out["cluster_60k_s"], 3)
    out["all"] = {k: [round(v, 2) for v in getattr(sitting, k)] for k in _SERIES}
    return out


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
    if "cluster_60k_s" in f:
        print(
            f"cluster: {LARGE:,} in {f['cluster_60k_s']} s "
            f"(the embedded night takes {f['cluster_ratio']}x that)"
        )
    for name, values in f["all"].items():
        if values:
            print(f"  all {name}: {values}")


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
        "--parts", choices=("all", "night", "first"), default="all", help="what to measure"
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
