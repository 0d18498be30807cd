"""A night is one DuckLake snapshot: readers see whole nights, time travel reaches past ones."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from pathlib import Path

from tests.warehouse.synthetic import SHAPE, night
from warehouse.catalog import (
    connect_as_of,
    lake_connection,
    open_lake,
    orphaned_data_files,
    register_files,
)
from warehouse.home import Home
from warehouse.loader import commit_night
from warehouse.maintenance import compact
from warehouse.recovery import recover

COUNTS = (
    "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM duplicates), "
    "(SELECT count(*) FROM files), (SELECT count(*) FROM runs WHERE status = 'succeeded')"
)


def _consistent(counts: tuple[int, ...]) -> bool:
    *tables, runs = counts
    return all(rows == size * runs for rows, size in zip(tables, SHAPE, strict=True))


def test_a_long_open_session_never_sees_part_of_a_night(tmp_path: Path) -> None:
    home = Home.at(tmp_path / "home")
    writer = open_lake(home)
    nights = 25

    def commit_nights() -> None:
        for n in range(nights):
            commit_night(writer, night(writer, home, f"run-{n:03d}"))

    thread = threading.Thread(target=commit_nights)
    seen: list[tuple[int, ...]] = []
    with lake_connection(home) as analyst:  # opened once, as a notebook keeps it
        thread.start()
        while thread.is_alive():
            seen.append(tuple(analyst.execute(COUNTS).fetchall()[0]))
        thread.join()
        final = tuple(analyst.execute(COUNTS).fetchall()[0])
    writer.close()
    assert final == (SHAPE[0] * nights, SHAPE[1] * nights, nights, nights)
    assert len(set(seen)) > 3, "the reader should have watched several nights land"
    assert [counts for counts in seen if not _consistent(counts)] == []


def test_inside_a_transaction_every_query_sees_the_same_snapshot(tmp_path: Path) -> None:
    home = Home.at(tmp_path / "home")
    with open_lake(home) as writer:
        commit_night(writer, night(writer, home, "run-one"))
        with lake_connection(home) as analyst:
            analyst.execute("BEGIN")
            assert analyst.execute(COUNTS).fetchall()[0] == (30, 20, 1, 1)
            commit_night(writer, night(writer, home, "run-two"))
            assert analyst.execute(COUNTS).fetchall()[0] == (30, 20, 1, 1)
            analyst.execute("COMMIT")
            assert analyst.execute(COUNTS).fetchall()[0] == (60, 40, 2, 2)


def test_each_night_is_one_snapshot_named_after_its_run(tmp_path: Path) -> None:
    home = Home.at(tmp_path / "home")
    with open_lake(home) as writer:
        first = commit_night(writer, night(writer, home, "run-one"))
        second = commit_night(writer, night(writer, home, "run-two"))
        labels = writer.execute(
            "SELECT snapshot_id, commit_message, "
            "json_extract_string(commit_extra_info, '$.run_id') FROM wh.snapshots() "
            "WHERE snapshot_id > ? ORDER BY snapshot_id",
            [first - 1],
        ).fetchall()
    assert second == first + 1
    assert labels == [(first, "nightly run-one", "run-one"), (second, "nightly run-two", "run-two")]
    with connect_as_of(home, "run-one") as before:
        assert before.execute(COUNTS).fetchall()[0] == (30, 20, 1, 1)
    with connect_as_of(home, None) as now:
        assert now.execute(COUNTS).fetchall()[0] == (60, 40, 2, 2)


def test_a_night_that_never_commits_shows_nothing_and_its_files_are_removed(
    tmp_path: Path,
) -> None:
    home = Home.at(tmp_path / "home")
    writer = open_lake(home)
    commit_night(writer, night(writer, home, "run-one"))
    # A night killed during its commit: its workers' data files written, registered in a
    # transaction that never commits.
    dying = night(writer, home, "run-dies")
    writer.execute("BEGIN")
    register_files(writer, "articles", dying.files["articles"])
    writer.close()  # gone without a commit, as a killed process is
    stray = sorted(dying.files["articles"])
    assert stray and all(Path(path).exists() for path in stray)
    with lake_connection(home) as analyst:
        assert analyst.execute(COUNTS).fetchall()[0] == (30, 20, 1, 1)
    with open_lake(home) as next_run:
        assert sorted(orphaned_data_files(next_run)) == stray
        recover(home, next_run)
        assert orphaned_data_files(next_run) == []
        assert not any(Path(path).exists() for path in stray)
        assert next_run.execute(COUNTS).fetchall()[0] == (30, 20, 1, 1)


def test_compactions_between_nights_keep_every_snapshot_whole_and_inline_nothing(
    tmp_path: Path,
) -> None:
    """Compaction after each night (as each night ends) leaves every snapshot, read again by
    time travel, made of whole nights; and no writer inlines rows into the catalog, whose
    flush (compaction's first step) published its snapshot before it was whole: a reader then
    counted rows twice or not at all (docs/decisions.md)."""
    home = Home.at(tmp_path / "home")
    nights = 8
    with open_lake(home) as writer:
        for n in range(nights):
            commit_night(writer, night(writer, home, f"run-{n:03d}"))
            compact(writer, retention_days=7)  # merges; expires none
        found = writer.execute(
            "SELECT snapshot_id FROM wh.snapshots() WHERE snapshot_id > 0 ORDER BY 1"
        ).fetchall()
        snapshots = [row[0] for row in found]
    seen = []
    with lake_connection(home) as analyst:
        for snapshot_id in snapshots:
            pinned = COUNTS.replace("FROM runs", f"FROM runs AT (VERSION => {snapshot_id})")
            for table in ("articles", "duplicates", "files"):
                pinned = pinned.replace(
                    f"FROM {table})", f"FROM {table} AT (VERSION => {snapshot_id}))"
                )
            seen.append(tuple(analyst.execute(pinned).fetchall()[0]))
    catalog = home.catalog_spec.removeprefix("sqlite:")
    with closing(sqlite3.connect(catalog)) as con:  # DuckLake's tables of inlined rows
        inlined = con.execute("SELECT count(*) FROM ducklake_inlined_data_tables").fetchall()
    assert len(snapshots) > nights  # each night's, and the compactions' own
    assert seen[-1] == (SHAPE[0] * nights, SHAPE[1] * nights, nights, nights)
    assert [counts for counts in seen if not _consistent(counts)] == []
    assert inlined == [(0,)]
