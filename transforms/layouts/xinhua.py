"""Xinhua English pages: the 2017-2021 layout of the seed (meta line with bars), and 2022's."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from transforms.layouts.byline import reporters_of
from transforms.layouts.common import (
    TIMESTAMP,
    beijing_to_utc,
    dateline_of,
    find_page_code,
    is_section_page,
    merge_copies,
    split_captions,
)
from transforms.records import Article, Rejection
from transforms.text import clean_line, paragraphs_of

_TS = r"(\d{4}-\d{1,2}-\d{1,2}\s+\d{1,2}:\d{2}(?::\d{2})?)"
# "Source: Xinhua | 2019-05-02 04:38:54 | Editor: huaxia" (2019) and
# "Source: Xinhua| 2020-04-08 06:39:47|Editor: huaxia" (2017-2021): the web copy.
_META_WEB = re.compile(
    r"^Source:\s*(?P<source>[^|]*?)\s*\|\s*" + _TS + r"\s*\|\s*Editor:\s*(?P<editor>.*)$"
)
# "Source: Xinhua 2019-05-02 04:38:54": the print copy, no editor.
_META_PRINT = re.compile(r"^Source:\s*(?P<source>.*?)\s+" + _TS + r"$")
# Page chrome that ends an article copy.
_FOOTER = re.compile(
    r"^(?:Back to Top(?: Close)?|Close|Xinhuanet|Prev(?: \d+)* Next|Prev|Next|KEY WORDS:.*|"
    r"EXPLORE XINHUANET|\[Editor: .*\]|Related News|Copyright ©.*)$"
)
_TITLE_SUFFIX_2022 = re.compile(r"\s*-\s*Xinhua$")
_HEAD_2022 = 14  # the 2022 header (title twice, source, editor, time) sits in the first lines


@dataclass(frozen=True, slots=True)
class _Copy:
    """One copy of the article inside a page: the web version or the print version."""

    title: str
    published_at: datetime | None
    source: str
    editor: str | None
    paragraphs: list[str]
    captions: list[str]


def is_xinhua_2019(lines: list[str]) -> bool:
    """Whether a page has a Xinhua meta line of the 2017-2021 layouts."""
    return any("Source:" in line and _meta_of(clean_line(line)) is not None for line in lines)


def is_xinhua_2022(lines: list[str]) -> bool:
    """Whether a page opens the english.news.cn 2022 way: title-Xinhua, title, Source, time."""
    cleaned = (c for c in (clean_line(x) for x in lines[:_HEAD_2022]) if c)
    first = next(cleaned, "")
    if not _TITLE_SUFFIX_2022.search(first):  # most pages: settled by their first line
        return False
    head = [first, *cleaned]
    return (
        len(head) >= 4
        and any(line.startswith("Source:") for line in head)
        and any(TIMESTAMP.fullmatch(line) for line in head)
    )


def parse_xinhua_2019(lines: list[str]) -> Article | Rejection:
    """The seed's layout: web copy, page chrome, print copy, page code; copies merged."""
    page_code = find_page_code(lines)
    if is_section_page(page_code):
        return _section_page(page_code)
    cleaned = [clean_line(line) for line in lines]
    metas = [i for i, line in enumerate(cleaned) if _meta_of(line) is not None]
    texts: dict[tuple[str, ...], tuple[list[str], list[str]]] = {}
    copies = [_copy_at(cleaned, i, metas, page_code, texts) for i in metas]
    primary = next((c for c in copies if c.editor is not None), copies[0])
    paragraphs, captions = primary.paragraphs, primary.captions
    for other in copies:
        if other is not primary:
            paragraphs = merge_copies(paragraphs, other.paragraphs)
            captions = merge_copies(captions, other.captions)
    return _article(primary, paragraphs, captions, page_code, "xinhua-2019")


def parse_xinhua_2022(lines: list[str]) -> Article | Rejection:
    """The 2022 layout: header fields on lines of their own, then the body."""
    page_code = find_page_code(lines)
    if is_section_page(page_code):
        return _section_page(page_code)
    cleaned = [clean_line(line) for line in lines]
    head = [(i, line) for i, line in enumerate(cleaned[:_HEAD_2022]) if line]
    title = _TITLE_SUFFIX_2022.sub("", head[0][1])
    source, editor, published_at, start = "Xinhua", None, None, head[0][0] + 1
    for i, line in head[1:]:
        if line.startswith("Source:"):
            source = line.removeprefix("Source:").strip() or source
        elif line.startswith("Editor:"):
            editor = line.removeprefix("Editor:").strip() or None
        elif (match := TIMESTAMP.fullmatch(line)) is not None:
            published_at = beijing_to_utc(match)
            start = i + 1
            break
    end = _copy_end(cleaned, start, len(cleaned), page_code)
    paragraphs, captions = split_captions(paragraphs_of(cleaned[start:end]))
    copy = _Copy(title, published_at, source, editor, paragraphs, captions)
    return _article(copy, paragraphs, captions, page_code, "xinhua-2022")


def _meta_of(line: str) -> re.Match[str] | None:
    if not line.startswith("Source:"):
        return None
    return _META_WEB.match(line) or _META_PRINT.match(line)


def _copy_at(
    cleaned: list[str],
    meta: int,
    metas: list[int],
    page_code: str | None,
    texts: dict[tuple[str, ...], tuple[list[str], list[str]]],
) -> _Copy:
    """The copy whose meta line is at index `meta`: its title above, its text below.

    `texts` holds the paragraphs and captions of the page's copies read so far, by their lines:
    a print copy is usually the web copy's text again, which is then not split a second time.
    """
    match = _meta_of(cleaned[meta])
    assert match is not None
    title = next((cleaned[i] for i in range(meta - 1, max(meta - 4, -1), -1) if cleaned[i]), "")
    later = [m for m in metas if m > meta]
    limit = _title_line_before(cleaned, later[0]) if later else len(cleaned)
    end = _copy_end(cleaned, meta + 1, limit, page_code)
    lines = tuple(cleaned[meta + 1 : end])
    if lines not in texts:
        texts[lines] = split_captions(paragraphs_of(list(lines)))
    paragraphs, captions = texts[lines]
    timestamp = TIMESTAMP.search(cleaned[meta])
    editor = match.groupdict().get("editor")
    return _Copy(
        title=title,
        published_at=beijing_to_utc(timestamp) if timestamp else None,
        source=match.group("source").strip() or "Xinhua",
        editor=editor.strip() or None if editor is not None else None,
        paragraphs=paragraphs,
        captions=captions,
    )


def _title_line_before(cleaned: list[str], meta: int) -> int:
    """Index of the title line that heads the copy whose meta line is at `meta`."""
    for i in range(meta - 1, max(meta - 4, -1), -1):
        if cleaned[i]:
            return i
    return meta


def _copy_end(cleaned: list[str], start: int, limit: int, page_code: str | None) -> int:
    """Where a copy's text stops: the first footer line, the page code, or the limit."""
    for i in range(start, limit):
        line = cleaned[i]
        if _FOOTER.match(line) or (page_code is not None and line == page_code):
            return i
    return limit


def _article(
    copy: _Copy, paragraphs: list[str], captions: list[str], page_code: str | None, layout: str
) -> Article | Rejection:
    if not paragraphs and captions:
        # A photo page: its captions are all the text it has, so they are its body too.
        paragraphs = captions
    if not paragraphs:
        return Rejection("no_body", "The page has a Xinhua header but no article text under it.")
    return Article(
        title=copy.title,
        published_at=copy.published_at,
        body="\n\n".join(paragraphs),
        layout=layout,
        source=copy.source,
        editor=copy.editor,
        author=reporters_of(paragraphs[0]),
        dateline=dateline_of(paragraphs[0]),
        page_code=page_code,
        language="en",
        captions=tuple(captions),
    )


def _section_page(page_code: str | None) -> Rejection:
    return Rejection(
        "section_page",
        f"A Xinhua section or list page (page code {page_code} marks 0112), not an article.",
    )
