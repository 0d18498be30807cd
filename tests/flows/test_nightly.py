"""The nightly flow end to end, under a real Prefect server, over the real sample dumps."""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import warehouse
from flows.nightly import NightFailed, nightly_ingest
from tests.conftest import CASES
from tests.state import snapshot
from warehouse.archive import read_archived
from warehouse.catalog import lake_connection
from warehouse.home import Home
from warehouse.verify import verify, violations

pytestmark = pytest.mark.usefixtures("prefect_server")

SEED = "2019/05/000_c903989559a3121d.txt"


@pytest.fixture(autouse=True)
def _no_docs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIREHOUSE_BUILD_DOCS", "0")


def ingest(inbox: Path, home: Path, **kwargs: Any) -> dict[str, Any]:
    """One nightly run."""
    return nightly_ingest(inbox=str(inbox), home=str(home), **kwargs)


def seed_only_night(sample_inbox: Path, folder: Path, name: str = SEED) -> Path:
    """An inbox holding one dump of the sample inbox, at the same relative name."""
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(sample_inbox / name, folder / name)
    return folder


def query(home: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows from the warehouse, opened the way an analyst's notebook would."""
    with warehouse.connect(home) as con:
        return con.execute(sql).fetchall()


def test_samples_land_with_every_dump_accounted_for(sample_inbox: Path, home: Path) -> None:
    summary = ingest(sample_inbox, home)
    assert summary["status"] == "succeeded"
    inbox_files = sorted(
        p.relative_to(sample_inbox).as_posix() for p in sample_inbox.rglob("*.txt")
    )
    ledger = query(home, "SELECT dump_file, status FROM files ORDER BY dump_file")
    assert [name for name, _ in ledger] == inbox_files
    with lake_connection(Home.at(home)) as con:
        assert violations(con) == []
    # raw bytes kept, content-addressed
    with lake_connection(Home.at(home)) as con:
        for name, sha in con.execute("SELECT dump_file, dump_sha256 FROM files").fetchall():
            assert read_archived(Home.at(home), con, sha) == (sample_inbox / name).read_bytes()
    counts = summary["counts"]
    assert counts["articles"] + counts["duplicates"] + counts["quarantined"] == len(inbox_files)
    # Pages of other outlets that state no time load undated, counted apart, in their partition.
    undated = query(
        home,
        "SELECT published_month, layout, count(*) FROM articles "
        "WHERE published_at IS NULL GROUP BY ALL",
    )
    assert undated == [("undated", "generic", counts["undated"])]
    assert counts["undated"] > 0
    sources = query(
        home,
        "SELECT count(*) FROM articles WHERE published_at_source = 'none' "
        "AND published_month = 'undated'",
    )
    assert sources == [(counts["undated"],)]


def test_seed_article_has_every_field_right(sample_inbox: Path, home: Path) -> None:
    ingest(sample_inbox, home)
    expected = json.loads((CASES / "golden" / "seed.json").read_text())
    [row] = query(
        home,
        "SELECT source, title, published_at, editor, dateline, body, captions, word_count, "
        "language, page_code, published_month, layout, parser_version, dump_sha256, article_id "
        f"FROM articles WHERE dump_file = '{SEED}'",
    )
    (
        source,
        title,
        published_at,
        editor,
        dateline,
        body,
        captions,
        words,
        language,
        code,
        month,
        layout,
        version,
        sha,
        article_id,
    ) = row
    assert published_at == datetime(2019, 5, 1, 20, 38, 54, tzinfo=UTC)
    assert (source, title, editor, dateline) == (
        expected["source"],
        expected["title"],
        expected["editor"],
        expected["dateline"],
    )
    assert body == expected["body"]
    assert body.split("\n\n") == expected["paragraphs"]
    assert captions == expected["captions"]
    assert (words, language, code, month) == (
        expected["word_count"],
        expected["language"],
        expected["page_code"],
        expected["published_month"],
    )
    assert layout == "xinhua-2019" and version and len(sha) == 64
    assert article_id == sha[:24]


def test_copies_of_the_seed_point_at_it(sample_inbox: Path, home: Path) -> None:
    ingest(sample_inbox, home)
    [(seed_id,)] = query(home, f"SELECT article_id FROM articles WHERE dump_file = '{SEED}'")
    dups = dict(
        (name, (of, kind))
        for name, of, kind in query(home, "SELECT dump_file, duplicate_of, kind FROM duplicates")
    )
    assert dups["2019/05/002_8d0c6b1f2e7a9c35.txt"] == (seed_id, "same_page")
    assert dups["redelivered/2019-05-03/001_5a1e9b0c3d2f4e61.txt"] == (seed_id, "same_page")
    # the chinaview pages arrive twice, byte for byte: the first path is kept
    same_file = {n: of for n, (of, kind) in dups.items() if kind == "same_file"}
    assert len(same_file) == 5
    for name, of in same_file.items():
        assert name.startswith("xinhua-2008/") or name.startswith("web-pages/")
        [(kept,)] = query(home, f"SELECT dump_file FROM articles WHERE article_id = '{of}'")
        assert kept < name


def test_rerun_changes_nothing(sample_inbox: Path, home: Path) -> None:
    ingest(sample_inbox, home)
    before = snapshot(home)
    second = ingest(sample_inbox, home)
    assert second["counts"]["files"] == 0
    assert second["counts"]["already_recorded"] == len(list(sample_inbox.rglob("*.txt")))
    assert snapshot(home) == before
    assert [s for (s,) in query(home, "SELECT status FROM runs")] == ["succeeded"] * 2


def test_same_inputs_in_another_order_give_the_same_warehouse(
    sample_inbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_home, second_home = tmp_path / "a", tmp_path / "b"
    monkeypatch.setenv("WIREHOUSE_PARSE_PROCESSES", "1")
    ingest(sample_inbox, first_home)  # one batch, worked in the flow's process
    # arrival order reversed (mtimes), other batch boundaries, worked by two worker processes
    files = sorted(sample_inbox.rglob("*.txt"))
    for age, path in enumerate(files):
        os.utime(path, (1_600_000_000 + age, 1_600_000_000 + age))
    monkeypatch.setenv("WIREHOUSE_BATCH_SIZE", "7")
    monkeypatch.setenv("WIREHOUSE_PARSE_PROCESSES", "2")
    monkeypatch.setenv("WIREHOUSE_POOL_MIN_BYTES", "0")  # a pool even for so small a night
    ingest(sample_inbox, second_home)
    assert snapshot(first_home) == snapshot(second_home)


def test_history_wins_over_a_later_night(sample_inbox: Path, home: Path, tmp_path: Path) -> None:
    night1 = seed_only_night(sample_inbox, tmp_path / "night1", "2019/05/002_8d0c6b1f2e7a9c35.txt")
    ingest(night1, home)
    [(kept_id,)] = query(home, "SELECT article_id FROM articles")
    ingest(sample_inbox, home)
    [(of, kind)] = query(
        home, f"SELECT duplicate_of, kind FROM duplicates WHERE dump_file = '{SEED}'"
    )
    assert (of, kind) == (kept_id, "same_page")


def test_a_broken_parser_night_fails_and_loads_nothing(home: Path, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i in range(30):  # pages of a layout nobody parses: no title, no time, no prose
        (inbox / f"{i:03d}.txt").write_text(f"Xinhuanet\n\nMenu {i}\n\nHome | World | China\n")
    shutil.copy2(CASES.parent.parent / "samples/inbox" / SEED, inbox / "seed.txt")
    threshold = gc.get_threshold()
    with pytest.raises(NightFailed, match="nothing was loaded"):
        ingest(inbox, home)
    # the night froze what it held for the collector: a failed one gives it all back too
    assert (gc.get_freeze_count(), gc.get_threshold()) == (0, threshold)
    assert query(home, "SELECT status FROM runs") == [("failed",)]
    assert query(home, "SELECT count(*) FROM files") == [(0,)]
    assert query(home, "SELECT count(*) FROM articles") == [(0,)]
    assert list((home / "archive" / "packs").iterdir()) == []  # kept by the run that loads them
    # the files stay for the next night, which can be told to accept a bad night
    summary = ingest(inbox, home, max_failure_ratio=1.0)
    assert summary["counts"]["articles"] == 1
    assert summary["counts"]["quarantined"] == 30


def test_a_night_in_twelve_languages_loads_and_passes_the_gate(home: Path, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    shutil.copytree(CASES / "web-night", inbox, ignore=shutil.ignore_patterns("*.md"))
    for language, case in (("es", "publimetro_es_berrios"), ("de", "st_georg_de_olympia")):
        shutil.copy2(CASES / "web" / f"{case}.txt", inbox / f"{language}_{case}.txt")
    shutil.copy2(CASES / "web" / "xinhuanet_zh_wuhan.txt", inbox / "zh_xinhuanet_wuhan.txt")
    # a teaser of three sentences and a recipe: quarantined or not, never the night's refusal
    not_articles = {"de_413_abc17b9caec45a88.txt", "pl_207_520e5f88f1ff04dd.txt"}

    summary = ingest(inbox, home)  # the default failure ratio

    assert summary["status"] == "succeeded"
    loaded = query(
        home,
        "SELECT f.dump_file, a.language FROM files f JOIN articles a USING (article_id) "
        "WHERE f.status = 'loaded' ORDER BY 1",
    )
    names = sorted(p.name for p in inbox.iterdir())
    assert {name for name, _ in loaded} >= set(names) - not_articles
    assert [language for name, language in loaded] == [name[:2] for name, _ in loaded]
    assert len({language for _, language in loaded}) == 12
    quarantined = query(home, "SELECT dump_file, reason FROM quarantine ORDER BY 1")
    assert {name for name, _ in quarantined} <= not_articles
    assert len(loaded) + len(quarantined) == len(names)
    assert {reason for _, reason in quarantined} <= {"not_an_article", "no_title"}


def test_an_analyst_holding_the_catalog_does_not_fail_the_run(
    sample_inbox: Path, home: Path, tmp_path: Path
) -> None:
    ingest(seed_only_night(sample_inbox, tmp_path / "first"), home)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, warehouse; c = warehouse.connect(sys.argv[1]); c.execute('BEGIN'); "
            "print(c.execute('SELECT count(*) FROM articles').fetchall()[0][0], flush=True); "
            "time.sleep(120)",
            str(home),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "1"
        summary = ingest(sample_inbox, home)  # while the analyst's transaction stays open
    finally:
        holder.kill()
        holder.wait()
    assert summary["status"] == "succeeded"
    assert query(home, "SELECT count(*) FROM files")[0][0] == len(list(sample_inbox.rglob("*.txt")))


def test_a_killed_runs_leftovers_are_removed_and_never_visible(
    sample_inbox: Path, home: Path
) -> None:
    ingest(sample_inbox, home)
    before = snapshot(home)
    # what a run killed before its commit leaves: data files no snapshot references, a pack
    # no index row names, its staging
    dead = "20990101T000000Z-dead00"
    orphan = home / "lake" / "main" / "articles" / "ducklake-dead.parquet"
    orphan.write_bytes(next((home / "lake" / "main" / "files").glob("*.parquet")).read_bytes())
    pack = home / "archive" / "packs" / f"{dead}-00000.pack"
    pack.write_bytes(b"raw bytes of a run that never committed")
    staged = home / "staging" / dead / "parsed-00000.parquet"
    staged.parent.mkdir(parents=True)
    staged.write_bytes(b"partial")
    assert snapshot(home) == before  # invisible to readers already
    ingest(sample_inbox, home)
    assert not orphan.exists() and not pack.exists() and not staged.exists()
    assert snapshot(home) == before


def test_data_docs_are_built_into_the_home(
    sample_inbox: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WIREHOUSE_BUILD_DOCS", "1")
    summary = ingest(sample_inbox, home)
    docs = Path(summary["data_docs"])
    assert docs.is_file() and docs.is_relative_to(home)
    assert summary["run_id"] in docs.read_text()  # the index lists this night's validations


def test_the_report_reads_the_committed_night_back(
    sample_inbox: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WIREHOUSE_BUILD_DOCS", "1")
    summary = ingest(sample_inbox, home)
    assert summary["status"] == "succeeded" and summary["violations"] == []
    counts, totals = summary["counts"], summary["warehouse"]
    assert counts["articles"] > 0 and summary["data_docs"] is not None
    assert totals["articles"] == counts["articles"]
    assert totals["files"] == counts["files"]
    assert totals["succeeded runs"] == 1
    # the night is one snapshot, labelled with its run id and counts
    [(message, info)] = query(
        home,
        "SELECT commit_message, commit_extra_info FROM wh.snapshots() WHERE snapshot_id = "
        f"{summary['snapshot']}",
    )
    assert message == f"nightly {summary['run_id']}"
    assert json.loads(info)["articles"] == counts["articles"]


def test_an_updated_story_is_a_near_copy_of_the_first(
    sample_inbox: Path, home: Path, tmp_path: Path
) -> None:
    ingest(seed_only_night(sample_inbox, tmp_path / "night1"), home)
    [(seed_id,)] = query(home, "SELECT article_id FROM articles")
    # the next day Xinhua re-publishes it under a new page id, headline and a changed paragraph
    seed = (sample_inbox / SEED).read_text(encoding="utf-8")
    update = (
        seed.replace("Pompeo calls Lavrov", "UPDATE: Pompeo calls Lavrov")
        .replace("the statement read.", "the statement read, adding that talks would go on.")
        .replace("1380280291", "1380299999")
    )
    night2 = tmp_path / "night2"
    night2.mkdir()
    (night2 / "001_0123456789abcdef.txt").write_text(update, encoding="utf-8")
    ingest(night2, home)
    [(of, kind, similarity)] = query(home, "SELECT duplicate_of, kind, similarity FROM duplicates")
    assert (of, kind) == (seed_id, "near")
    assert 0.4 <= similarity < 1.0
    assert query(home, "SELECT count(*) FROM articles") == [(1,)]


def test_a_name_delivered_again_with_new_bytes_keeps_both_versions(
    sample_inbox: Path, home: Path
) -> None:
    # the crawler rewrites a file it delivered last night: a (name, bytes) pair of its own
    ingest(sample_inbox, home)
    seed = sample_inbox / SEED
    seed.write_text(seed.read_text(encoding="utf-8").replace("the statement read.", "it said."))
    night = ingest(sample_inbox, home)
    assert night["status"] == "succeeded" and night["violations"] == []
    assert night["counts"]["files"] == 1
    versions = query(home, f"SELECT status FROM files WHERE dump_file = '{SEED}' ORDER BY run_id")
    assert [status for (status,) in versions] == ["loaded", "duplicate"]
    assert verify(Home.at(home)) == []


def test_a_home_of_the_layout_before_ducklake_is_migrated_by_the_next_night(
    sample_inbox: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    shutil.copytree(CASES / "legacy-home", home)  # built by the Parquet-layout code
    expected = json.loads((home / "EXPECTED.json").read_text())
    summary = ingest(sample_inbox, home)
    assert summary["counts"]["files"] == 0  # the old ledger's files are recorded, not re-read
    counts = {t: query(home, f"SELECT count(*) FROM {t}")[0][0] for t in ("articles", "files")}
    assert counts == {
        "articles": expected["counts"]["articles"],
        "files": expected["counts"]["files"],
    }
    kinds = [k for (k,) in query(home, "SELECT kind FROM runs ORDER BY started_at")]
    assert kinds.count("migrate") == 1 and kinds[-1] == "nightly"
    assert (home / "pre-ducklake").is_dir() and not (home / "lake" / "articles").exists()
