"""Two runs at once, an analyst reading during a run, and I/O failures: real processes."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

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
    assert "another run is in progress on this home" in log.read_text()
    assert zygote.wait(first["pid"])["exit"] == 0
    assert snapshot(home) == state  # loaded once, by the first run only


def test_an_analyst_reading_during_a_run_never_sees_half_of_it(
    zygote: Zygote, inbox: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    first_night = tmp_path / "night1"
    shutil.copytree(inbox / "2019", first_night / "2019")
    assert zygote.run(first_night, home)["exit"] == 0
    analyst = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    before = analyst.execute(COUNTS).fetchall()[0]
    # hold the second night at each step of its load, while the analyst keeps querying
    pauses = "load:articles:1,load:rows:1,publish.before:index:1,publish.before:runs:1"
    env = {"WIREHOUSE_PAUSE_AT": pauses, "WIREHOUSE_VISIBILITY_DELAY_SECONDS": "1"}
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


def test_a_transient_disk_error_is_retried(
    zygote: Zygote, inbox: Path, reference: Any, tmp_path: Path
) -> None:
    state, _, _ = reference
    home, log = tmp_path / "home", tmp_path / "checkpoints.log"
    env = {"WIREHOUSE_FAIL_AT": "publish.before:runs:1", "WIREHOUSE_CHECKPOINT_LOG": str(log)}
    answer = zygote.run(inbox, home, env)
    assert answer["exit"] == 0
    # the commit failed once (disk full) and the load task's retry wrote it
    assert log.read_text().split().count("publish.before:runs") == 2
    assert snapshot(home) == state


def test_a_run_that_cannot_finish_fails_readably_and_changes_nothing(
    zygote: Zygote, inbox: Path, tmp_path: Path
) -> None:
    home, log = tmp_path / "home", tmp_path / "run.err"
    answer = zygote.run(inbox, home, {"WIREHOUSE_FAIL_AT": "publish.before:runs:99"}, stderr=log)
    assert answer["exit"] == 1
    assert "no space left on device" in log.read_text()
    assert snapshot(home) == empty_snapshot()
