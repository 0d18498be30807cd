"""Golden parses of the real Xinhua pages in the sample inbox, field by field."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

import pytest

from tests.conftest import CASES, SAMPLES
from transforms.decode import Decoded, decode_dump
from transforms.night import published_month
from transforms.parse import parse_dump
from transforms.records import Article
from transforms.text import word_count

GOLDEN = CASES / "golden"
XINHUA = sorted(
    p.relative_to(SAMPLES).as_posix()
    for folder in ("2019", "xinhua-2008", "xinhua-web", "xinhua-zh", "redelivered")
    for p in (SAMPLES / folder).rglob("*.txt")
)


def parsed_fields(dump_file: str) -> dict[str, Any]:
    """The article of one sample dump as the warehouse will hold it."""
    decoded = decode_dump((SAMPLES / dump_file).read_bytes())
    assert isinstance(decoded, Decoded)
    article = parse_dump(decoded.text)
    assert isinstance(article, Article), article
    assert article.published_at is not None
    # Xinhua layouts state their time in full: always "page" (not part of the golden files).
    assert article.published_at_source == "page"
    return {
        "dump_file": dump_file,
        "source": article.source,
        "layout": article.layout,
        "title": article.title,
        "published_at": article.published_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "editor": article.editor,
        "author": article.author,
        "dateline": article.dateline,
        "captions": list(article.captions),
        "paragraphs": article.paragraphs,
        "body": article.body,
        "word_count": word_count(article.body),
        "language": article.language,
        "page_code": article.page_code,
        "published_month": published_month(article.published_at),
    }


def test_seed_matches_the_expected_article_field_by_field() -> None:
    expected = json.loads((GOLDEN / "seed.json").read_text())
    got = parsed_fields("2019/05/000_c903989559a3121d.txt")
    for key in expected.keys() - {"dump_file", "published_local"}:
        assert got[key] == expected[key], key
    assert len(got["paragraphs"]) == 12
    assert len(set(got["paragraphs"])) == 12  # the print copy merged, not appended


def test_print_only_capture_gives_the_same_article() -> None:
    full = parsed_fields("2019/05/000_c903989559a3121d.txt")
    print_only = parsed_fields("2019/05/002_8d0c6b1f2e7a9c35.txt")
    assert print_only["editor"] is None  # the print copy has no editor line
    for key in ("title", "published_at", "body", "captions", "dateline", "page_code"):
        assert print_only[key] == full[key], key


@pytest.mark.parametrize("dump_file", XINHUA)
def test_golden(dump_file: str, request: pytest.FixtureRequest) -> None:
    path = GOLDEN / (dump_file.replace("/", "__") + ".json")
    got = parsed_fields(dump_file)
    if request.config.getoption("--update-golden"):
        path.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n")
    assert path.exists(), f"no golden file for {dump_file}: run pytest --update-golden and review"
    assert got == json.loads(path.read_text())


def test_golden_files_have_their_dumps() -> None:
    names = {p.name for p in GOLDEN.glob("*.json")} - {"seed.json"}
    assert names == {d.replace("/", "__") + ".json" for d in XINHUA}
