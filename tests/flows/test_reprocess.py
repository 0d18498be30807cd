"""`reprocess`: what the current parser builds from the same files in the same nights."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

import transforms.batch
from flows.nightly import nightly_ingest
from flows.operations import compact_lake, rollback_night
from flows.reprocess import reprocess_archive
from tests.state import snapshot
from transforms.parse import parse_dump
from transforms.records import Article, ParseResult, Rejection
from warehouse.catalog import ALIAS, lake_connection
from warehouse.home import Home
from warehouse.verify import verify

pytestmark = pytest.mark.usefixtures("prefect_server")
TABLES = ("articles", "duplicates", "quarantine", "files", "runs")


@pytest.fixture(autouse=True)
def _settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIREHOUSE_BUILD_DOCS", "0")
    monkeypatch.setenv("WIREHOUSE_PARSE_PROCESSES", "1")  # parsed in this process


def two_nights(sample_inbox: Path, home: Path, tmp_path: Path) -> None:
    """The 2019 dumps one night, the whole sample inbox the next."""
    first = tmp_path / "night1"
    shutil.copytree(sample_inbox / "2019", first / "2019")
    nightly_ingest(inbox=str(first), home=str(home))
    nightly_ingest(inbox=str(sample_inbox), home=str(home))


def every_row(home: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, lineage included."""
    with lake_connection(Home.at(home)) as con:
        return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES}


def broken_chinaview(text: str, captured_at: Any = None) -> ParseResult:
    """The parser as a bad release left it: the 2008 chinaview.cn pages fail."""
    result = parse_dump(text, captured_at)
    if isinstance(result, Article) and result.layout == "chinaview-2008":
        return Rejection("not_an_article", "Broken by a bad release.", "chinaview-2008")
    return result


def test_an_unchanged_parser_changes_no_row(sample_inbox: Path, home: Path, tmp_path: Path) -> None:
    two_nights(sample_inbox, home, tmp_path)
    before = every_row(home)
    done = reprocess_archive(home=str(home))
    assert len(done["nights"]) == 2
    after = every_row(home)
    runs = {row[0]: row for row in after.pop("runs")}
    assert after == {t: rows for t, rows in before.items() if t != "runs"}
    assert runs[done["run_id"]][2] == "reprocess"  # kind
    assert {r[0]: r for r in before["runs"]} == {
        k: v for k, v in runs.items() if k != done["run_id"]
    }
    assert verify(Home.at(home)) == []


def test_a_parser_fix_reaches_the_nights_loaded_before(
    sample_inbox: Path, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean = tmp_path / "clean"
    two_nights(sample_inbox, clean, tmp_path / "a")
    with monkeypatch.context() as broken:
        broken.setattr(transforms.batch, "parse_dump", broken_chinaview)
        two_nights(sample_inbox, home, tmp_path / "b")
    with lake_connection(Home.at(home)) as con:
        assert con.execute(
            "SELECT count(*) FROM articles WHERE layout = 'chinaview-2008'"
        ).fetchall() == [(0,)]
    assert snapshot(home) != snapshot(clean)
    done = reprocess_archive(layout="chinaview-2008", home=str(home))
    assert list(done["nights"]) and snapshot(home) == snapshot(clean)
    assert verify(Home.at(home)) == []


def test_a_reprocess_after_a_compaction_and_a_rollback_leaves_no_stray_file(
    sample_inbox: Path, home: Path, tmp_path: Path
) -> None:
    """The nights' `runs` rows merged into one file, which a rollback changed: the replay
    writes three nights' counts there, and leaves no delete file unreferenced."""
    for folder in ("2019", "xinhua-2008", "xinhua-zh"):
        shutil.copytree(sample_inbox / folder, tmp_path / folder / folder)
        nightly_ingest(inbox=str(tmp_path / folder), home=str(home))
    last = nightly_ingest(inbox=str(sample_inbox), home=str(home))
    compact_lake(home=str(home))
    with lake_connection(Home.at(home)) as con:
        files = con.execute(f"SELECT count(*) FROM ducklake_list_files('{ALIAS}', 'runs')")
        assert files.fetchall() == [(1,)]  # the four nights' rows in one file
    rollback_night(last["run_id"], home=str(home))  # its row stays, rolled back
    done = reprocess_archive(home=str(home))
    assert len(done["nights"]) == 3
    assert verify(Home.at(home)) == []
