"""`wirehouse sql` only reads: DuckLake's functions that delete files or change the catalog are
refused even on a read-only attachment, where DuckLake itself would delete files first."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flows.cli import main
from flows.nightly import nightly_ingest
from tests.conftest import SAMPLES
from warehouse.catalog import lake_connection
from warehouse.home import Home

pytestmark = pytest.mark.usefixtures("prefect_server")

SCHEDULED = "SELECT path FROM __ducklake_metadata_wh.ducklake_files_scheduled_for_deletion"


def files_of(root: Path) -> list[Path]:
    """Every file under a folder."""
    return sorted(path for path in root.rglob("*") if path.is_file())


@pytest.fixture(scope="module")
def lake_with_old_files(tmp_path_factory: pytest.TempPathFactory, prefect_server: None) -> Path:
    """A warehouse whose expired snapshots left data files scheduled for deletion (shared: the
    tests change nothing)."""
    tmp_path = tmp_path_factory.mktemp("readonly")
    shutil.copytree(SAMPLES, tmp_path / "inbox")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WIREHOUSE_BUILD_DOCS", "0")
        nightly_ingest(inbox=str(tmp_path / "inbox"), home=str(tmp_path / "home"))
    with lake_connection(Home.at(tmp_path / "home"), read_only=False) as con:
        # a second copy of the articles' files, merged with the first: the first are replaced
        con.execute("INSERT INTO articles SELECT * FROM articles")
        con.execute("CALL ducklake_merge_adjacent_files('wh', 'articles')")
        con.execute("CALL ducklake_expire_snapshots('wh', older_than => now())")
        assert con.execute(SCHEDULED).fetchall(), "no file scheduled: the test proves nothing"
    return tmp_path / "home"


def test_sql_refuses_the_lake_functions_that_change_it(
    lake_with_old_files: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    home = lake_with_old_files
    files = files_of(home / "lake")
    for query in (
        "SELECT * FROM ducklake_cleanup_old_files('wh', cleanup_all => true)",
        "SELECT * FROM DuckLake_Cleanup_Old_Files('wh', cleanup_all => true)",
        "EXPLAIN ANALYZE SELECT * FROM ducklake_cleanup_old_files('wh', cleanup_all => true)",
        "WITH c AS (SELECT * FROM ducklake_cleanup_old_files('wh', cleanup_all => true)) "
        "SELECT count(*) FROM c",
        "SELECT (SELECT count(*) FROM ducklake_delete_orphaned_files('wh', cleanup_all => true))",
        "SELECT * FROM wh.merge_adjacent_files()",
        "SELECT * FROM sqlite_query('__ducklake_metadata_wh', 'DELETE FROM ducklake_snapshot')",
        "SELECT * FROM postgres_execute('__ducklake_metadata_wh', 'DELETE FROM ducklake_snapshot')",
        "SELECT * FROM query('SELECT * FROM ducklake_cleanup_old_files(''wh'', "
        "cleanup_all => true)')",
    ):
        assert main(["--home", str(home), "sql", query]) == 2, query
        out, err = capfd.readouterr()
        assert "Traceback" not in out + err and err.startswith("error: "), err
        assert any(why in err for why in ("read-only", "runs SQL", "catalog's database")), err
    assert files_of(home / "lake") == files
    with lake_connection(Home.at(home)) as con:
        assert con.execute(SCHEDULED).fetchall()


def test_sql_still_reads_the_lake_its_files_snapshots_and_old_versions(
    lake_with_old_files: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    home = ["--home", str(lake_with_old_files), "sql", "--format", "csv"]
    with lake_connection(Home.at(lake_with_old_files)) as con:
        version = con.execute("SELECT max(snapshot_id) FROM wh.snapshots()").fetchall()[0][0]
    for query, expected in (
        ("SELECT count(*) > 0 FROM articles", "True"),
        ("SELECT count(*) > 0 FROM wh.snapshots()", "True"),
        ("SELECT count(*) > 0 FROM ducklake_list_files('wh', 'articles')", "True"),
        (f"SELECT count(*) > 0 FROM articles AT (VERSION => {version})", "True"),
        (
            f"SELECT count(*) > 0 FROM read_parquet('{lake_with_old_files}/lake/main/articles/"
            "**/*.parquet')",
            "True",
        ),
        ("EXPLAIN SELECT count(*) FROM articles", "physical_plan"),
    ):
        assert main([*home, query]) == 0, capfd.readouterr()
        out, _ = capfd.readouterr()
        assert expected in out, (query, out)
