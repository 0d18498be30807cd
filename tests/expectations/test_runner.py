"""The GX runner on real Great Expectations: which rows pass, which fail and why."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from expectations import runner
from expectations.runner import ValidationOutcome, validate_articles
from tests.conftest import REPO
from transforms.records import ARTICLES_SCHEMA

NOW = datetime(2024, 6, 1, 3, 0, tzinfo=UTC)
BODY = (
    "WASHINGTON, May 1 (Xinhua) -- U.S. Secretary of State Mike Pompeo on Wednesday "
    "spoke with Russian Foreign Minister Sergei Lavrov over the situation in Venezuela."
)
PAGE_CODE = "010020070750000000000000011100001380280291"


def article_row(n: int, **changes: Any) -> dict[str, Any]:
    """A valid record per ARTICLES_SCHEMA, numbered n, with some fields changed."""
    row: dict[str, Any] = {
        "article_id": f"id{n:04d}",
        "source": "Xinhua",
        "title": f"Pompeo calls Lavrov over Venezuela, story {n}",
        "published_at": datetime(2019, 5, 1, 20, 38, 54, tzinfo=UTC),
        "published_at_source": "page",
        "editor": "huaxia",
        "author": None,
        "dateline": "WASHINGTON",
        "body": BODY,
        "captions": ["File photo: People march (Xinhua/Marcos Salgado)"],
        "word_count": len(BODY.split()),
        "language": "en",
        "page_code": PAGE_CODE,
        "body_fingerprint": "0" * 32,
        "dump_file": f"2019/05/{n:03d}_c903989559a3121d.txt",
        "dump_sha256": f"{n:064x}",
        "encoding": "utf-8",
        "layout": "xinhua-2019",
        "parser_version": "2.0.0",
        "run_id": "run-1",
        "ingested_at": NOW,
    }
    row.update(changes)
    return row


def articles(*rows: dict[str, Any]) -> pa.Table:
    """Rows as an Arrow table of the articles schema."""
    return pa.Table.from_pylist(list(rows), schema=ARTICLES_SCHEMA)


def run(table: pa.Table, gx_root: Path, **kwargs: Any) -> ValidationOutcome:
    """validate_articles at the fixed clock, without Data Docs unless asked."""
    kwargs.setdefault("build_docs", False)
    return validate_articles(table, gx_root, now=NOW, **kwargs)


def test_valid_row_passes(tmp_path: Path) -> None:
    table = articles(article_row(1))
    outcome = run(table, tmp_path / "gx")
    assert outcome.failures == {}
    assert outcome.passed.equals(table)
    assert outcome.expectations_evaluated >= 10
    assert set(outcome.statistics.values()) == {0}


def test_other_valid_variants_pass(tmp_path: Path) -> None:
    zh_body = (
        "新华社巴黎12月9日电（记者唐霁）"
        + "法国总统马克龙九日在巴黎会见来访的代表团，双方就合作交换了意见。" * 3
    )
    table = articles(
        article_row(1, page_code=None, editor=None, dateline=None, captions=[]),
        article_row(2, language="zh", layout="xinhua-zh", title="中法合作会谈", body=zh_body),
        article_row(
            3,
            body=BODY + " Prices rose 5% as a < b in 2019; AT&T said <not html>.",
            layout="generic",
            published_at=NOW + timedelta(hours=20),
        ),
        # A page of another outlet that states no time: kept, marked undated.
        article_row(4, layout="generic", published_at=None, published_at_source="none"),
        article_row(5, layout="generic", published_at_source="inferred"),
        # Any language the detector names, not only those of the outlets seen so far.
        article_row(6, layout="generic", language="pl"),
        article_row(7, layout="generic", language="sw"),
    )
    outcome = run(table, tmp_path / "gx")
    assert outcome.failures == {}
    assert outcome.passed.num_rows == 7


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"title": None}, "expect_column_values_to_not_be_null(title)"),
        ({"title": ""}, "expect_column_value_lengths_to_be_between(title)"),
        (
            {"published_at": datetime(1985, 3, 1, tzinfo=UTC)},
            "expect_column_values_to_be_between(published_at)",
        ),
        (
            {"published_at": NOW + timedelta(days=2)},
            "expect_column_values_to_be_between(published_at)",
        ),
        # A Xinhua layout without a time is a broken parser, whatever the source says.
        (
            {"published_at": None},
            "expect_column_values_to_be_in_set(published_at_unexplained_null)",
        ),
        (
            {"published_at": None, "published_at_source": "none"},
            "expect_column_values_to_be_in_set(published_at_unexplained_null)",
        ),
        # Another outlet's page without a time must say so.
        (
            {"published_at": None, "layout": "generic"},
            "expect_column_values_to_be_in_set(published_at_unexplained_null)",
        ),
        (
            {"layout": "generic", "published_at_source": "none"},
            "expect_column_values_to_be_in_set(published_at_source_contradicts)",
        ),
        (
            {"published_at_source": "guessed"},
            "expect_column_values_to_be_in_set(published_at_source)",
        ),
        (
            {"published_at_source": None},
            "expect_column_values_to_not_be_null(published_at_source)",
        ),
        (
            {"page_code": "0100200707500000000000000111000013802802x1"},
            "expect_column_values_to_match_regex(page_code)",
        ),
        ({"page_code": "12345"}, "expect_column_values_to_match_regex(page_code)"),
        (
            {"body": BODY + ' <script type="text/javascript">var x = 1;'},
            "expect_column_values_to_not_match_regex(body)",
        ),
        (
            {"body": "<div class='main'>" + BODY + "</div>"},
            "expect_column_values_to_not_match_regex(body)",
        ),
        (
            {"body": "Too short to be a story.", "word_count": 20},
            "expect_column_value_lengths_to_be_between(body)",
        ),
        ({"body": None}, "expect_column_values_to_not_be_null(body)"),
        ({"word_count": 3}, "expect_column_values_to_be_between(word_count)"),
        ({"language": "xx"}, "expect_column_values_to_be_in_set(language)"),
        # The detector's labels beyond ISO 639-1 are never stored: one would be a parser's bug.
        ({"language": "yue"}, "expect_column_values_to_be_in_set(language)"),
        ({"language": "EN"}, "expect_column_values_to_be_in_set(language)"),
        ({"layout": "unknown"}, "expect_column_values_to_be_in_set(layout)"),
        ({"dump_sha256": "ABC"}, "expect_column_values_to_match_regex(dump_sha256)"),
        ({"article_id": None}, "expect_column_values_to_not_be_null(article_id)"),
        (
            {"title": BODY},
            "expect_column_values_to_be_in_set(title_is_body)",
        ),
    ],
)
def test_bad_row_fails_with_its_expectation(
    tmp_path: Path, changes: dict[str, Any], expected: str
) -> None:
    bad = article_row(2, **changes)
    outcome = run(articles(article_row(1), bad), tmp_path / "gx")
    assert list(outcome.failures) == [bad["dump_file"]]
    reasons = outcome.failures[bad["dump_file"]]
    assert any(r.startswith(expected + ": ") for r in reasons), reasons
    assert all(len(r.split(": ", 1)[1]) > 10 for r in reasons)  # each carries its notes
    assert outcome.statistics[expected] == 1
    assert outcome.passed.column("dump_file").to_pylist() == [article_row(1)["dump_file"]]


def test_duplicate_article_id_fails_both_rows(tmp_path: Path) -> None:
    rows = [article_row(1), article_row(2, article_id="id0001"), article_row(3)]
    outcome = run(articles(*rows), tmp_path / "gx")
    assert list(outcome.failures) == [rows[0]["dump_file"], rows[1]["dump_file"]]
    for reasons in outcome.failures.values():
        assert reasons[0].startswith("expect_column_values_to_be_unique(article_id): ")
    assert outcome.statistics["expect_column_values_to_be_unique(article_id)"] == 2
    assert outcome.passed.column("dump_file").to_pylist() == [rows[2]["dump_file"]]


def test_mixed_table_splits_and_keeps_schema_and_order(tmp_path: Path) -> None:
    rows = [
        article_row(5),
        article_row(1, title=None, body="x"),
        article_row(9),
        article_row(3, published_at=datetime(1985, 1, 1, tzinfo=UTC)),
        article_row(2),
    ]
    table = articles(*rows)
    outcome = run(table, tmp_path / "gx")
    assert outcome.passed.schema == ARTICLES_SCHEMA
    assert outcome.passed.equals(table.take([0, 2, 4]))
    assert list(outcome.failures) == [rows[1]["dump_file"], rows[3]["dump_file"]]
    # A row failing several expectations lists each, in suite order.
    assert [r.split(": ")[0] for r in outcome.failures[rows[1]["dump_file"]]] == [
        "expect_column_values_to_not_be_null(title)",
        "expect_column_value_lengths_to_be_between(body)",
    ]


def test_empty_table_skips_gx(tmp_path: Path) -> None:
    gx_root = tmp_path / "gx"
    outcome = validate_articles(articles(), gx_root, now=NOW)
    assert outcome.passed.num_rows == 0
    assert outcome.passed.schema == ARTICLES_SCHEMA
    assert outcome.failures == {}
    assert outcome.docs_index is None
    assert not gx_root.exists()


def test_rerun_with_same_root_and_data_docs(tmp_path: Path) -> None:
    gx_root = tmp_path / "home" / "gx"
    table = articles(article_row(1), article_row(2, page_code="bad"))
    first = validate_articles(table, gx_root, now=NOW, run_name="night-1")
    second = validate_articles(table, gx_root, now=NOW + timedelta(days=1), run_name="night-2")
    assert first.failures == second.failures
    assert first.passed.equals(second.passed)
    assert second.docs_index is not None
    assert second.docs_index.is_file()
    assert second.docs_index.is_relative_to(gx_root)
    assert second.docs_index.name == "index.html"
    assert "night-1" in second.docs_index.read_text(encoding="utf-8")


def test_misuse_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone"):
        validate_articles(articles(article_row(1)), tmp_path, now=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="unique"):
        run(articles(article_row(1), article_row(1)), tmp_path)


def test_a_half_written_project_is_moved_aside_and_made_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "gx"
    run(articles(article_row(1)), root)
    config = root / "gx" / "great_expectations.yml"
    text = config.read_text()
    config.write_text(text[: len(text) // 2])  # a run killed while GX rewrote it
    runner._DEFINITIONS.clear()  # the next night is a new process: nothing cached
    outcome = run(articles(article_row(2)), root, build_docs=True)
    assert outcome.failures == {}
    assert outcome.docs_index is not None and outcome.docs_index.is_file()
    assert len(list(root.glob("gx.unreadable-*"))) == 1  # kept for whoever looks into it
    assert "could not be opened" in caplog.text


_VALIDATE_IN_A_NEW_PROCESS = """
import sys
from pathlib import Path
import scipy
from expectations.runner import import_gx
from tests.expectations.test_runner import article_row, articles, run

import_gx()
outcome = run(articles(article_row(1), article_row(2, page_code="bad")), Path(sys.argv[1]),
              build_docs=True)
assert list(outcome.failures) == [article_row(2)["dump_file"]], outcome.failures
assert outcome.docs_index is not None and outcome.docs_index.is_file()
print("imported during GX's import and a validation:", "scipy.stats" in sys.modules)
from great_expectations.expectations.core import expect_column_kl_divergence_to_be_less_than as kl
print("entropy through GX's name:", round(kl.stats.entropy([0.5, 0.5], [0.9, 0.1]), 4))
real = sys.modules.get("scipy.stats")
print("imported on first use:", real is not None, scipy.stats is real)
"""


def test_scipy_stats_waits_for_its_first_use(tmp_path: Path) -> None:
    # A new interpreter: this one may have imported GX (and scipy.stats) already.
    done = subprocess.run(
        [sys.executable, "-c", _VALIDATE_IN_A_NEW_PROCESS, str(tmp_path / "gx")],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "GX_ANALYTICS_ENABLED": "False"},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "imported during GX's import and a validation: False",
        "entropy through GX's name: 0.5108",  # scipy's own value, from the real module
        "imported on first use: True True",
    ]
