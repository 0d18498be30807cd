"""Rollback (refused when a later night depends, cascading on request) and compaction, also of
a lake partitioned as before issue 22."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.warehouse.synthetic import night, row
from warehouse.catalog import ALIAS, connect_as_of, open_lake
from warehouse.home import Home
from warehouse.loader import commit_night
from warehouse.maintenance import (
    RollbackRefused,
    compact,
    data_files,
    needs_compaction,
    rollback,
)

COUNTS = "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM duplicates)"


def op_row(run_id: str = "rollback-test") -> dict[str, Any]:
    """The rollback operation's own runs row."""
    now = datetime.now(UTC)
    return row("runs", run_id=run_id, kind="rollback", status="succeeded", started_at=now)


def test_a_night_others_depend_on_is_refused_then_cascades_newest_first(tmp_path: Path) -> None:
    home = Home.at(tmp_path)
    with open_lake(home) as lake:
        commit_night(lake, night(lake, home, "n1"))
        commit_night(lake, night(lake, home, "n2", copies_of="n1"))  # copies of n1's articles
        commit_night(lake, night(lake, home, "n3"))  # depends on nothing
        with pytest.raises(RollbackRefused, match="n2 hold duplicates"):
            rollback(lake, "n1", op_row())
        assert lake.execute(COUNTS).fetchall() == [(90, 60)]  # refused: nothing changed
        done = rollback(lake, "n1", op_row(), cascade=True)
        assert list(done.nights) == ["n2", "n1"]  # newest first
        assert lake.execute(COUNTS).fetchall() == [(30, 20)]  # n3's rows alone
        statuses = dict(lake.execute("SELECT run_id, status FROM runs").fetchall())
    assert statuses == {
        "n1": "rolled_back",
        "n2": "rolled_back",
        "n3": "succeeded",
        "rollback-test": "succeeded",
    }
    with connect_as_of(home, "n3") as before:  # time travel still sees the nights
        assert before.execute(COUNTS).fetchall() == [(90, 60)]


def test_only_succeeded_nights_roll_back(tmp_path: Path) -> None:
    home = Home.at(tmp_path)
    with open_lake(home) as lake:
        commit_night(lake, night(lake, home, "n1"))
        rollback(lake, "n1", op_row("rollback-1"))
        with pytest.raises(RollbackRefused, match="status rolled_back"):
            rollback(lake, "n1", op_row("rollback-2"))
        with pytest.raises(RollbackRefused, match="no run nope"):
            rollback(lake, "nope", op_row("rollback-3"))


def test_small_files_pile_up_and_compaction_merges_them(tmp_path: Path) -> None:
    home = Home.at(tmp_path)
    with open_lake(home) as lake:
        nights = 0
        while not needs_compaction(lake):
            commit_night(lake, night(lake, home, f"n{nights:02d}"))
            nights += 1
            assert nights < 40, "compaction never became due"
        before = data_files(lake, "articles")
        done = compact(lake, retention_days=30)
        assert data_files(lake, "articles") == 12 < before  # one file per month of 2024
        assert done.files_after < done.files_before and done.snapshots_expired == 0
        assert not needs_compaction(lake)
        assert lake.execute(COUNTS).fetchall() == [(30 * nights, 20 * nights)]
        assert done.files_deleted == 0  # merged-away files stay for the retention's snapshots
        with connect_as_of(home, "n00") as first:
            assert first.execute(COUNTS).fetchall() == [(30, 20)]
        expired = compact(lake, retention_days=0)  # past the retention: snapshots expire
        assert expired.snapshots_expired > 0 and expired.files_deleted > 0
        assert lake.execute(COUNTS).fetchall() == [(30 * nights, 20 * nights)]


def test_a_lake_partitioned_by_year_and_month_takes_new_nights_by_month(tmp_path: Path) -> None:
    home = Home.at(tmp_path)
    with open_lake(home) as lake:  # made as lakes were before: by year and month of the time
        lake.execute(
            "ALTER TABLE articles SET PARTITIONED BY (year(published_at), month(published_at))"
        )
        lake.execute(
            "INSERT INTO articles (article_id, dump_file, run_id, published_at, published_month) "
            "SELECT 'old-' || i, 'old/a' || i, 'old', t, strftime(t, '%Y-%m') FROM ("
            "SELECT i, make_timestamptz(2024, 1 + i % 12, 1 + i % 28, 0, 0, 0) AS t "
            "FROM range(30) r(i))"
        )
    with open_lake(home) as lake:  # opened by this version: new files by month
        for n in range(3):
            commit_night(lake, night(lake, home, f"n{n}"))
        added = [
            path
            for (path,) in lake.execute(
                f"SELECT data_file FROM ducklake_list_files('{ALIAS}', 'articles')"
            ).fetchall()
            if "wirehouse-n" in path
        ]
        assert len(added) == 36 and all("/published_month=2024-" in path for path in added)
        compact(lake, retention_days=30)
        months = lake.execute(
            f"SELECT count(*) FROM ducklake_list_files('{ALIAS}', 'articles') "
            "WHERE data_file LIKE '%published_month=%'"
        ).fetchall()
        assert months == [(12,)]  # the new nights' files merged, one per month
        assert lake.execute(COUNTS).fetchall() == [(120, 60)]
        by_month = lake.execute(
            "SELECT published_month, count(*) FROM articles WHERE published_month = '2024-03' "
            "GROUP BY ALL"
        ).fetchall()
        assert by_month == [("2024-03", 12)]  # 3 of the old lake's, 3 of each new night's
        old = lake.execute(
            "SELECT count(*) FROM articles WHERE year(published_at) = 2024"
        ).fetchall()
        assert old == [(120,)]
