"""`wirehouse verify`: silent on a sound warehouse, loud on each kind of damage."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flows.nightly import nightly_ingest
from tests.conftest import REPO, SAMPLES
from warehouse.catalog import lake_connection
from warehouse.home import Home
from warehouse.verify import verify, verify_night

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture(scope="module")
def loaded_once(prefect_server: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One home holding the sample inbox, ingested once for the module."""
    root = tmp_path_factory.mktemp("verify")
    os.environ["WIREHOUSE_BUILD_DOCS"] = "0"
    try:
        nightly_ingest(inbox=str(SAMPLES), home=str(root / "home"))
    finally:
        del os.environ["WIREHOUSE_BUILD_DOCS"]
    return root / "home"


@pytest.fixture
def loaded(loaded_once: Path, sample_inbox: Path, tmp_path: Path) -> Home:
    """A copy of that home for one test to damage, checked sound first."""
    home = Home.at(shutil.copytree(loaded_once, tmp_path / "home"))
    assert verify(home, inbox=sample_inbox, deep=True) == []
    return home


def checks(home: Home, **kwargs: object) -> set[str]:
    """Names of the checks that fail."""
    return {v.check for v in verify(home, **kwargs)}  # type: ignore[arg-type]


def test_corrupt_archive_bytes_are_found_by_the_deep_check(loaded: Home) -> None:
    pack = next((Path(loaded.archive) / "packs").glob("*.pack"))
    data = bytearray(pack.read_bytes())
    data[100] ^= 0xFF
    pack.write_bytes(bytes(data))
    assert checks(loaded) == set()  # the cheap check reads no bytes
    assert checks(loaded, deep=True) == {"archive_intact"}


def lose_archive_index(home: Home) -> None:
    """The archive's index rows gone (as if a bug had deleted them), in a snapshot of its own."""
    with lake_connection(home, read_only=False) as con:
        con.execute("DELETE FROM archive_index")


def data_file(home: Home, table: str) -> Path:
    """One data file the table's current snapshot reads."""
    with lake_connection(home) as con:
        [(path,)] = con.execute(
            "SELECT data_file FROM ducklake_list_files('wh', ?) LIMIT 1", [table]
        ).fetchall()
    return Path(path)


def test_a_lost_archive_index_is_found(loaded: Home) -> None:
    lose_archive_index(loaded)
    assert checks(loaded) == {"archive_complete"}


def test_a_damaged_data_file_is_found(loaded: Home) -> None:
    part = data_file(loaded, "articles")
    part.write_bytes(part.read_bytes()[:50])
    assert checks(loaded) == {"data_files_readable"}


def test_a_lost_table_file_is_found(loaded: Home) -> None:
    data_file(loaded, "files").unlink()  # (a night's few quarantine rows live in the catalog)
    assert checks(loaded) == {"data_files_readable"}


def test_rows_deleted_from_a_table_break_conservation(loaded: Home) -> None:
    with lake_connection(loaded, read_only=False) as con:
        con.execute("DELETE FROM quarantine")
    assert checks(loaded) == {"one_place_per_dump"}


def test_files_of_a_run_that_never_committed_are_reported(loaded: Home) -> None:
    stray = data_file(loaded, "files").with_name("ducklake-killed-before-commit.parquet")
    stray.write_bytes(data_file(loaded, "files").read_bytes())
    assert checks(loaded) == {"no_unreferenced_files"}


def test_an_inbox_file_a_run_missed_is_found(loaded: Home, sample_inbox: Path) -> None:
    missed = sample_inbox / "missed.txt"
    missed.write_text("arrived before the run, yet never recorded")
    os.utime(missed, (1_000_000_000, 1_000_000_000))
    assert checks(loaded, inbox=sample_inbox) == {"inbox_accounted_for"}
    late = sample_inbox / "late.txt"
    late.write_text("arrived after the last run: not a violation yet")
    missed.unlink()
    assert checks(loaded, inbox=sample_inbox) == set()


def test_the_command_exits_non_zero_and_names_the_check(loaded: Home) -> None:
    env = dict(os.environ, WIREHOUSE_HOME=str(loaded.root))
    command = [sys.executable, "-m", "flows.cli", "verify", "--deep"]
    sound = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    assert sound.returncode == 0 and "every invariant holds" in sound.stdout
    lose_archive_index(loaded)
    broken = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    assert broken.returncode == 1 and "archive_complete" in broken.stderr


def the_night(home: Home) -> tuple[str, int]:
    """The run id of the home's one night and the snapshot it committed."""
    with lake_connection(home) as con:
        [(run_id,)] = con.execute("SELECT run_id FROM runs").fetchall()
        [(snapshot,)] = con.execute(
            "SELECT snapshot_id FROM wh.snapshots() WHERE commit_extra_info LIKE ?",
            [f'%"{run_id}"%'],
        ).fetchall()
    return run_id, snapshot


def night_checks(home: Home) -> set[str]:
    """Names of the night's checks that fail, over the tables as they are now."""
    run_id, snapshot = the_night(home)
    with lake_connection(home) as con:
        [(now,)] = con.execute("SELECT max(snapshot_id) FROM wh.snapshots()").fetchall()
    return _night(home, run_id, snapshot) | _night(home, run_id, now)


def _night(home: Home, run_id: str, snapshot: int) -> set[str]:
    with lake_connection(home) as con:
        return {v.check for v in verify_night(con, run_id, snapshot)}


def test_the_nights_own_checks_pass_on_a_sound_night(loaded: Home) -> None:
    run_id, snapshot = the_night(loaded)
    assert _night(loaded, run_id, snapshot) == set()


def test_the_nights_checks_find_lost_rows_and_counts_that_no_longer_add_up(loaded: Home) -> None:
    with lake_connection(loaded, read_only=False) as con:
        con.execute("DELETE FROM quarantine")
    assert night_checks(loaded) == {"one_place_per_dump", "counts_add_up"}


def test_the_nights_checks_find_a_duplicate_whose_article_is_gone(loaded: Home) -> None:
    with lake_connection(loaded, read_only=False) as con:
        con.execute(
            "DELETE FROM articles WHERE article_id = "
            "(SELECT min(duplicate_of) FROM duplicates WHERE kind <> 'same_file')"
        )
    assert "duplicates_point_at_articles" in night_checks(loaded)


def test_the_nights_checks_find_its_lost_archive_and_its_damaged_files(loaded: Home) -> None:
    lose_archive_index(loaded)
    assert night_checks(loaded) == {"archive_complete"}
    part = data_file(loaded, "articles")
    part.write_bytes(part.read_bytes()[:50])
    run_id, snapshot = the_night(loaded)
    assert _night(loaded, run_id, snapshot) == {"data_files_readable"}
