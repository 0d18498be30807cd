"""A full or read-only disk fails the night cleanly, and the next run converges once it is mended.

Each test runs real nights through the `wirehouse` command (in this process) over the sample
inbox: a first night commits, new dumps arrive, and the second night meets the fault. Where this
process may mount (root, or `sudo -n`), the fault is real: a small tmpfs filled to a few hundred
KiB (`bench/small_disk.py`), a folder bound read-only, an ext4 disk that fails and turns
read-only mid-night. Elsewhere, the same night meets the simulated error of `warehouse/faults.py`
(`WIREHOUSE_FAIL_AT`): each test says in its output which one ran. What must hold either way:
one message naming the disk's folder and what to do, exit 1, no traceback, no retry, nothing
committed; with the space back, the next night gives what a clean run gives, no orphan files
and an empty staging folder behind it.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.small_disk import SmallDisk, read_only_folder, small_disk
from flows.cli import main
from flows.nightly import nightly_ingest
from tests.conftest import CASES, SAMPLES
from tests.state import snapshot
from warehouse.catalog import lake_connection, orphaned_data_files
from warehouse.home import Home
from warehouse.outage import ServiceUnavailable

pytestmark = pytest.mark.usefixtures("prefect_server")

# Free bytes left on the home's small disk: the second night's archive pack and staged rows fit,
# and some of its data files in the lake, not all; on the staging's, not all its staged rows.
HOME_LEFT = 1_000_000
STAGING_LEFT = 100_000
# Set (to anything) to run the simulated faults even where mounting is allowed. They fail a
# checkpoint its first 99 times, that is every time: this process counts the checkpoints passed
# for as long as it lives (the whole session).
SIMULATE = "WIREHOUSE_TEST_SIMULATED_DISK"


@pytest.fixture(autouse=True)
def _quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Data Docs; the session's Prefect server, named so the command starts none of its own."""
    from prefect.settings import PREFECT_API_URL

    monkeypatch.setenv("WIREHOUSE_BUILD_DOCS", "0")
    monkeypatch.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, prefect_server: None) -> Any:
    """The warehouse two clean nights build (the sample inbox, then the web night's dumps)."""
    root = tmp_path_factory.mktemp("clean")
    inbox = first_inbox(root)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WIREHOUSE_BUILD_DOCS", "0")
        nightly_ingest(inbox=str(inbox), home=str(root / "home"))
        second_night(inbox)
        nightly_ingest(inbox=str(inbox), home=str(root / "home"))
    return snapshot(root / "home")


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk | None]:
    """A 16 MiB tmpfs at tmp_path/disk; None where mounting is not allowed (or not wanted)."""
    if os.environ.get(SIMULATE):
        yield None
        return
    with small_disk(tmp_path / "disk", 16) as mounted:
        yield mounted


def first_inbox(root: Path) -> Path:
    """The first night's inbox: a copy of the sample inbox."""
    inbox = root / "inbox"
    shutil.copytree(SAMPLES, inbox)
    return inbox


def second_night(inbox: Path) -> None:
    """The second night's arrivals: the web night's dumps."""
    shutil.copytree(CASES / "web-night", inbox / "web-night")


def ingest(home: Path, inbox: Path) -> int:
    """`wirehouse --home HOME ingest --inbox INBOX`: its exit status."""
    return main(["--home", str(home), "ingest", "--inbox", str(inbox)])


class _Records(logging.Handler):
    """The messages of Prefect's task runs' records."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def failed_night(
    home: Path, inbox: Path, capfd: pytest.CaptureFixture[str], env: dict[str, str]
) -> str:
    """Run a night that must fail on the disk: exit 1, its one message (returned), no
    traceback, no task retried."""
    capfd.readouterr()  # the nights before
    logged = _Records()
    tasks = logging.getLogger("prefect.task_runs")
    tasks.addHandler(logged)
    try:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            code = ingest(home, inbox)
    finally:
        tasks.removeHandler(logged)
    out, err = capfd.readouterr()
    assert code == 1, err
    assert "Traceback" not in out + err, err
    assert not [m for m in logged.messages if "Retry" in m], logged.messages
    lines = [line for line in err.splitlines() if line.startswith("night failed:")]
    assert len(lines) == 1, err
    return lines[0]


def converges(home: Path, inbox: Path, reference: Any, staging: Path) -> None:
    """The next night succeeds and gives what clean nights give; nothing left behind."""
    assert ingest(home, inbox) == 0
    assert snapshot(home) == reference
    with lake_connection(Home.at(home), read_only=False) as con:
        assert orphaned_data_files(con) == []
    assert not staging.exists() or not any(staging.rglob("*"))


def filled(disk: SmallDisk | None, left: int, whose: str, point: str) -> dict[str, str]:
    """The small disk filled to `left` bytes free; without one (no mounting here), the settings
    that make the night meet ENOSPC at checkpoint `point` instead."""
    if disk is not None:
        disk.fill(left)
        print(f"a real full disk: {whose} tmpfs has {disk.free_bytes():,} bytes free")
        return {}
    print(f"simulated: ENOSPC at {point} (no mounting here)")
    return {"WIREHOUSE_FAIL_AT": f"{point}:99"}


def test_a_full_home_fails_the_night_and_the_next_run_converges(
    disk: SmallDisk | None,
    tmp_path: Path,
    reference: Any,
    capfd: pytest.CaptureFixture[str],
) -> None:
    home = (disk.path if disk else tmp_path) / "home"
    inbox = first_inbox(tmp_path)
    assert ingest(home, inbox) == 0
    before = snapshot(home)
    second_night(inbox)
    env = filled(disk, HOME_LEFT, "the home's", "write:file")
    message = failed_night(home, inbox, capfd, env)
    assert message == (
        f"night failed: the disk under {home} (the home) is full: free space under {home}, "
        "then run again; nothing was committed."
    )
    if disk is not None:
        disk.unfill()  # SQLite cannot read its catalog on a disk with no room for its WAL
    assert snapshot(home) == before
    converges(home, inbox, reference, home / "staging")


def test_a_full_staging_folder_fails_the_night_and_the_next_run_converges(
    disk: SmallDisk | None,
    tmp_path: Path,
    reference: Any,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    staging = (disk.path if disk else tmp_path) / "staging"
    monkeypatch.setenv("WIREHOUSE_STAGING", str(staging))
    home, inbox = tmp_path / "home", first_inbox(tmp_path)
    assert ingest(home, inbox) == 0
    before = snapshot(home)
    second_night(inbox)
    env = filled(disk, STAGING_LEFT, "the staging's", "write:batch")
    message = failed_night(home, inbox, capfd, env)
    # Named by the first of the night's folders on its disk: simulated, that disk is the home's.
    where, name = (staging, "the staging folder") if disk is not None else (home, "the home")
    assert message == (
        f"night failed: the disk under {where} ({name}) is full: free space under {where}, "
        "then run again; nothing was committed."
    )
    assert snapshot(home) == before
    if disk is not None:
        disk.unfill()
    converges(home, inbox, reference, staging)


def test_a_read_only_home_fails_the_night_and_the_next_run_converges(
    tmp_path: Path, reference: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    home, inbox = tmp_path / "home", first_inbox(tmp_path)
    assert ingest(home, inbox) == 0
    before = snapshot(home)
    second_night(inbox)
    bound = False
    if not os.environ.get(SIMULATE):
        with read_only_folder(home) as bound:
            if bound:
                print("a real read-only home: the folder bound read-only over itself")
                # The command sees it before any flow starts: one line, exit 2.
                capfd.readouterr()  # the night before
                assert ingest(home, inbox) == 2
                err = capfd.readouterr().err
                assert "Traceback" not in err
                assert err.strip() == (
                    f"error: the disk under {home} (the home) is read-only: make it writable "
                    "again (remount it read-write; a disk that turned read-only by itself had "
                    "errors: check it first), then run again; nothing was committed."
                )
                # A scheduled night (no command around it) fails the same way.
                with pytest.raises(ServiceUnavailable, match="is read-only") as failed:
                    nightly_ingest(inbox=str(inbox), home=str(home))
                assert failed.value.service == f"the disk under {home}"
    if not bound:
        print("simulated: EROFS as the night opens its lake (no mounting here)")
        message = failed_night(home, inbox, capfd, {"WIREHOUSE_FAIL_AT": "recovered:99:EROFS"})
        assert " is read-only: " in message and message.endswith("nothing was committed.")
    assert snapshot(home) == before
    converges(home, inbox, reference, home / "staging")


def test_a_home_that_turns_read_only_mid_night_fails_it_and_the_next_run_converges(
    tmp_path: Path, reference: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    inbox = first_inbox(tmp_path)
    with small_disk(tmp_path / "disk", 16, kind="ext4") as disk:
        real = disk is not None and not os.environ.get(SIMULATE)
        home = (disk.path if real and disk else tmp_path) / "home"
        assert ingest(home, inbox) == 0
        before = snapshot(home)
        second_night(inbox)
        if real and disk is not None:
            print("a real disk failing: ext4 turns itself read-only while the night parses")
            env = {"WIREHOUSE_PAUSE_AT": "parse:batch:3"}
            breaker = threading.Thread(target=_break_when_staged, args=(disk, home))
            breaker.start()
        else:
            print("simulated: EROFS writing the night's first data file (no mounting here)")
            env = {"WIREHOUSE_FAIL_AT": "write:file:99:EROFS"}
        try:
            message = failed_night(home, inbox, capfd, env)
        finally:
            if real:
                breaker.join()
        assert message == (
            f"night failed: the disk under {home} (the home) is read-only: make it writable "
            "again (remount it read-write; a disk that turned read-only by itself had errors: "
            "check it first), then run again; nothing was committed."
        )
        if real:  # the disk is checked and mended: here, its files moved to a sound one (SQLite
            # cannot open the catalog where it can make no -wal and -shm files beside it)
            shutil.copytree(home, tmp_path / "mended", symlinks=True)
            home = tmp_path / "mended"
    assert snapshot(home) == before
    converges(home, inbox, reference, home / "staging")


def _break_when_staged(disk: SmallDisk, home: Path) -> None:
    """Once the night has staged its parsed rows (it pauses there), fail the disk."""
    deadline = time.monotonic() + 120
    while not list(home.glob("staging/*/valid-*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert disk.break_down()


def test_a_refused_night_is_its_message_without_a_traceback(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    home, inbox = tmp_path / "home", first_inbox(tmp_path)
    code = main(["--home", str(home), "ingest", "--inbox", str(inbox), "--max-failure-ratio", "0"])
    out, err = capfd.readouterr()
    assert code == 1 and "Traceback" not in out + err, err
    assert "night failed: 1 of 73 new dumps (1%) failed, above the 0% limit" in err
