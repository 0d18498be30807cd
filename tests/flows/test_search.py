"""Search on a real warehouse: what it finds, and that it follows the snapshots (nights,
as-of, rollback, reprocess, reindex)."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import transforms.batch
from flows.cli import main
from flows.nightly import nightly_ingest
from flows.operations import reindex_search, rollback_night
from flows.reprocess import reprocess_archive
from transforms.parse import parse_dump
from transforms.records import Article, ParseResult
from warehouse.catalog import connect_as_of, lake_connection
from warehouse.home import Home
from warehouse.search import Filters, IndexIncomplete, attention, find
from warehouse.verify import verify

pytestmark = pytest.mark.usefixtures("prefect_server")
# A word of the 2008 pages only, as the 2019 night has none of them.
WORD_OF_2008 = "Ivanovic"
MARK = "zyxwvutsr"


@pytest.fixture(autouse=True)
def _settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIREHOUSE_BUILD_DOCS", "0")
    monkeypatch.setenv("WIREHOUSE_PARSE_PROCESSES", "1")  # parsed in this process


def two_nights(sample_inbox: Path, home: Path, tmp_path: Path) -> tuple[str, str]:
    """The 2019 dumps one night, the whole sample inbox the next: their run ids."""
    first = tmp_path / "night1"
    shutil.copytree(sample_inbox / "2019", first / "2019")
    one = nightly_ingest(inbox=str(first), home=str(home))["run_id"]
    two = nightly_ingest(inbox=str(sample_inbox), home=str(home))["run_id"]
    return one, two


def found(home: Path, query: str, as_of: str | None = None, **filters: Any) -> set[str]:
    """The ids of the articles a search finds (all of them)."""
    with connect_as_of(Home.at(home), as_of) as con:
        return {str(row[0]) for row in find(con, query, 10_000, Filters(**filters))}


def holding(home: Path, pattern: str, as_of: str | None = None) -> set[str]:
    """The ids of the articles whose title or body matches a regular expression (no index)."""
    with connect_as_of(Home.at(home), as_of) as con:
        rows = con.execute(
            "SELECT article_id FROM articles WHERE regexp_matches(title || ' ' || body, ?)",
            [pattern],
        ).fetchall()
    return {str(row[0]) for row in rows}


def test_search_finds_what_the_text_holds_night_by_night(
    sample_inbox: Path, home: Path, tmp_path: Path
) -> None:
    one, two = two_nights(sample_inbox, home, tmp_path)
    expected = holding(home, f"(?i){WORD_OF_2008}")
    assert expected and found(home, WORD_OF_2008.lower()) == expected
    assert found(home, WORD_OF_2008, as_of=one) == set() == holding(home, WORD_OF_2008, one)
    assert found(home, WORD_OF_2008, as_of=two) == expected
    # a phrase: every article that holds it, and of those holding both words only these
    phrase = found(home, '"United States"')
    assert holding(home, r"(?i)\bunited states\b") <= phrase < found(home, "united states")
    assert phrase == holding(home, r"(?i)\bunit\w* states?\b")
    # all words, either word, a word excluded
    china, beijing = found(home, "china"), found(home, "beijing")
    assert found(home, "china beijing") == china & beijing
    assert found(home, "china OR beijing") == china | beijing
    assert found(home, "china -beijing") == china - beijing
    # stems and accents: the plural finds the singular, an accent is no matter
    assert found(home, "provinces") == found(home, "province") != set()
    # Chinese: four characters of the Chinese page's body, found as a phrase
    with lake_connection(Home.at(home)) as con:
        (body,) = con.execute("SELECT body FROM articles WHERE language = 'zh' LIMIT 1").fetchone()
    characters = re.search(r"[\u4e00-\u9fff]{4}", body)
    assert characters and found(home, characters[0]) == holding(home, re.escape(characters[0]))
    assert found(home, "china", language="zh") == set()
    assert verify(Home.at(home)) == []


def test_a_title_finds_its_article_among_the_first_ten(sample_inbox: Path, home: Path) -> None:
    nightly_ingest(inbox=str(sample_inbox), home=str(home))
    with lake_connection(Home.at(home)) as con:
        titles = con.execute(
            "SELECT article_id, title FROM articles ORDER BY article_id"
        ).fetchall()
        for article_id, title in titles:
            assert article_id in [row[0] for row in find(con, title, 10)], title


def test_rollback_and_reprocess_take_the_index_with_them(
    sample_inbox: Path, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def marked(text: str, captured_at: Any = None) -> ParseResult:
        """A parser release that wrote a stray word at the end of every body."""
        result = parse_dump(text, captured_at)
        if isinstance(result, Article):
            return replace(result, body=f"{result.body}\n\n{MARK}")
        return result

    with monkeypatch.context() as patched:
        patched.setattr(transforms.batch, "parse_dump", marked)
        _, two = two_nights(sample_inbox, home, tmp_path)
    every = holding(home, ".")
    assert found(home, MARK) == every
    # the new parser's bodies, and only they, are found after a reprocess
    reprocess_archive(home=str(home))
    assert found(home, MARK) == set() and holding(home, MARK) == set()
    assert found(home, WORD_OF_2008) == holding(home, f"(?i){WORD_OF_2008}") != set()
    assert verify(Home.at(home)) == []
    # a rolled-back night's articles are not found, and come back with the night
    rollback_night(two, home=str(home))
    assert found(home, WORD_OF_2008) == set()
    assert verify(Home.at(home)) == []
    nightly_ingest(inbox=str(sample_inbox), home=str(home))
    assert found(home, WORD_OF_2008) == holding(home, f"(?i){WORD_OF_2008}") != set()
    assert verify(Home.at(home)) == []


def test_an_index_missing_is_said_and_rebuilt(sample_inbox: Path, home: Path) -> None:
    nightly_ingest(inbox=str(sample_inbox), home=str(home))
    before = found(home, "china")
    with lake_connection(Home.at(home), read_only=False) as con:  # a lake made before the index
        con.execute("DELETE FROM search_postings")
        con.execute("DELETE FROM search_documents")
    with connect_as_of(Home.at(home), None) as con, pytest.raises(IndexIncomplete, match="reindex"):
        find(con, "china")
    assert [v.check for v in verify(Home.at(home))] == ["search_index_covers_articles"]
    assert main(["--home", str(home), "search", "china"]) == 2  # one line, no traceback
    done = reindex_search(home=str(home))
    assert done["indexed"] == len(holding(home, "."))
    assert verify(Home.at(home)) == [] and found(home, "china") == before
    assert reindex_search(home=str(home))["run_id"] is None  # nothing left to do


def test_search_from_the_command_line_and_sql(
    sample_inbox: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nightly_ingest(inbox=str(sample_inbox), home=str(home))
    capsys.readouterr()
    assert main(["--home", str(home), "search", "china", "--limit", "3", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 3 and set(rows[0]) == {
        "article_id",
        "title",
        "published_at",
        "source",
        "score",
        "snippet",
    }
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    assert all("china" in r["snippet"].lower() for r in rows)
    # attention by month: every article counted once, the matching ones as the search finds
    assert main(["--home", str(home), "search", "china", "--by", "month", "--format", "json"]) == 0
    months = json.loads(capsys.readouterr().out)
    with connect_as_of(Home.at(home), None) as con:
        total = con.execute("SELECT count(*) FROM articles").fetchone()
        assert total is not None and sum(m["total"] for m in months) == total[0]
        assert sum(m["matching"] for m in months) == len(found(home, "china"))
        assert attention(con, "china", "source") != []
        # the same search in SQL, joinable with the tables
        in_sql = con.execute(
            "SELECT count(*) FROM search('china') JOIN articles USING (article_id)"
        ).fetchone()
    assert in_sql == (len(found(home, "china")),)
    assert main(["--home", str(home), "search", "china", "--by", "month", "--chart"]) == 0
    assert "█" in capsys.readouterr().out
    assert main(["--home", str(home), "sql", "SELECT count(*) AS n FROM search('china')"]) == 0
    assert str(len(found(home, "china"))) in capsys.readouterr().out
