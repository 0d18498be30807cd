"""The cost model's figures (issue 14): CPU seconds per dump of each stage of a night.

The stage functions of `flows.stages` (and the load's `commit_night`) called one after the
other in this one process, on a rendered inbox, each timed by `time.process_time` (CPU) and
`time.perf_counter` (wall), without Prefect: what a cluster splits between the flow's process
(the serial part: discovery with its hashing and ledger match, dedupe, accounting, the commit,
the report's checks) and a worker (the parallel part: `flows.worker.work_batch`, the very
function a Dask worker runs: read, archive, decode, parse, sign, validate with Great
Expectations, stage). Two nights of different dumps go into one home, so the second one's
dedupe and commit meet a history. Prefect's own per-task cost and the command's start-up are
not in these figures: `python -m bench.floor` measures those.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.render import render_inbox
from flows.operations import new_run_id
from flows.settings import Settings, quiet_third_parties
from transforms.night import Lineage

DUMPS = 20_000
BACKFILLS = (100_000_000, 1_000_000_000)
WORKERS = (16, 64, 256)
# Stages run where on a cluster: the flow's process (serial) or a worker (parallel).
PARALLEL = (
    "work batches (read, archive, parse, sign, validate, stage)",
    "write: the night's rows of the lake as its data files (staged by partition, gathered)",
)


@dataclass(slots=True)
class Clock:
    """CPU and wall seconds per stage of one night."""

    cpu: dict[str, float] = field(default_factory=dict)
    wall: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time one stage (added to its earlier time under the same name)."""
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            yield
        finally:
            self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - cpu
            self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - wall


def timed_night(inbox: Path, home: Path) -> tuple[Clock, int]:
    """One night of `inbox` into `home` by the stage functions, each stage timed; the dumps
    read."""
    from flows.nightly import _failure_gate, _run_row  # the flow's own bookkeeping, unexported
    from flows.stages import (
        account,
        dedupe_against_history,
        discover_plan,
        kept_by_batch,
        night_rows,
        plan_files,
        summary_counts,
    )
    from flows.worker import WRITTEN_TABLES, split_batch, work_batch, write_file
    from warehouse.catalog import cursor, table_folder
    from warehouse.inbox import find_arrivals
    from warehouse.loader import commit_night
    from warehouse.recovery import open_recovered
    from warehouse.storage import join, remove_tree
    from warehouse.verify import verify, verify_night

    settings = Settings.from_env(home=str(home), inbox=str(inbox))
    settings.home.ensure()
    started = datetime.now(UTC)
    lineage = Lineage(new_run_id(started), started)
    clock = Clock()
    with closing(open_recovered(settings.home)) as lake:
        with clock.stage("discover: walk and hash"):
            arrivals = find_arrivals(settings.inbox, 0)
        with clock.stage("discover: open and match the ledger"), cursor(lake) as con:
            plan = discover_plan(arrivals, con, settings.home, lineage, settings.bundle_limits)
        size = settings.batch_size
        batches = [plan.to_read[i : i + size] for i in range(0, len(plan.to_read), size)]
        with clock.stage("work: import Great Expectations (once a worker)"):
            import great_expectations  # noqa: F401
        worked = []
        for i, batch in enumerate(batches):
            with clock.stage(PARALLEL[0]):
                worked.append(work_batch(i, batch, settings.home, settings.max_dump_bytes, lineage))
        with clock.stage("dedupe"), cursor(lake) as con:
            deduped = dedupe_against_history(worked, con, settings.near_threshold)
        with clock.stage("account"):
            ledger = account(plan, worked, deduped, lineage)
            counts = summary_counts(plan, ledger)
            ratio, message = _failure_gate(plan, ledger, settings)
            row = _run_row(settings, lineage, "backfill", counts, ratio, message)
        with cursor(lake) as con:
            folders = {t: table_folder(con, settings.home, t) for t in WRITTEN_TABLES}
        home, pieces, files = settings.home, [], {}
        with clock.stage(PARALLEL[1]):
            for batch, kept in zip(worked, kept_by_batch(worked, deduped), strict=True):
                pieces += split_batch(
                    batch.index, batch.passed, batch.archived, kept, home, lineage
                )
            for planned in plan_files(pieces, folders, lineage.run_id):
                written = write_file(planned.table, planned.pieces, planned.location, home)
                files.setdefault(planned.table, []).append(written)
        with clock.stage("commit"), cursor(lake) as con:
            night = night_rows(row, plan.archived, ledger, files)
            snapshot = commit_night(con, night)
            remove_tree(join(settings.home.staging, lineage.run_id), settings.home.s3)
        with clock.stage("report: the night's checks (once a night)"), cursor(lake) as con:
            broken = verify_night(con, lineage.run_id, snapshot)
    with clock.stage("for comparison: `wirehouse verify` of the whole warehouse (once a night)"):
        broken += verify(settings.home)
    if broken or message is not None:
        raise SystemExit(f"the measured night is not a clean one: {message} {broken}")
    return clock, len(plan.to_read)


def per_dump(clock: Clock, dumps: int) -> dict[str, dict[str, float]]:
    """Milliseconds per dump of each stage (CPU and wall); the model leaves out the stages paid
    once a process or a night ("once a" in their names)."""
    return {
        name: {
            "cpu_ms": round(1000 * clock.cpu[name] / dumps, 4),
            "wall_ms": round(1000 * clock.wall[name] / dumps, 4),
            "cpu_s": round(clock.cpu[name], 3),
        }
        for name in clock.cpu
    }


def model(stages: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Serial and parallel CPU per dump, and what they predict for backfills of 10^8 and 10^9 dumps.

    T(w) = N x (serial + parallel / w): discovery comes before the workers' batches, and dedupe,
    accounting and the commit after them; the workers' part (validation included) divides
    among them."""
    per_dump_stages = {k: v["cpu_ms"] for k, v in stages.items() if "once a" not in k}
    parallel = sum(v for k, v in per_dump_stages.items() if k in PARALLEL)
    serial = sum(v for k, v in per_dump_stages.items() if k not in PARALLEL)
    hours = {
        f"{n:.0e} dumps on {w} workers": round(n * (serial + parallel / w) / 1000 / 3600, 1)
        for n in BACKFILLS
        for w in WORKERS
    }
    return {
        "parallel_ms_per_dump": round(parallel, 4),
        "serial_ms_per_dump": round(serial, 4),
        "backfill_hours": hours,
        "n_star_parallel_over_serial": round(parallel / serial, 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: render two inboxes, time two nights into one home, print and write JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.cost", description=__doc__)
    parser.add_argument("--dumps", type=int, default=DUMPS, help="dumps per night")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    quiet_third_parties()
    os.environ.setdefault("WIREHOUSE_BUILD_DOCS", "0")
    work = Path(tempfile.mkdtemp(prefix="wirehouse-cost-"))
    try:
        result = _measure(work, args.dumps)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _print(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _measure(work: Path, dumps: int) -> dict[str, Any]:
    nights = []
    for seed in (1, 0):  # other dumps each night (other seeds): the second meets a history
        inbox = work / f"inbox-{seed}"
        render_inbox(inbox, dumps, seed=seed)
        load = os.getloadavg()
        when = f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"
        clock, read = timed_night(inbox, work / "home")
        stages = per_dump(clock, read)
        nights.append(
            {"at": when, "load_before": [round(x, 2) for x in load], "dumps": read}
            | {"load_after": [round(x, 2) for x in os.getloadavg()], "stages": stages}
            | {"model": model(stages)}
        )
    return {"nights": nights}


def _print(result: dict[str, Any]) -> None:
    for k, night in enumerate(result["nights"]):
        print(
            f"\nnight {k + 1} ({night['dumps']:,} dumps, {night['at']}, load "
            f"{night['load_before']} -> {night['load_after']}):"
        )
        for name, s in night["stages"].items():
            print(f"  {name:55} CPU {s['cpu_ms']:.4f} ms/dump  wall {s['wall_ms']:.4f} ms/dump")
        m = night["model"]
        print(
            f"  serial {m['serial_ms_per_dump']} ms/dump, parallel "
            f"{m['parallel_ms_per_dump']} ms/dump; N* = {m['n_star_parallel_over_serial']}"
        )
        for what, h in m["backfill_hours"].items():
            print(f"  {what}: {h} h")


if __name__ == "__main__":
    sys.exit(main())
