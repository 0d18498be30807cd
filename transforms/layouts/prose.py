"""Main-text detection on plain-text pages: units of text scored as prose or page chrome."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from enum import Enum

from transforms.layouts.function_words import unspaced_characters, words_of_text
from transforms.text import normalise_newlines

# Enough markup that the dump is raw HTML rather than the text a browser shows.
_HTML_MIN_TAGS = 15
_HTML_TAG = re.compile(
    r"</?(?:p|div|br|td|tr|span|a|table|li|script|img|font|b)\b[^<>]{0,500}>", re.I
)
_HIDDEN = re.compile(
    r"<(script|style|noscript|select|textarea)\b.{0,50000}?</\1\s*>|<!--.{0,50000}?-->", re.I | re.S
)
_BLOCK_TAG = re.compile(
    r"</?(?:p|div|br|h[1-6]|li|ul|ol|tr|table|blockquote|form|dd|dt|dl|center|hr|iframe)\b"
    r"[^<>]{0,1000}>",
    re.I,
)
_ANY_TAG = re.compile(r"</?[a-z!][^<>]{0,1000}>", re.I)

# Sentence ends in any script: Latin, CJK full-width, Arabic, Bengali/Hindi danda; closing quotes.
_TERMINAL = (".", "!", "?", '"', "”", "’", "'", ")", ":", "…", "»", "。", "！", "？", "؟", "।")
# Characters that prose almost never holds but script, markup and style sheets are full of.
_CODE = re.compile(r"[{};=<>]|&#?\w+;")
# Horizontal whitespace crawlers leave (tabs, NBSP, em/thin/zero-width, ideographic spaces).
# (str.translate would be simpler but walks a dict per character: many times slower.)
_ODD_SPACES = re.compile(r"[\t\u00a0\u2000-\u200b\u202f\u205f\u3000\ufeff]")
_SPACES = re.compile(r"  +")
# Each branch starts at a word boundary: the engine then tries them at word starts only.
_CHROME = re.compile(
    r"©|\b(?:copyright|all rights reserved|click here|print this|e-?mail this|share this|"
    r"bookmark|subscribe|sign (?:in|up)|log ?in\b|register\b|advertisement|\bad choices|"
    r"terms of (?:use|service)|privacy policy|contact us|rss|related (?:stories|articles|links)|"
    r"most (?:popular|read|viewed|e-?mailed)|skip to|back to top|next page|previous page|"
    r"javascript|cookies|you must be|your account|to read this article|click\b|enable|"
    r"powered by|newsletter|font size|text size|digg\b|del\.icio)"
)  # matched against lowercased text: re.I makes this alternation several times slower
# Notices about the reader's browser, whatever their length.
_BROWSER = re.compile(r"javascript|flash player|your browser|cookies")
# A short line that opens the readers' part (the article never comes after it), or the related
# links and the footer. One anchored pattern: it runs on every short line of the page.
_MARK = re.compile(
    r"[\W_]*(?:"
    r"(?P<comments>(?:\d+\s+)?(?:(?:reader|readers'?|user|your|post (?:a|your)|add (?:a|your)"
    r"|leave a|read|view|show)\s+)?(?:comments?|reply|responses?|reactions?)\b"
    r"|have your say|trackbacks?|what do you think|discuss this|talkback|posted by\b"
    r"|report this comment|\d+ responses? to)"
    r"|(?P<links>related\b|see also|more on this|also in\b)"
    r"|(?P<rights>copyright|©(?=.{0,40}\d{4})|\(c\) \d{4}|disclaimer\b))",
    re.I,
)
# Separators between the links of a row run together on one line; this many make one.
_LINK_SEPARATORS = ("|", "•", "·", "»")
_LINK_ROW = 3
# Shares of function words (of the page's language) that make a unit prose (GOOD), prose when it
# ends as a sentence, probably prose (NEAR).
_DENSE, _DENSE_SENTENCE, _FAIRLY_DENSE = 0.35, 0.48, 0.4
# Weight left to text after comments or related links begin, once an article was seen before.
_AFTER_COMMENTS = 0.2
# What counts as "an article was seen": this much weight in the best run so far.
_ARTICLE_WEIGHT = 60.0


class Kind(Enum):
    """How a unit of text reads: prose, probably prose, a short sentence, a bare line, chrome."""

    GOOD = "good"
    NEAR = "near"
    SHORT = "short"
    LINE = "line"
    BAD = "bad"
    BARRIER = "barrier"
    COMMENTS = "comments"


@dataclass(frozen=True, slots=True)
class Unit:
    """One paragraph candidate: its text, the line it starts on, and how it reads."""

    text: str
    line: int
    kind: Kind
    words: int


def page_lines(text: str) -> list[str]:
    """The page as cleaned lines (blank ones kept as ""), with raw HTML reduced to its text."""
    text = normalise_newlines(text)
    if text.count("</") + text.count("<br") >= _HTML_MIN_TAGS and _HTML_TAG.search(text):
        text = _HIDDEN.sub("\n", text)
        text = _BLOCK_TAG.sub("\n\n", text)
        text = html.unescape(_ANY_TAG.sub(" ", text))
    text = _SPACES.sub(" ", _ODD_SPACES.sub(" ", text))
    return [line.strip() for line in text.split("\n")]


def page_units(lines: list[str], stopwords: frozenset[str]) -> list[Unit]:
    """Paragraph candidates: lines joined where they are hard-wrapped or link-broken prose;
    `stopwords` are the function words of the page's language."""
    units: list[Unit] = []
    parts: list[str] = []
    start, gap = 0, False
    for i, line in enumerate(lines):
        if not line:
            gap = True
            continue
        if parts and (start == 0 or not _continues(parts[-1], line, gap)):
            units.append(_unit(" ".join(parts), start, stopwords))
            parts = []
        if not parts:
            start = i
        parts.append(line)
        gap = False
    if parts:
        units.append(_unit(" ".join(parts), start, stopwords))
    return units


def _continues(previous: str, line: str, gap: bool) -> bool:
    """Whether a line carries on the paragraph of the previous one (across a blank, a link)."""
    if gap:
        # A paragraph the crawler broke at a link: "... his Bengali film" / "this Friday."
        return (
            line[:1].islower()
            and not previous.endswith(_TERMINAL)
            and _CODE.search(previous) is None
            and _CODE.search(line) is None
        )
    if len(previous) > 110 or len(line) > 110 or len(previous) < 50:
        return False
    if not previous.endswith(_TERMINAL) or line[:1].islower():
        return _CODE.search(previous) is None and _CODE.search(line) is None
    return False


def _unit(text: str, line: int, stopwords: frozenset[str]) -> Unit:
    """A unit with its kind decided from length, stop-word density and chrome markers."""
    # Its length in columns: an ideograph or kana takes two, as it does on screen, and says
    # as much as a word of a few letters.
    unspaced = unspaced_characters(text)
    size = len(text) + unspaced
    mark = _mark(text) if size < 80 else None
    if mark is not None:
        return Unit(text, line, mark, text.count(" ") + 1 + unspaced)
    if size < 40:
        # Most units of a page are short menu lines: decide them without the costlier tests.
        n = text.count(" ") + 1 + unspaced
        prose = n >= 3 and text.endswith(_TERMINAL) and not _CODE.search(text)
        return Unit(text, line, Kind.SHORT if prose else Kind.LINE, n)
    lowered = text.lower()
    words = words_of_text(lowered)
    n = len(words)
    stop = len([w for w in words if w in stopwords]) / n if n else 0.0
    if (
        n == 0
        or len(_CODE.findall(text)) * 50 > size
        or (size < 160 and _CHROME.search(lowered))
        or (size < 400 and _BROWSER.search(lowered))
        or _is_link_row(text)
    ):
        kind = Kind.BAD
    elif (size >= 110 and stop >= _DENSE) or (
        size >= 60 and stop >= _DENSE_SENTENCE and text.endswith(_TERMINAL)
    ):
        kind = Kind.GOOD
    elif text.endswith(_TERMINAL) or (size >= 70 and stop >= _FAIRLY_DENSE):
        kind = Kind.NEAR
    elif size >= 200:
        kind = Kind.BAD  # long but without function words: a list of names or links
    else:
        kind = Kind.SHORT
    return Unit(text, line, kind, n)


def _is_link_row(text: str) -> bool:
    """Whether a unit is a row of links run together ("A | B | C"), whatever its words."""
    return sum(text.count(c) for c in _LINK_SEPARATORS) >= _LINK_ROW


def _mark(text: str) -> Kind | None:
    """COMMENTS or BARRIER when a short line opens the readers' part, the related links or the
    footer."""
    match = _MARK.match(text)
    if match is None:
        return None
    return Kind.COMMENTS if match.lastgroup == "comments" else Kind.BARRIER


def opens_links(unit: Unit) -> bool:
    """Whether a unit is a line that opens a box of links to other stories ("Related ...",
    "See also"), rather than the footer's rights notice."""
    if unit.kind is not Kind.BARRIER:
        return False
    match = _MARK.match(unit.text)
    return match is not None and match.lastgroup == "links"


# A bare line (menu item, caption, label) costs more than a short sentence: articles hold few
# of them, menus are made of them (tuned on the annotated pages: -2 to -6 raised body F1 0.79 to
# 0.80, more changed nothing).
_FIXED_WEIGHTS = {Kind.SHORT: -2.0, Kind.LINE: -6.0, Kind.BARRIER: -60.0, Kind.COMMENTS: -60.0}
# Kinds of unit after which an article seldom goes on.
_ENDS = (Kind.COMMENTS, Kind.BARRIER)


# A headline's length in words; a teaser's summary is at most this long.
_HEADING_WORDS = (3, 15)
_TEASER_WORDS = 45
_PROSE = (Kind.GOOD, Kind.NEAR)
# Related links set inside a story: at most this many units, then this many paragraphs in a row.
_INLINE_BOX = 4
_PROSE_AFTER_BOX = 3


def _weight(unit: Unit) -> float:
    """What a unit adds to a run of article text (chrome subtracts)."""
    fixed = _FIXED_WEIGHTS.get(unit.kind)
    if fixed is not None:
        return fixed
    if unit.kind is Kind.GOOD:
        return float(unit.words)
    if unit.kind is Kind.NEAR:
        return 0.5 * unit.words
    return -3.0 - 0.5 * unit.words


def _is_heading(unit: Unit) -> bool:
    """Whether a unit reads as a headline: a few words, no sentence's end."""
    return (
        unit.kind in (Kind.SHORT, Kind.LINE, Kind.NEAR)
        and _HEADING_WORDS[0] <= unit.words <= _HEADING_WORDS[1]
        and not unit.text.endswith(_TERMINAL)
    )


def _teasers(units: list[Unit]) -> set[int]:
    """Units of a list of other stories: a short paragraph between two headlines, twice in a
    row (headline, summary, headline, summary, headline)."""
    found: set[int] = set()
    last = -2  # the summary seen last
    for i in range(1, len(units) - 1):
        unit = units[i]
        if unit.kind not in _PROSE or unit.words > _TEASER_WORDS:
            continue
        heading = units[i - 1]
        # Set apart from its headline by a blank line: not a line the page broke off.
        if unit.line - heading.line > 1 and _is_heading(heading) and _is_heading(units[i + 1]):
            if last == i - 2:
                found.update(range(i - 3, i + 2))
            last = i
    return found


def main_run(units: list[Unit]) -> tuple[int, int]:
    """The [start, end) span of units with the largest total weight: the article's text."""
    best, best_span = 0.0, (0, 0)
    total, start, damp = 0.0, 0, 1.0
    weights = [_weight(unit) for unit in units]
    for i in _teasers(units):
        weights[i] = _FIXED_WEIGHTS[Kind.LINE]
    for i, unit in enumerate(units):
        if total <= 0:
            total, start = 0.0, i
        weight = weights[i]
        if unit.kind in _ENDS:
            if unit.kind is Kind.BARRIER and story_goes_on(units, i + 1):
                weight = _FIXED_WEIGHTS[Kind.LINE]  # a box of links set inside the story
            elif best >= _ARTICLE_WEIGHT:
                damp = _AFTER_COMMENTS
        total += weight * damp if weight > 0 else weight
        if total > best:
            best, best_span = total, (start, i + 1)
    return best_span


def story_goes_on(units: list[Unit], i: int) -> bool:
    """Whether paragraphs of prose follow within a few units: then the related links or the
    tools just before them were set inside the story, not at its end."""
    for j in range(i, min(i + _INLINE_BOX, len(units))):
        row = units[j : j + _PROSE_AFTER_BOX]
        if len(row) == _PROSE_AFTER_BOX and all(u.kind is Kind.GOOD for u in row):
            return True
    return False


def is_prose(unit: Unit) -> bool:
    """Whether a unit inside the main run is kept as a paragraph of the body."""
    if unit.kind in (Kind.GOOD, Kind.NEAR):
        return True
    return unit.kind is Kind.SHORT


# How far above the run the headline's echo is looked for, in units (a page's menus and
# teasers between them can be long).
_LEDE_REACH = 400


def lede_units(units: list[Unit], start: int, title_line: str) -> list[Unit]:
    """The paragraphs of prose between the headline and the start of the run: a lede that the
    byline, the story's tools or a paywall notice cut off from the rest of the story. The
    headline is the nearest unit above the run that the title line holds; only GOOD units are
    taken (a NEAR one there is more often a standfirst, a caption or an advert)."""
    for h in range(start - 1, max(-1, start - _LEDE_REACH), -1):
        if is_title_echo(units[h], title_line):
            return [u for u in units[h + 1 : start] if u.kind is Kind.GOOD]
    return []


def is_title_echo(unit: Unit, title_line: str) -> bool:
    """Whether a unit repeats the headline: a line of a few words that the title line holds."""
    text = unit.text
    return len(text) >= 12 and text.count(" ") >= 2 and text.casefold() in title_line


def is_subheading(units: list[Unit], i: int) -> bool:
    """Whether unit i is the story's subheading: a bare line of a few words set between a
    paragraph of prose and a GOOD one (a label, "Author: ...", holds a colon; a photo credit
    is a line of one or two words, or a chrome one: "© Jane Doe")."""
    if not 0 < i < len(units) - 1:
        return False
    unit = units[i]
    return (
        unit.kind is Kind.LINE
        and unit.words >= _HEADING_WORDS[0]
        and ":" not in unit.text
        and units[i - 1].kind in _PROSE
        and units[i + 1].kind is Kind.GOOD
        and _CHROME.search(unit.text.lower()) is None
    )
