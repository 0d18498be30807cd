"""Xinhua pages of 2007-08 as www.chinaview.cn served them, and Chinese-language Xinhua pages."""

from __future__ import annotations

import re

from transforms.layouts.byline import reporters_of
from transforms.layouts.common import (
    TIMESTAMP,
    beijing_to_utc,
    dateline_of,
    find_page_code,
    is_section_page,
)
from transforms.records import Article, Rejection
from transforms.text import blocks, clean_line, unwrap

_SUFFIX_2008 = re.compile(r"\s*_English_Xinhua$")
_SUFFIX_ZH = re.compile(r"\s*[-_－]\s*新华网$")
# Lines inside a chinaview body that are page chrome, not article text.
_CHROME_2008 = re.compile(
    r"^(?:Special report:.*|Photo Gallery>*|Print|\(Agencies\)|Related Stories)$"
)
_CAPTION_2008 = re.compile(r"^\((?:File )?Photo\b.*\)$", re.S | re.I)
_END_2008 = re.compile(r"^(?:Editor:.*|Related Stories|Home|Back to Top)$")
_IDEOGRAPHIC_INDENT = "\u3000"
_END_ZH = re.compile(r"^(?:\+1|【纠错】|责任编辑：.*|新闻评论|关注我们)$")
_HEAD_2008 = 8


def is_chinaview_2008(lines: list[str]) -> bool:
    """Whether a page is a chinaview.cn capture: the _English_Xinhua title or the site line."""
    head = [clean_line(x) for x in lines[:_HEAD_2008]]
    return bool(head and _SUFFIX_2008.search(head[0])) or "www.chinaview.cn" in head


def is_xinhua_zh(lines: list[str]) -> bool:
    """Whether a page is a Chinese Xinhua page: title ending -新华网, a 来源 line."""
    first = next((clean_line(x) for x in lines if x.strip()), "")
    return bool(_SUFFIX_ZH.search(first)) or any(
        "来源" in x and clean_line(x) == "来源：" for x in lines[:200]
    )


def parse_chinaview_2008(lines: list[str]) -> Article | Rejection:
    """Title twice, site line, time, Print, hard-wrapped paragraphs, Editor: on its own line."""
    cleaned = [clean_line(x) for x in lines]
    title = _SUFFIX_2008.sub("", next((c for c in cleaned if c), ""))
    time_at = next((i for i, c in enumerate(cleaned[:20]) if TIMESTAMP.fullmatch(c)), None)
    if time_at is None:
        return Rejection("no_publication_time", "A chinaview.cn page without its time line.")
    match = TIMESTAMP.fullmatch(cleaned[time_at])
    assert match is not None
    end = next((i for i in range(time_at + 1, len(cleaned)) if _END_2008.match(cleaned[i])), None)
    end = len(cleaned) if end is None else end
    paragraphs: list[str] = []
    captions: list[str] = []
    for block in blocks("\n".join(lines[time_at + 1 : end])):
        paragraph = unwrap(block)
        if _CHROME_2008.match(paragraph):
            continue
        (captions if _CAPTION_2008.match(paragraph) else paragraphs).append(paragraph)
    if not paragraphs:
        return Rejection("no_body", "A chinaview.cn page with no article text.")
    return Article(
        title=title,
        published_at=beijing_to_utc(match),
        body="\n\n".join(paragraphs),
        layout="chinaview-2008",
        source="Xinhua",
        editor=_value_after(cleaned, end, "Editor:"),
        dateline=dateline_of(paragraphs[0]),
        page_code=find_page_code(lines),
        language="en",
        captions=tuple(captions),
    )


def parse_xinhua_zh(lines: list[str]) -> Article | Rejection:
    """Navigation blobs, the title, time, 来源, indented paragraphs, 责任编辑, page code."""
    page_code = find_page_code(lines)
    if is_section_page(page_code):
        return Rejection("section_page", f"A Xinhua section or list page (page code {page_code}).")
    cleaned = [clean_line(x) for x in lines]
    title = _SUFFIX_ZH.sub("", next((c for c in cleaned if c), ""))
    title_at = next((i for i, c in enumerate(cleaned) if i > 0 and c == title), 0)
    time_at = next(
        (i for i in range(title_at, len(cleaned)) if TIMESTAMP.fullmatch(cleaned[i])), None
    )
    if time_at is None:
        return Rejection("no_publication_time", "A Chinese Xinhua page without its time line.")
    match = TIMESTAMP.fullmatch(cleaned[time_at])
    assert match is not None
    end = next((i for i in range(time_at, len(cleaned)) if _END_ZH.match(cleaned[i])), len(cleaned))
    paragraphs = [
        unwrap(block)
        for block, raw in _blocks_with_raw(lines[time_at + 1 : end])
        if raw.startswith(_IDEOGRAPHIC_INDENT)
    ]
    if not paragraphs:
        return Rejection("no_body", "A Chinese Xinhua page with no indented article text.")
    source = _value_after(cleaned, time_at, "来源：") or "新华网"
    return Article(
        title=title,
        published_at=beijing_to_utc(match),
        body="\n\n".join(paragraphs),
        layout="xinhua-zh",
        source="Xinhua" if source in {"新华网", "新华社"} else source,
        editor=_value_after(cleaned, end, "责任编辑："),
        author=reporters_of(paragraphs[0]),
        dateline=dateline_of(paragraphs[0]),
        page_code=page_code,
        language="zh",
        captions=(),
    )


def _blocks_with_raw(lines: list[str]) -> list[tuple[list[str], str]]:
    """Blocks of cleaned lines, each with its first raw line (to see its indent)."""
    out: list[tuple[list[str], str]] = []
    raw_block: list[str] = []
    for line in [*lines, ""]:
        if line.strip(" \t\u00a0\u3000"):
            raw_block.append(line)
        elif raw_block:
            out.append(([clean_line(x) for x in raw_block], raw_block[0]))
            raw_block = []
    return out


def _value_after(cleaned: list[str], start: int, label: str) -> str | None:
    """The value of a "Label:" line at or after `start`: on the same line or the next one."""
    for i in range(start, min(start + 40, len(cleaned))):
        if cleaned[i].startswith(label):
            inline = cleaned[i][len(label) :].strip()
            if inline:
                return inline
            following = next((c for c in cleaned[i + 1 : i + 4] if c), None)
            return following
    return None
