"""Pieces every Xinhua layout shares: Beijing time, datelines, captions, page codes, merging."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from transforms.text import paragraph_key

# Xinhua stamps its pages in Beijing time, which has had no daylight saving since 1991.
BEIJING_OFFSET = timedelta(hours=8)

TIMESTAMP = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?")
PAGE_CODE = re.compile(r"^\d{20,64}$")
# Article pages carry 0111 at this offset of the page code, section and list pages 0112.
_PAGE_KIND_SLICE = slice(24, 28)
_SECTION_PAGE_KIND = "0112"

# "WASHINGTON, May 1 (Xinhua) --", "BEIJING, Jan. 8 (Xinhuanet) --", "UNITED NATIONS, Sept. 30
# (Xinhua) -" : the place is the capitalised run before the comma and the date.
_DATELINE = re.compile(
    r"^(?P<place>[A-Z][A-Za-z .'’&-]*?[A-Za-z.]),?\s+"
    r"(?P<date>[A-Z][a-z]{2,8}\.?\s+\d{1,2})(?:,\s*\d{4})?\s*"
    r"\((?:Xinhua|Xinhuanet|XINHUA)[^)]*\)\s*[-–—]"
)
_DATELINE_ZH = re.compile(
    r"^新华社(?:[^\s，,（(]{0,20}?)?(?P<place>[^\s\d，,（(]{1,12}?)(?:\d{1,2}月)?\d{1,2}日电"
)
# A photo caption ends with the photographer's credit, "(Xinhua/Marcos Salgado)", or opens
# with a photo formula.
_CAPTION_CREDIT = re.compile(
    r"\((?:Xinhua|XINHUA|Xinhuanet)\s*/[^)]{1,80}\)\s*$|\(Xinhua photo\)\s*$"
)
_CAPTION_OPENING = re.compile(r"^(?:File photo|Photo taken|Photo shows|Photo:|Aerial photo)", re.I)
# Editors' slug lines on photo pages: "CHINA-HUBEI-WUHAN-OUTBOUND TRAVEL RESTRICTIONS-LIFT (CN)".
_SLUG = re.compile(r"^[A-Z0-9][A-Z0-9 ,.'&/-]{3,}-[A-Z0-9 ,.'&/-]+(?:\([A-Z]{2,3}\))?$")


def beijing_to_utc(match: re.Match[str]) -> datetime | None:
    """The UTC instant of a TIMESTAMP match read as Beijing time, or None if impossible."""
    year, month, day, hour, minute = (int(match.group(i)) for i in range(1, 6))
    second = int(match.group(6) or 0)
    try:
        local = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None
    return local - BEIJING_OFFSET


def find_page_code(lines: list[str]) -> str | None:
    """The page's closing line of digits (the hidden analytics id), if the capture has it."""
    for line in reversed(lines[-5:]):
        candidate = line.strip()
        if candidate:
            return candidate if PAGE_CODE.match(candidate) else None
    return None


def is_section_page(page_code: str | None) -> bool:
    """Whether a page code marks a section or list page rather than an article."""
    return page_code is not None and page_code[_PAGE_KIND_SLICE] == _SECTION_PAGE_KIND


def dateline_of(first_paragraph: str) -> str | None:
    """The place of a body's opening dateline ("WASHINGTON"), or None."""
    match = _DATELINE.match(first_paragraph)
    if match:
        return match.group("place").strip()
    match_zh = _DATELINE_ZH.match(first_paragraph)
    return match_zh.group("place") if match_zh else None


def is_caption(paragraph: str) -> bool:
    """Whether a paragraph is a photo caption rather than article text."""
    return bool(_CAPTION_CREDIT.search(paragraph) or _CAPTION_OPENING.match(paragraph))


def is_slug(paragraph: str) -> bool:
    """Whether a paragraph is an editor's all-capitals slug line."""
    return len(paragraph) < 160 and bool(_SLUG.match(paragraph))


def merge_copies(primary: list[str], other: list[str]) -> list[str]:
    """Paragraphs of two copies of one article, each once, in reading order."""
    if other == primary:  # the usual case: the print copy is the web copy again
        return list(primary)
    keys = [paragraph_key(p) for p in primary]
    known = set(keys)
    other_keys = [paragraph_key(p) for p in other]
    if known.issuperset(other_keys):
        return list(primary)  # the usual case: the print copy adds nothing
    merged, merged_keys = list(primary), keys
    insert_at = 0
    for paragraph, key in zip(other, other_keys, strict=True):
        if key in known:
            insert_at = merged_keys.index(key) + 1
            continue
        merged.insert(insert_at, paragraph)
        merged_keys.insert(insert_at, key)
        known.add(key)
        insert_at += 1
    return merged


def split_captions(paragraphs: list[str]) -> tuple[list[str], list[str]]:
    """Body paragraphs and photo captions apart; slug lines are dropped."""
    body: list[str] = []
    captions: list[str] = []
    for paragraph in paragraphs:
        if is_slug(paragraph):
            continue
        (captions if is_caption(paragraph) else body).append(paragraph)
    return body, captions
