"""The short soak of `make test`: nights and operations under every local fault, readers on.

A real `python -m bench.soak` (bench/soak.py) against the session's Prefect server, with a Dask
cluster of its own: each step runs on a reference warehouse and on a soaked one, faults injected
on the latter; after every step the two must hold the same rows. The long soak is run by hand
(README, "Reliability") with the same command and more steps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.soak import LOCAL_FAULTS, Figures, render
from tests.conftest import REPO

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.timeout(900)]
STEPS = 9


def test_a_short_soak_loses_nothing_under_every_local_fault(tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL

    env = dict(os.environ, PREFECT_API_URL=str(PREFECT_API_URL.value()))
    command = [sys.executable, "-m", "bench.soak", "--steps", str(STEPS), "--seed", "7"]
    command += ["--fault-share", "1", "--readers", "1", "--json", "--work", str(tmp_path)]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert done.stdout.strip(), done.stderr[-3000:]
    found = json.loads(done.stdout)
    assert done.returncode == 0, render(found)
    assert sum(found["steps"].values()) == STEPS
    assert set(found["faults_injected"]) == set(LOCAL_FAULTS), found["faults_injected"]
    assert found["faults_total"] == STEPS  # every step had its fault
    assert found["rows_lost"] == found["rows_duplicated"] == 0
    assert found["mismatches"] == [] and found["failures_with_a_traceback"] == []
    # each fault was met one of the ways a user expects, and every stop was recovered
    for survived in found["how_survived"]:
        assert "not recovered" not in survived, found["how_survived"]
    readers = found["readers"]
    assert readers["errors"] == [] and readers["queries"].get("inconsistent", 0) == 0
    assert readers["queries"]["whole"] > 0


def test_the_figures_say_what_was_lost_and_how_faults_were_met() -> None:
    figures = Figures()
    figures.steps.update(night=2)
    figures.faults.update(kill=1)
    figures.survived[("kill", "killed, recovered by the next run")] += 1
    figures.rows_lost = 3
    figures.mismatches.append("step 1: articles: 3 rows missing, 0 extra")
    text = render(figures.as_dict())
    assert "faults injected: 1: {'kill': 1}" in text
    assert "kill / killed, recovered by the next run: 1" in text
    assert "rows lost: 3, rows duplicated: 0" in text
    assert "step 1: articles: 3 rows missing" in text
