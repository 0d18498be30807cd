"""The fallback parser for pages of any outlet: headline, time, dateline and text by heuristics."""

from __future__ import annotations

import re
from datetime import datetime

from transforms.dates import find_dates
from transforms.language import language_of
from transforms.layouts.byline import byline_author
from transforms.layouts.function_words import function_words, page_language
from transforms.layouts.headline import headline
from transforms.layouts.prose import (
    Kind,
    Unit,
    is_prose,
    is_subheading,
    lede_units,
    main_run,
    opens_links,
    page_lines,
    page_units,
    story_goes_on,
)
from transforms.layouts.published import publication_time
from transforms.records import Article, Rejection

LAYOUT = "generic"
# Fewer words than a short news brief: what is left is a caption, a teaser or a link list.
_MIN_BODY_WORDS = 40

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
_PLACE = r"[A-Z][\w'’.\-]*(?: [A-Z][\w'’.\-]*){0,3}(?:, [A-Z][\w'’.\-]*(?: [A-Z][\w'’.\-]*){0,2})?"
_DATELINE = re.compile(
    r"^(?:\((?P<pre>[A-Z][\w .&-]{1,30})\) )?(?P<place>" + _PLACE + r")"
    r"(?:,? (?:" + _MONTH + r" \d{1,2}|\d{1,2} " + _MONTH + r"))?"
    r"(?: ?\((?P<agency>[A-Z][\w .&-]{1,30}?)\)| /(?P<wire>[A-Z][\w .&-]{1,30}?)/)?"
    r" ?(?:--|[-—–:])\s"
)
_CAPS_PLACE = re.compile(r"^[A-Z][A-Z'’.\- ]{2,}(?:,|$)")
_LEADING_DATE_DASH = re.compile(r"\s*[-–—:|]\s*")
# Where a story has ended: the rights notice under it.
_END_OF_STORY = re.compile(
    r"all rights reserved|may not be (?:published|reproduced|redistributed|rewritten)", re.I
)
# Where the readers' part begins: an invitation to comment, or a notice about comments.
_COMMENTS_OPEN = re.compile(
    r"have your say|\b(?:post|leave|add|send|e-?mail|share)\b.{0,30}"
    r"\b(?:comments?|thoughts|opinions)\b"
    r"|comment(?:s|ing)? (?:is|are|has been) (?:closed|turned off|disabled)|reported as spam"
    r"|what you(?:'ve| have) got to say",
    re.I,
)
# An author box under the story: how to reach its writer.
_AUTHOR_BOX = re.compile(r"\b(?:can|may) be (?:reached|contacted|e-?mailed) at\b|\S@\w+\.\w", re.I)
# A link to another story: its headline with its date in brackets ("... (December 22, 2007)").
_DATED_LINK_TAIL = 40  # the bracketed date is looked for in this many last characters
_DATED_LINK = re.compile(r"\((?:" + _MONTH + r" \d{1,2}, \d{4}|\d{1,2} " + _MONTH + r" \d{4})\)$")
# The tools under a story (share, e-mail, print, feeds): this many in a row end it.
_TOOL = re.compile(
    r"\b(?:e-?mail|print|share|rss|digg|del\.?icio\.?us|bookmark|subscribe|post to|facebook"
    r"|twitter|reddit|stumbleupon|recommend|save this|send to)",
    re.I,
)
_TOOLBAR = 3
_TOOL_KINDS = (Kind.LINE, Kind.BAD)
_CONTINUED = re.compile(r"(?:Continued ?(?:\.{3}|…)|\(Continued\)|Story continues below)$", re.I)


def parse_generic(text: str, *, captured_at: datetime | None = None) -> Article | Rejection:
    """Parse a page of any layout into an Article, or say why it is not one.

    A page that is an article but states no time is kept, undated (`published_at_source`
    "none"); relative times are read against `captured_at`, the dump's capture time.
    """
    if not text.strip():
        return Rejection("empty_dump", "The dump holds nothing but whitespace.")
    lines = page_lines(text)
    language = page_language(lines)
    units = page_units(lines, function_words(language or ""))
    start, end = main_run(units)
    title_line = next((x for x in lines if x), "").casefold()
    above = lede_units(units, start, title_line)
    run = _body_units(above + _to_story_end(units[start:end]), title_line)
    body_words = sum(u.words for u in run)
    if not run or body_words < _MIN_BODY_WORDS or all(u.kind is not Kind.GOOD for u in run):
        return Rejection("not_an_article", "The page holds no block of article prose.")
    # The fields are looked for around the run's start, below a lede set above the byline.
    first_line = next((u.line for u in run if u.line >= units[start].line), run[0].line)
    # Dates are read in the page's language, and in English where it is not known.
    dates_in = language or "en"
    paragraphs = _paragraphs(run, dates_in)
    lede = " ".join(u.text for u in run[:3])
    title, site = headline(lines, first_line, lede, paragraphs[0], dates_in)
    if not title:
        return Rejection("no_title", "No headline was found on the page.")
    joined = "\n".join(lines)
    anchor = sum(len(x) + 1 for x in lines[:first_line])
    place, agency, lead = _dateline(paragraphs)
    published_at, published_from = publication_time(joined, anchor, lead, captured_at, dates_in)
    body = "\n\n".join(paragraphs)
    return Article(
        title=title,
        published_at=published_at,
        body=body,
        layout=LAYOUT,
        published_at_source=published_from,
        # The wire named in the dateline is exact; the site read off the title line is a guess.
        source=agency or site or "unknown",
        editor=None,
        author=byline_author(lines, first_line, dates_in, title),
        dateline=place,
        page_code=None,
        language=language_of(body),
    )


def _to_story_end(units: list[Unit]) -> list[Unit]:
    """The run up to where the story ends (the rights notice under it, the readers' comments, a
    row of its tools), without an author box under it or links to other stories."""
    ends = (i for i in range(_story_told(units), len(units)) if _story_ended(units, i))
    kept = units[: next(ends, len(units))]
    first_prose = next((i for i, u in enumerate(kept) if u.kind is Kind.GOOD), len(kept))
    while len(kept) > first_prose + 1 and _AUTHOR_BOX.search(kept[-1].text):
        kept = kept[:-1]
    return [
        u
        for u in _without_link_boxes(kept)
        if not (u.text.endswith(")") and _DATED_LINK.search(u.text[-_DATED_LINK_TAIL:]))
    ]


def _story_told(units: list[Unit]) -> int:
    """Where enough of the story has been told for its end to come: the tools and notices
    between the headline, the lede and the rest of it do not end it."""
    words = 0
    for i, unit in enumerate(units):
        if unit.kind is Kind.GOOD or unit.kind is Kind.NEAR:
            words += unit.words
            if words >= _MIN_BODY_WORDS:
                return i + 1
    return len(units)


def _story_ended(units: list[Unit], i: int) -> bool:
    """Whether the story has ended where unit i begins."""
    text = units[i].text
    # Plain substring tests first, words the patterns need: a pattern on every unit costs a
    # tenth of the parse.
    if ("eserved" in text or "ay not be" in text) and _END_OF_STORY.search(text):
        return True
    if (
        "omment" in text
        or "your say" in text
        or "houghts" in text
        or "pinions" in text
        or "spam" in text
        or "got to say" in text
    ) and _COMMENTS_OPEN.search(text):
        return True
    return (
        units[i].kind in _TOOL_KINDS
        and _toolbar_at(units, i)
        and not story_goes_on(units, i + _TOOLBAR)
    )


# Longer than a headline under it: the story's prose again.
_BOX_HEADLINE_WORDS = 16


def _without_link_boxes(units: list[Unit]) -> list[Unit]:
    """The units without boxes of links set in the story: a "Related" or "See also" line and
    the headlines under it, up to the next paragraph of prose."""
    kept: list[Unit] = []
    in_box = False
    for unit in units:
        if opens_links(unit):
            in_box = True
        elif unit.kind is Kind.GOOD or (
            unit.kind is Kind.NEAR and unit.words >= _BOX_HEADLINE_WORDS
        ):
            in_box = False
        if not in_box:
            kept.append(unit)
    return kept


def _toolbar_at(units: list[Unit], i: int) -> bool:
    """Whether a row of the story's tools (share, e-mail, print) begins at unit i."""
    row = units[i : i + _TOOLBAR]
    return len(row) == _TOOLBAR and all(
        u.kind in _TOOL_KINDS and len(u.text) < 40 and _TOOL.search(u.text) for u in row
    )


def _body_units(units: list[Unit], title_line: str) -> list[Unit]:
    """The prose units of the main run, each paragraph once, headline repeats left out."""
    seen: set[str] = set()
    while units and units[0].text.casefold() in title_line:
        units = units[1:]
    units = [u for u in units if len(u.text) < 12 or u.text.casefold() not in title_line]
    kept: list[Unit] = []
    for i, unit in enumerate(units):
        key = " ".join(unit.text.casefold().split())
        if (is_prose(unit) or is_subheading(units, i)) and key not in seen:
            seen.add(key)
            kept.append(unit)
    return kept


def _paragraphs(run: list[Unit], language: str) -> list[str]:
    """Body paragraphs, without a bare publication date that opens the first one."""
    paragraphs = [_CONTINUED.sub("", u.text).rstrip() or u.text for u in run]
    first = paragraphs[0]
    dates = find_dates(first[:80], language)
    if dates and dates[0].start == 0:
        gap = _LEADING_DATE_DASH.match(first, dates[0].end)
        if gap is not None and gap.end() < len(first):
            paragraphs[0] = first[gap.end() :]
    return paragraphs


def _dateline(paragraphs: list[str]) -> tuple[str | None, str | None, str | None]:
    """The place of a dateline opening the body ("NEW YORK (AP) -"), the agency it names, and
    the dateline itself."""
    for paragraph in paragraphs[:2]:
        match = _DATELINE.match(paragraph)
        if match is None:
            continue
        agency = match.group("agency") or match.group("wire") or match.group("pre")
        place = match.group("place")
        if agency or _CAPS_PLACE.match(place):
            return place, agency, match.group(0)
    return None, None, None
