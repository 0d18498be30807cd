"""A query sees whole runs: the ones visible when it started, never part of one being committed."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from transforms.records import SCHEMAS, table_of
from warehouse.catalog import lake_connection
from warehouse.home import Home
from warehouse.lake import (
    ensure_tables,
    marker_path,
    part_path,
    wait_until_visible,
    write_parquet_atomically,
)
from warehouse.loader import append_rows, commit_run
from warehouse.recovery import recover

COUNTS = (
    "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM duplicates), "
    "(SELECT count(*) FROM files), (SELECT count(*) FROM runs WHERE status = 'succeeded')"
)
# Rows each run adds to articles, duplicates and files.
SHAPE = (3, 2, 1)


def _row(table: str, **values: Any) -> dict[str, Any]:
    return {name: values.get(name) for name in SCHEMAS[table].names}


def _write_run_files(home: Home, run_id: str) -> None:
    """A run's data files, in the order the nightly load writes them, without its marker."""
    articles = [_row("articles", article_id=f"{run_id}-{i}", run_id=run_id) for i in range(3)]
    path = part_path(home, "articles", run_id, f"published_month=2024-{len(run_id) % 12 + 1:02d}")
    write_parquet_atomically(table_of(articles, SCHEMAS["articles"]), path)
    append_rows(
        home,
        run_id,
        {
            "duplicates": [
                _row("duplicates", dump_file=f"{run_id}/d{i}", run_id=run_id) for i in range(2)
            ],
            "files": [_row("files", dump_file=f"{run_id}/f", run_id=run_id)],
        },
    )


def _run_row(run_id: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return _row("runs", run_id=run_id, status="succeeded", started_at=now, finished_at=now)


def _consistent(counts: tuple[int, ...]) -> bool:
    *tables, runs = counts
    return all(rows == size * runs for rows, size in zip(tables, SHAPE, strict=True))


def test_a_long_open_session_never_sees_part_of_a_commit(tmp_path: Path) -> None:
    home = Home.at(tmp_path / "home")
    ensure_tables(home)
    runs = 40

    def nights() -> None:
        for night in range(runs):
            run_id = f"run-{night:03d}"
            _write_run_files(home, run_id)
            wait_until_visible(commit_run(home, _run_row(run_id), delay_seconds=0.02))

    writer = threading.Thread(target=nights)
    seen: list[tuple[int, ...]] = []
    with lake_connection(home) as analyst:  # opened once, as a notebook keeps it
        writer.start()
        while writer.is_alive():
            seen.append(tuple(analyst.execute(COUNTS).fetchall()[0]))
        writer.join()
        final = tuple(analyst.execute(COUNTS).fetchall()[0])
    assert final == (3 * runs, 2 * runs, runs, runs)
    assert len(set(seen)) > 3, "the reader should have watched several commits land"
    assert [counts for counts in seen if not _consistent(counts)] == []


def test_a_run_appears_at_its_visible_at_and_the_next_run_waits_for_it(tmp_path: Path) -> None:
    home = Home.at(tmp_path / "home")
    ensure_tables(home)
    _write_run_files(home, "run-killed")
    # a run killed between writing its marker and the moment its rows become visible
    marker = {**_run_row("run-killed"), "visible_at": datetime.now(UTC) + timedelta(seconds=1)}
    write_parquet_atomically(table_of([marker], SCHEMAS["runs"]), marker_path(home, "run-killed"))
    with lake_connection(home) as con:
        assert con.execute(COUNTS).fetchall()[0] == (0, 0, 0, 0)
        recover(home)  # the next night starts: it must find the killed run's rows in its ledger
        assert con.execute(COUNTS).fetchall()[0] == (3, 2, 1, 1)


def test_inside_a_transaction_every_query_sees_the_same_runs(tmp_path: Path) -> None:
    home = Home.at(tmp_path / "home")
    ensure_tables(home)
    _write_run_files(home, "run-one")
    commit_run(home, _run_row("run-one"))
    with lake_connection(home) as analyst:
        analyst.execute("BEGIN")
        assert analyst.execute(COUNTS).fetchall()[0] == (3, 2, 1, 1)
        _write_run_files(home, "run-two")
        commit_run(home, _run_row("run-two"))
        assert analyst.execute(COUNTS).fetchall()[0] == (3, 2, 1, 1)
        analyst.execute("COMMIT")
        assert analyst.execute(COUNTS).fetchall()[0] == (6, 4, 2, 2)


def test_an_old_home_gets_the_new_runs_column(tmp_path: Path) -> None:
    home = Home.at(tmp_path / "home")
    ensure_tables(home)
    old = SCHEMAS["runs"].remove(SCHEMAS["runs"].get_field_index("visible_at"))
    placeholder = home.table_dir("runs") / "_schema.parquet"
    write_parquet_atomically(old.empty_table(), placeholder)
    write_parquet_atomically(
        pa.Table.from_pylist([_run_row("run-old")], schema=old), marker_path(home, "run-old")
    )
    with lake_connection(home) as con:  # rewrites the placeholder, then reads both
        assert con.execute("SELECT run_id, visible_at FROM runs").fetchall() == [("run-old", None)]
