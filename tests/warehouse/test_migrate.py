"""Migrating a home of the Parquet layout (built by commit d633697) to DuckLake: nothing lost."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tests.conftest import CASES, REPO
from transforms.minhash import signatures
from warehouse import migrate as migration
from warehouse.catalog import connect
from warehouse.home import Home
from warehouse.migrate import BACKUP, Migrated, migrate, needs_migration
from warehouse.nearindex import history_matches
from warehouse.verify import verify

CASE = CASES / "legacy-home"
EXPECTED: dict[str, Any] = json.loads((CASE / "EXPECTED.json").read_text())
RUNS = EXPECTED["run_ids"]
OLD_FILES = (
    "lake/runs/{run}.parquet",
    "lake/duplicates/{run}.parquet",
    "lake/files/{run}.parquet",
    "lake/_minhash/v1-k3c4-p128-b32x3/signatures/{run}.npy",
    "archive/index/{run}.parquet",
)
INDEX_COUNTS = {"archive_index": EXPECTED["archive_index"]}
INDEX_COUNTS["minhash_signatures"] = EXPECTED["minhash_signatures"]


@pytest.fixture
def legacy(tmp_path: Path) -> Home:
    """A copy of the legacy home, with a views-only warehouse.duckdb as the old code left one."""
    root = tmp_path / "home"
    shutil.copytree(CASE, root, ignore=shutil.ignore_patterns("EXPECTED.json", "README.md"))
    with duckdb.connect(str(root / "warehouse.duckdb")) as con:
        con.execute(f"CREATE VIEW runs AS SELECT * FROM read_parquet('{root}/lake/runs/*.parquet')")
    return Home.at(root)


def counts(home: Home) -> dict[str, int]:
    """Rows per table, read through the analysts' read-only connection."""
    with connect(home) as con:
        return migration.lake_counts(con)


def query(home: Home, sql: str) -> list[tuple[Any, ...]]:
    """A query's rows, read-only."""
    with connect(home) as con:
        return con.execute(sql).fetchall()


def expected_counts(extra_runs: int = 1) -> dict[str, int]:
    """The old views' counts, the index tables', and the migration's own run."""
    want = {**EXPECTED["counts"], **INDEX_COUNTS}
    want["runs"] += extra_runs
    return want


def assert_migrated(home: Home) -> None:
    """Every table as the old views showed it, the old files in the backup, the lake sound."""
    got = counts(home)
    assert {t: got[t] for t in expected_counts()} == expected_counts()
    ids = [r[0] for r in query(home, "SELECT article_id FROM articles ORDER BY article_id")]
    assert ids == EXPECTED["article_ids"]
    runs = query(home, "SELECT run_id, kind, status FROM runs ORDER BY started_at")
    assert [r[0] for r in runs[:-1]] == RUNS
    assert runs[-1][0].startswith("migrate-") and runs[-1][1:] == ("migrate", "succeeded")
    assert not needs_migration(home)
    assert verify(home) == []
    for pattern in OLD_FILES:
        for run in RUNS[1:]:
            assert (home.root / BACKUP / pattern.format(run=run)).is_file()
            assert not (home.root / pattern.format(run=run)).exists()
    assert (home.root / BACKUP / "warehouse.duckdb").is_file()
    assert [p.name for p in home.lake.iterdir()] == ["main"]
    assert len(list((Path(home.archive) / "packs").glob("*.pack"))) == len(RUNS)


def test_an_old_home_needs_migration_and_a_new_or_empty_one_does_not(
    legacy: Home, tmp_path: Path
) -> None:
    assert needs_migration(legacy)
    assert not needs_migration(Home.at(tmp_path / "empty"))
    assert not (legacy.root / "catalog.sqlite").exists()  # asking creates nothing


def test_migrate_keeps_every_row_as_the_old_views_showed_it(legacy: Home) -> None:
    done = migrate(legacy)
    assert done.committed and done.run_id.startswith("migrate-")
    assert done.before == {**expected_counts(0), "minhash_bands": done.before["minhash_bands"]}
    # the old layout had no search index: the migration makes it
    indexed = {"search_documents": done.before["articles"]}
    indexed["search_postings"] = done.after["search_postings"]
    assert done.after == {**done.before, "runs": done.before["runs"] + 1, **indexed}
    assert done.backup == legacy.root / BACKUP
    assert_migrated(legacy)
    months = dict(query(legacy, "SELECT published_month, count(*) FROM articles GROUP BY 1"))
    assert months == EXPECTED["articles_per_month"]
    kinds = dict(query(legacy, "SELECT kind, count(*) FROM duplicates GROUP BY 1"))
    assert kinds == EXPECTED["duplicates_by_kind"]
    statuses = dict(query(legacy, "SELECT status, count(*) FROM files GROUP BY 1"))
    assert statuses == EXPECTED["files_by_status"]
    sources = query(legacy, "SELECT DISTINCT published_at_source FROM articles")
    assert sources == [("page",)]  # the old parsers only read times off the page


def test_the_migration_is_one_snapshot_named_after_its_run(legacy: Home) -> None:
    done = migrate(legacy)
    with connect(legacy) as con:
        rows = con.execute(
            "SELECT commit_message, json_extract_string(commit_extra_info, '$.run_id') "
            "FROM wh.snapshots() WHERE changes::VARCHAR LIKE '%inserted%'"
        ).fetchall()
    assert rows == [("migrate from the Parquet layout", done.run_id)]


def test_the_near_duplicate_index_finds_migrated_articles(legacy: Home) -> None:
    migrate(legacy)
    rows = query(legacy, "SELECT article_id, body FROM articles ORDER BY article_id")
    sigs = signatures([body for _id, body in rows])
    with connect(legacy) as con:
        matches = history_matches(con, sigs)
    itself = {(rows[m.night][0], m.article_id) for m in matches if m.similarity == 1.0}
    assert {(a, a) for a, _body in rows} <= itself


def test_migrating_again_is_a_no_op(legacy: Home) -> None:
    migrate(legacy)
    snapshots = query(legacy, "SELECT count(*) FROM wh.snapshots()")
    again = migrate(legacy)
    assert again == Migrated("", {}, {}, legacy.root / BACKUP)
    assert query(legacy, "SELECT count(*) FROM wh.snapshots()") == snapshots
    assert_migrated(legacy)


def test_a_migration_killed_after_its_commit_only_finishes_the_move(
    legacy: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    def killed(home: Home, packs: set[str]) -> tuple[Path, ...]:
        raise KeyboardInterrupt("killed before the move")

    with monkeypatch.context() as patch:
        patch.setattr(migration, "move_old_files", killed)
        with pytest.raises(KeyboardInterrupt):
            migrate(legacy)
    assert counts(legacy)["articles"] == EXPECTED["counts"]["articles"]
    assert (legacy.lake / "runs" / f"{RUNS[0]}.parquet").is_file()
    assert needs_migration(legacy)
    done = migrate(legacy)
    assert not done.committed and done.moved
    assert_migrated(legacy)  # nothing inserted twice


def test_a_migration_failing_before_its_commit_leaves_nothing_visible(
    legacy: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(migration, "copy_near_index", broken)
        with pytest.raises(OSError, match="disk full"):
            migrate(legacy)
    assert counts(legacy) == dict.fromkeys(counts(legacy), 0)
    assert needs_migration(legacy) and not (legacy.root / BACKUP).exists()
    assert migrate(legacy).committed
    assert_migrated(legacy)


def test_rows_of_failed_or_uncommitted_runs_stay_out_and_reports_give_the_kind(
    legacy: Home,
) -> None:
    failed, killed = "20261130T000000Z-failed", "20261203T000000Z-killed"
    marker = pq.read_table(legacy.lake / "runs" / f"{RUNS[0]}.parquet")
    marker = marker.drop_columns(["flow_run_id", "max_failure_ratio"])  # an older marker
    marker = marker.set_column(0, "run_id", pa.array([failed])).set_column(
        marker.schema.get_field_index("status"), "status", pa.array(["failed"])
    )
    pq.write_table(marker, legacy.lake / "runs" / f"{failed}.parquet")
    for run in (failed, killed):  # rows of a failed night, and of one with no marker
        rows = pq.read_table(legacy.lake / "duplicates" / f"{RUNS[1]}.parquet")
        rows = rows.set_column(
            rows.schema.get_field_index("run_id"),
            "run_id",
            pc.replace_substring(rows.column("run_id"), RUNS[1], run),
        )
        pq.write_table(rows, legacy.lake / "duplicates" / f"{run}.parquet")
    legacy.reports.mkdir()
    (legacy.reports / f"{RUNS[0]}.json").write_text(json.dumps({"kind": "backfill"}))
    migrate(legacy)
    got = counts(legacy)
    assert got["duplicates"] == EXPECTED["counts"]["duplicates"]
    assert got["runs"] == len(RUNS) + 2
    kinds = {r[0]: r[1:] for r in query(legacy, "SELECT run_id, kind, max_failure_ratio FROM runs")}
    assert kinds[RUNS[0]] == ("backfill", 0.5)
    assert (kinds[RUNS[1]], kinds[failed]) == (("nightly", 0.5), ("nightly", None))
    assert (legacy.root / BACKUP / "lake" / "duplicates" / f"{killed}.parquet").is_file()


_MIGRATE = "import sys; from warehouse.home import Home; from warehouse.migrate import migrate; "
_MIGRATE += "migrate(Home.at(sys.argv[1]))"


def test_killed_at_any_point_a_rerun_converges(
    legacy: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "checkpoints.log"
    probe = tmp_path / "probe"
    shutil.copytree(legacy.root, probe)
    monkeypatch.setenv("WIREHOUSE_CHECKPOINT_LOG", str(log))
    migrate(Home.at(probe))
    monkeypatch.delenv("WIREHOUSE_CHECKPOINT_LOG")
    points = log.read_text().split()
    assert points[:2] == ["migrate:copied", "migrate:committed"]
    # The first time each point is passed, and the last point (all moved, orphans not removed)
    kills = sorted({points.index(name) + 1 for name in points} | {len(points)})
    for n in kills:
        root = tmp_path / f"kill-{n}"
        shutil.copytree(legacy.root, root)
        env = {**os.environ, "WIREHOUSE_CRASH_AT": str(n)}
        child = subprocess.run(
            [sys.executable, "-c", _MIGRATE, str(root)], cwd=REPO, env=env, check=False
        )
        assert child.returncode == -9, f"not killed at {points[n - 1]}"
        home = Home.at(root)
        assert needs_migration(home) == (n < len(points)), points[n - 1]  # last: all moved
        migrate(home)
        assert_migrated(home)
