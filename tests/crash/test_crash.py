"""Invariant 3 for real: runs killed with SIGKILL at every checkpoint and at random instants.

Each killed run is a real `nightly_ingest` in a child process (forked from tests/crash/zygote.py,
so it skips the imports), talking to the session's Prefect server. After each kill the
warehouse must show all of a run or none of it, with its invariants intact; the next run must
converge to exactly what a clean run builds.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.crash.conftest import Zygote
from tests.state import empty_snapshot, snapshot
from warehouse.catalog import exists, lake_connection, orphaned_data_files
from warehouse.home import Home
from warehouse.verify import violations

# Dozens of real runs: minutes, not seconds, on a 2-core machine.
pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.timeout(1800)]

KILLED = -9  # waitstatus_to_exitcode of a SIGKILL
RANDOM_KILLS = 12


def assert_all_or_nothing(home: Path, reference: dict[str, Any]) -> None:
    """What readers see after a kill: a whole run or none of it, invariants intact."""
    seen = snapshot(home)
    assert seen in (empty_snapshot(), reference)
    if not exists(Home.at(home)):
        return  # killed before its catalog was made: nothing to see, nothing to break
    with lake_connection(Home.at(home)) as con:
        assert violations(con) == []


def assert_converges(zygote: Zygote, inbox: Path, home: Path, reference: Any) -> None:
    """The next, unharmed run leaves exactly the clean run's warehouse, and no leftovers."""
    assert zygote.run(inbox, home)["exit"] == 0
    assert snapshot(home) == reference
    assert not list((home / "staging").glob("*"))
    assert not [p for p in home.rglob("*") if ".tmp-" in p.name]
    with lake_connection(Home.at(home), read_only=False) as con:
        assert orphaned_data_files(con) == []  # a killed night's data files are gone


def test_there_are_enough_kill_points(reference: Any) -> None:
    _, points, _ = reference
    # Stage boundaries, each batch's pack, parse and validation, each batch's rows of the lake
    # staged by partition, each of the lake's data files written (not yet registered:
    # invisible, and removed by the next run), and each table written in the commit's
    # transaction (one DuckLake commit makes the night
    # visible: no per-file renames any more).
    assert len(points) >= 35, points
    for stage in (
        "recovered",
        "parse:batch",
        "validate:batch",
        "write:batch",
        "write:file",
        "load:articles",
        "load:rows",
        "load:index",
        "load:commit",
        "load:committed",
    ):
        assert stage in points


def test_killed_at_every_checkpoint_then_converges(
    zygote: Zygote, inbox: Path, reference: Any, tmp_path: Path
) -> None:
    state, points, _ = reference
    commit = len(points) - points[::-1].index("load:committed")  # k from here: visible
    # Before the commit, kills chain on one home: each run first meets the leftovers of the
    # run killed before it, so every point is also a recovery test.
    home = tmp_path / "chain"
    for k in range(1, commit):
        answer = zygote.run(inbox, home, env={"WIREHOUSE_CRASH_AT": str(k)})
        assert answer["exit"] == KILLED, (k, points[k - 1], answer)
        assert snapshot(home) == empty_snapshot(), (k, points[k - 1])
        assert_all_or_nothing(home, state)
    assert_converges(zygote, inbox, home, state)
    # From the commit on, the run is whole: each kill gets a home of its own.
    for k in range(commit, len(points) + 1):
        home = tmp_path / f"k{k:03d}"
        answer = zygote.run(inbox, home, env={"WIREHOUSE_CRASH_AT": str(k)})
        assert answer["exit"] == KILLED, (k, points[k - 1], answer)
        assert snapshot(home) == state, (k, points[k - 1])
        assert_all_or_nothing(home, state)
        assert_converges(zygote, inbox, home, state)


def test_killed_at_random_instants_then_converges(
    zygote: Zygote, inbox: Path, reference: Any, tmp_path: Path
) -> None:
    state, _, seconds = reference
    chance = random.Random(20261126)
    home = tmp_path / "random"
    killed = 0
    for _ in range(RANDOM_KILLS):
        answer = zygote.run(inbox, home, kill_after=chance.uniform(0.05, seconds))
        killed += answer["killed"]
        assert_all_or_nothing(home, state)
        if answer["exit"] == 0:
            shutil.rmtree(home)  # it finished: start the next one from an empty home
    assert_converges(zygote, inbox, home, state)
    assert killed >= RANDOM_KILLS // 2  # most instants fell inside a run
