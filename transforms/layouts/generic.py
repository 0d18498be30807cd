"""The fallback parser for pages of any outlet: headline, time, dateline and text by heuristics."""

from __future__ import annotations

import re
from datetime import datetime

from transforms.dates import find_dates
from transforms.layouts.prose import Kind, Unit, is_prose, main_run, page_lines, page_units
from transforms.layouts.published import publication_time
from transforms.records import Article, Rejection
from transforms.text import language_of

LAYOUT = "generic"
# Fewer words than a short news brief: what is left is a caption, a teaser or a link list.
_MIN_BODY_WORDS = 40
_TITLE_AFTER_START = 40

_SEPARATOR = re.compile(r"\s+(?:[|»:•~]{1,2}|[-–—]{1,2})\s+|\s*\|\s*|_English_Xinhua\b|\s+[-–—]+$")
_PREFIX_SITE = re.compile(
    r"^(AFP|AP|Reuters|UPI|The Press Association|Press Association|ANI|IANS|PTI|BBC News"
    r"|CNN(?:\.com)?|Xinhua|RIA Novosti|dpa|Bloomberg)\s*:\s+",
    re.I,
)
_FROM_SITE = re.compile(r"\s*\(from ([^()]{2,60})\)\s*$", re.I)
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
_CONTINUED = re.compile(r"(?:Continued ?(?:\.{3}|…)|\(Continued\)|Story continues below)$", re.I)
_NOT_HEADLINE = re.compile(r"^(?:by |posted |updated |published |last updated|\(|\d)", re.I)
_CHROME_LINE = re.compile(
    r"refer to a friend|filed under|advertis|sponsor|e-?mail|print|comments?\b|share\b|"
    r"subscribe|newsletter|sign (?:in|up)|log ?in|search|more (?:news|stories)|section front|"
    r"copyright|©|click|photo|associated press\b|staff writer|correspondent",
    re.I,
)
_WORDS = re.compile(r"\w+")
_SITE_TRIM = re.compile(r"^[\W_]+|[\W_]+$")


def parse_generic(text: str, *, captured_at: datetime | None = None) -> Article | Rejection:
    """Parse a page of any layout into an Article, or say why it is not one.

    A page that is an article but states no time is kept, undated (`published_at_source`
    "none"); relative times are read against `captured_at`, the dump's capture time.
    """
    if not text.strip():
        return Rejection("empty_dump", "The dump holds nothing but whitespace.")
    lines = page_lines(text)
    units = page_units(lines)
    start, end = main_run(units)
    title_line = next((x for x in lines if x), "").casefold()
    run = _body_units(units[start:end], title_line)
    body_words = sum(u.words for u in run)
    if not run or body_words < _MIN_BODY_WORDS or all(u.kind is not Kind.GOOD for u in run):
        return Rejection("not_an_article", "The page holds no block of article prose.")
    first_line = run[0].line
    title, site = _title(lines, first_line, " ".join(u.text for u in run[:3]))
    if not title:
        return Rejection("no_title", "No headline was found on the page.")
    joined = "\n".join(lines)
    anchor = sum(len(x) + 1 for x in lines[:first_line])
    paragraphs = _paragraphs(run)
    place, agency, lead = _dateline(paragraphs)
    published_at, published_from = publication_time(joined, anchor, lead, captured_at)
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
        dateline=place,
        page_code=None,
        language=language_of(body),
    )


def _body_units(units: list[Unit], title_line: str) -> list[Unit]:
    """The prose units of the main run, each paragraph once, headline repeats left out."""
    seen: set[str] = set()
    while units and units[0].text.casefold() in title_line:
        units = units[1:]
    units = [u for u in units if len(u.text) < 12 or u.text.casefold() not in title_line]
    kept: list[Unit] = []
    for unit in units:
        key = " ".join(unit.text.casefold().split())
        if is_prose(unit) and key not in seen:
            seen.add(key)
            kept.append(unit)
    return kept


def _paragraphs(run: list[Unit]) -> list[str]:
    """Body paragraphs, without a bare publication date that opens the first one."""
    paragraphs = [_CONTINUED.sub("", u.text).rstrip() or u.text for u in run]
    first = paragraphs[0]
    dates = find_dates(first[:80])
    if dates and dates[0].start == 0:
        gap = _LEADING_DATE_DASH.match(first, dates[0].end)
        if gap is not None and gap.end() < len(first):
            paragraphs[0] = first[gap.end() :]
    return paragraphs


def _title(lines: list[str], body_line: int, lede: str) -> tuple[str, str | None]:
    """The headline and the site name the title line carries with it, if any."""
    first = next((x for x in lines[:body_line] if x), "")
    folded = first.casefold()
    # The page usually prints its headline again, as it appears inside the title line; it may
    # stand below a subscription nag the run starts with, so look a little past the run start.
    repeated = [
        x
        for x in lines[1 : body_line + _TITLE_AFTER_START]
        if len(x) >= 12
        and x.casefold() in folded
        and x.casefold() != folded
        and len(_WORDS.findall(x)) >= 2
    ]
    if repeated:
        title = max(repeated, key=len)
        at = folded.find(title.casefold())
        return title, _site(first[:at], first[at + len(title) :])
    segments = [s for s in _SEPARATOR.split(_PREFIX_SITE.sub("", first)) if s and s.strip()]
    best = max(segments, key=lambda s: len(_WORDS.findall(s)), default="")
    lede_words = _content_words(lede)
    near, near_score = _headline_before(lines, body_line, lede_words)
    best_score = _overlap(best, lede_words) + (0.3 if len(_WORDS.findall(best)) >= 4 else 0.0)
    if best and not _looks_like_code(best) and (near is None or best_score >= near_score):
        at = first.find(best)
        site = _site(first[:at], first[at + len(best) :])
        return _FROM_SITE.sub("", best).strip(), site
    return (near or "").strip(), None


def _headline_before(
    lines: list[str], body_line: int, lede_words: set[str]
) -> tuple[str | None, float]:
    """The most headline-like line among those just above the article's first paragraph."""
    best: tuple[str | None, float] = (None, 0.0)
    window = lines[max(0, body_line - 25) : body_line]
    for distance, line in enumerate(reversed(window)):
        n = len(_WORDS.findall(line))
        if not 3 <= n <= 30 or line.endswith(".") or _NOT_HEADLINE.match(line):
            continue
        if _looks_like_code(line) or _CHROME_LINE.search(line) or find_dates(line):
            continue
        score = _overlap(line, lede_words) + 0.2 - 0.01 * distance
        if score > best[1]:
            best = (line, score)
    return best


def _content_words(text: str) -> set[str]:
    """The lowercase words of a text that carry meaning (longer than three letters)."""
    return {w for w in _WORDS.findall(text.casefold()) if len(w) > 3}


def _overlap(line: str, words: set[str]) -> float:
    """The share of a line's content words that also occur in a set of words."""
    own = _content_words(line)
    return len(own & words) / len(own) if own else 0.0


def _site(prefix: str, suffix: str) -> str | None:
    """The outlet named around the headline on the title line: the suffix, else the prefix."""
    agency = _PREFIX_SITE.match(prefix.strip() + " ")
    if agency is not None:
        return agency.group(1)
    suffix_parts = [p for p in _SEPARATOR.split(_FROM_SITE.sub(r" | \1", suffix)) if p.strip()]
    prefix_parts = [p for p in _SEPARATOR.split(prefix) if p.strip()]
    for part in suffix_parts[-1:] or prefix_parts[:1]:
        name = _SITE_TRIM.sub("", part)
        if 2 <= len(name) <= 60:
            return name
    return None


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


def _looks_like_code(line: str) -> bool:
    """Whether a line is script or markup rather than words."""
    return any(c in line for c in "{};=<>")
