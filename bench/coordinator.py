"""The coordinator's cost (issue 22): what the flow's own process spends on a night that a
cluster works.

Each night is the whole `wirehouse ingest` command with `WIREHOUSE_DASK_SCHEDULER` set, sent to
a Prefect server that is already running, on a scheduler and two single-threaded `dask worker`
processes started before it (an operator's cluster): the command's own CPU (os.wait4; on a
cluster it has no worker children) and its peak memory are the coordinator's. Per round:

- a 20,000 and a 60,000-dump night into fresh homes: the coordinator's CPU per dump past its
  start-up is the difference over the extra 40,000 dumps, and its memory the ratio of peaks;
- the same 20,000 dumps onto a warehouse that already holds a 40,000-dump night (built once,
  copied per round), against the 20,000 into an empty one: what history costs.

`--tree PATH` runs the command and the workers from another checkout (PYTHONPATH), to measure
old and new code alternated in one sitting: `--tree A --tree B` alternates them each round.
Not in `make bench` (about 8 minutes a tree and round here).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.dask_local import dask_cluster_of
from bench.render import render_inbox
from bench.run import Ingest, Places, ingest, running_server
from flows.settings import quiet_third_parties

SMALL, LARGE, HISTORY = 20_000, 60_000, 40_000


def night(inbox: Path, home: Path, places: Places, tree: Path | None, scheduler: str) -> Ingest:
    """One cluster night of `inbox` into `home`, by the code of `tree` (None: this one)."""
    env = {"WIREHOUSE_DASK_SCHEDULER": scheduler}
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    return ingest(inbox, home, places, served=True, extra_env=env)


def sitting(
    work: Path, trees: list[Path | None], rounds: int, sizes: tuple[int, int, int]
) -> dict[str, Any]:
    """Render the inboxes, then alternate the trees' rounds; every night's figures."""
    small, large, history = sizes
    inboxes = {}
    for name, size, seed in (("small", small, 1), ("large", large, 2), ("history", history, 3)):
        inboxes[name] = work / f"inbox-{name}"
        render_inbox(inboxes[name], size, seed=seed)
    places = Places(work / "prefect-home", work / "pycache")
    server = running_server(places)
    places = replace(places, api_url=server.api_url)
    figures: dict[str, list[dict[str, Any]]] = {str(t or "this"): [] for t in trees}
    try:
        bases = {}
        for tree in trees:
            env = {"PYTHONPATH": str(tree)} if tree is not None else {}
            with dask_cluster_of(work / "dask-base", env=env) as cluster:
                bases[tree] = work / f"base-{len(bases)}"
                night(inboxes["history"], bases[tree], places, tree, cluster.address)
        for r in range(rounds):
            for tree in trees if r % 2 == 0 else list(reversed(trees)):
                env = {"PYTHONPATH": str(tree)} if tree is not None else {}
                with dask_cluster_of(work / f"dask-{r}", env=env) as cluster:
                    row: dict[str, Any] = {}
                    for name, inbox, base in (
                        ("small", inboxes["small"], None),
                        ("large", inboxes["large"], None),
                        ("history", inboxes["small"], bases[tree]),
                    ):
                        home = work / f"home-{r}-{name}-{len(figures[str(tree or 'this')])}"
                        if base is not None:
                            shutil.copytree(base, home)
                        done = night(inbox, home, places, tree, cluster.address)
                        row[name] = {
                            "cpu_s": round(done.child.cpu, 3),
                            "wall_s": round(done.child.wall, 3),
                            "maxrss_mb": round(done.child.maxrss_mb, 1),
                            "articles": done.report["counts"]["articles"],
                        }
                        shutil.rmtree(home)
                    figures[str(tree or "this")].append(row)
                    print(f"round {r + 1}, {tree or 'this tree'}: {json.dumps(row)}", flush=True)
    finally:
        server.stop()
    return {name: summary(rows, small, large) for name, rows in figures.items()} | {
        "nights": figures
    }


def summary(rows: list[dict[str, Any]], small: int, large: int) -> dict[str, float]:
    """Medians over the rounds: the coordinator's CPU per dump past its start-up, the memory
    ratio of the 60,000 to the 20,000 night, and the history ratio."""

    def median(f: Any) -> float:
        return round(statistics.median(f(row) for row in rows), 4)

    extra = large - small
    return {
        "coordinator_ms_per_dump": median(
            lambda r: 1000 * (r["large"]["cpu_s"] - r["small"]["cpu_s"]) / extra
        ),
        "startup_cpu_s": median(
            lambda r: (
                r["small"]["cpu_s"] - small * (r["large"]["cpu_s"] - r["small"]["cpu_s"]) / extra
            )
        ),
        "memory_large_over_small": median(
            lambda r: r["large"]["maxrss_mb"] / r["small"]["maxrss_mb"]
        ),
        "history_over_empty_cpu": median(lambda r: r["history"]["cpu_s"] / r["small"]["cpu_s"]),
        "wall_small_s": median(lambda r: r["small"]["wall_s"]),
        "wall_large_s": median(lambda r: r["large"]["wall_s"]),
    }


def main(argv: list[str] | None = None) -> int:
    """Command line: print each round's nights and the medians; --json to keep them."""
    parser = argparse.ArgumentParser(prog="python -m bench.coordinator", description=__doc__)
    parser.add_argument("--tree", type=Path, action="append", help="a checkout to run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--sizes",
        default=f"{SMALL},{LARGE},{HISTORY}",
        help="dumps of the small night, the large one, and the history under the small one",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    quiet_third_parties()
    work = Path(tempfile.mkdtemp(prefix="wirehouse-coordinator-"))
    try:
        small, large, history = (int(n) for n in args.sizes.split(","))
        result = sitting(work, args.tree or [None], args.rounds, (small, large, history))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name, figures in result.items():
        if name != "nights":
            print(f"{name}: {json.dumps(figures)}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
