"""Two runs at once, an analyst reading during a run, and I/O failures: real processes."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import pytest

import warehouse
from tests.crash.conftest import Zygote
from tests.state import empty_snapshot, snapshot

pytestmark = pytest.mark.usefixtures("prefect_server")
COUNTS = (
    "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM duplicates), "
    "(SELECT count(*) FROM quarantine), (SELECT count(*) FROM files), "
    "(SELECT count(*) FROM runs WHERE status = 'succeeded')"
)


def test_a_second_run_during_a_run_leaves_it_alone(
    zygote: Zygote, inbox: Path, reference: Any, tmp_path: Path
) -> None:
    state, _, _ = reference
    home, log = tmp_path / "home", tmp_path / "second.err"
    first = zygote.run(inbox, home, {"WIREHOUSE_PAUSE_AT": "recovered:4"}, op="start")
    time.sleep(1.0)  # the first run holds the home's lock, paused after its recovery
    second = zygote.run(inbox, home, stderr=log)
    assert second["exit"] == 1
    assert "another run is in progress on this warehouse" in log.read_text()
    assert zygote.wait(first["pid"])["exit"] == 0
    assert snapshot(home) == state  # loaded once, by the first run only


def test_an_analyst_reading_during_a_run_never_sees_half_of_it(
    zygote: Zygote, inbox: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    first_night = tmp_path / "night1"
    shutil.copytree(inbox / "2019", first_night / "2019")
    assert zygote.run(first_night, home)["exit"] == 0
    analyst = warehouse.connect(home)  # held open through the night, as a notebook is
    before = analyst.execute(COUNTS).fetchall()[0]
    # hold the second night at each step of its load, while the analyst keeps querying
    pauses = "load:articles:1,load:rows:1,load:index:1,load:commit:1"
    env = {"WIREHOUSE_PAUSE_AT": pauses}
    run = zygote.run(inbox, home, env, op="start")
    seen = set()
    deadline = time.monotonic() + 15  # the pauses alone take 4 s
    while time.monotonic() < deadline:
        seen.add(analyst.execute(COUNTS).fetchall()[0])
        time.sleep(0.05)
    ended = zygote.wait(run["pid"])
    after = analyst.execute(COUNTS).fetchall()[0]
    analyst.close()
    assert ended["exit"] == 0
    assert after != before and after[4] == before[4] + 1
    assert seen <= {before, after}


def test_a_killed_run_leaves_no_parse_worker_behind(
    zygote: Zygote, inbox: Path, reference: Any, tmp_path: Path
) -> None:
    state, _, _ = reference
    home = tmp_path / "home"
    # two worker processes, even for this small night; each is held 30 s at the end of its
    # batch's parsing, and the run is killed
    env = {
        "WIREHOUSE_PARSE_PROCESSES": "2",
        "WIREHOUSE_POOL_MIN_BYTES": "0",
        "WIREHOUSE_PAUSE_AT": "parse:batch:30",
    }
    run = zygote.run(inbox, home, env, op="start")
    workers: list[int] = []
    deadline = time.monotonic() + 60
    while len(workers) < 2 and time.monotonic() < deadline:
        workers = [p for p in _children(run["pid"]) if "spawn_main" in _cmdline(p)]
        time.sleep(0.2)
    assert len(workers) == 2, "the run should have started its two parse workers"
    os.kill(run["pid"], signal.SIGKILL)
    assert zygote.wait(run["pid"])["exit"] == -signal.SIGKILL
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in workers if _alive(p)], "orphaned parse workers"
    assert zygote.run(inbox, home)["exit"] == 0  # and the next run converges
    assert snapshot(home) == state


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(child) for child in task.read_text().split()]
        except OSError:
            continue  # the thread ended between the listing and the read
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    """Running or sleeping; a zombie (exited, not yet reaped by init) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_transient_disk_error_is_retried(
    zygote: Zygote, inbox: Path, reference: Any, tmp_path: Path
) -> None:
    state, _, _ = reference
    home, log = tmp_path / "home", tmp_path / "checkpoints.log"
    env = {"WIREHOUSE_FAIL_AT": "load:commit:1:EAGAIN", "WIREHOUSE_CHECKPOINT_LOG": str(log)}
    answer = zygote.run(inbox, home, env)
    assert answer["exit"] == 0
    # the commit failed once (a hiccup: EAGAIN) and the load task's retry wrote it;
    # a full disk is not retried (tests/flows/test_disk_faults.py)
    assert log.read_text().split().count("load:commit") == 2
    assert snapshot(home) == state


def test_a_run_that_cannot_finish_fails_readably_and_changes_nothing(
    zygote: Zygote, inbox: Path, tmp_path: Path
) -> None:
    home, log = tmp_path / "home", tmp_path / "run.err"
    answer = zygote.run(inbox, home, {"WIREHOUSE_FAIL_AT": "load:commit:99"}, stderr=log)
    assert answer["exit"] == 1
    assert "no space left on device" in log.read_text()
    assert snapshot(home) == empty_snapshot()
