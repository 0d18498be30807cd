"""The headline of a page of another outlet, and the site name its title line carries.

Candidates are the segments of the page's title line (its first line: "Headline - Site") and
the headline-like lines just above the article. Never taken: the site's or a section's name,
a line that is the start of the body, or a heading that stands below a "Related" marker (another
story's). Where the page repeats its headline (in the title line and above the article), that
agreement decides, and the end of the title line is the site's name; where it prints it in other
words, the printed one is the headline.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from transforms.dates import find_dates

# How far below the article start a repeat of the headline is still looked for: it may stand
# below a subscription nag the main run starts with.
_REPEAT_AFTER_START = 40
# How far above the article start a headline line is looked for: this many lines, and at least
# this many lines that are not blank (pages spaced out with blank lines put it further up).
_LINES_BEFORE = 25
_TEXT_LINES_BEFORE = 5
# ... and, when neither that nor the title line gives one, how far up it is looked for.
_LINES_FAR = 60

_SEPARATOR = re.compile(r"\s+(?:[|»:•~]{1,2}|[-–—]{1,2})\s+|\s*\|\s*|_English_Xinhua\b|\s+[-–—]+$")
_PREFIX_SITE = re.compile(
    r"^(AFP|AP|Reuters|UPI|The Press Association|Press Association|ANI|IANS|PTI|BBC News"
    r"|CNN(?:\.com)?|Xinhua|RIA Novosti|dpa|Bloomberg)\s*:\s+",
    re.I,
)
_FROM_SITE = re.compile(r"\s*\(from ([^()]{2,60})\)\s*$", re.I)
_NOT_HEADLINE = re.compile(
    r"^(?:by\b|posted |updated |published |last updated|tags?:|categor(?:y|ies):|\(|\d+[/:.]\d"
    r"|\d+$|\d+[.)] )",
    re.I,
)
# Each word from its start: "print" is chrome, "Sprint" is not.
_CHROME_LINE = re.compile(
    r"©|\b(?:refer to a friend|filed under|advertise(?:ment)?s?\b|sponsor|e-?mail|print|"
    r"comments?\b|share\b|"
    r"subscribe|newsletter|sign (?:in|up)|log ?in|search|more (?:news|stories)|section front|"
    r"copyright|click|photo|associated press\b|staff writer|correspondent|terms of|privacy|"
    r"have your say|recommend|current location|contact us|site map|rss\b)",
    re.I,
)
# A line that opens a list of other stories: headings below it, above the article, are theirs.
_OTHER_STORIES = re.compile(
    r"^(?:related\b|see also|more (?:on|from|in|news|stories|headlines)\b|also (?:in|on)\b"
    r"|other (?:news|stories)|top stories|latest (?:news|stories|headlines)|most (?:popular|read))",
    re.I,
)
# A headline printed in other words than the title line's: this share of its words are the title
# line's, and it holds this share of the title's headline.
_VARIANT_SHARED = 0.6
_VARIANT_HELD = 0.5
# Typographic quotation marks, made plain when comparing (guillemets stay: "»" separates a title
# line's parts).
_DOUBLE_QUOTES = re.compile("[„“”]")
_SINGLE_QUOTES = re.compile("[‚‘’]")
# A copyright mark and the years after it, before the owner's name.
_NOTICE = re.compile(
    r"(?:©|\(c\)|\bcopyright\b)(?:[\s,.:]*(?:©|\(c\)|\d{4}\b|[-–]))*[\s,.:]*", re.I
)
# Two headings or more under such a line are a list of stories, not one headline.
_STORY_LIST = 2
_WORDS = re.compile(r"\w+")
_SITE_TRIM = re.compile(r"^[\W_]+|[\W_]+$")
# What a site's or a section's name looks like: a web address, or a short name in capitals
# made with the words outlets and sections are named with ("The Calgary Sun", "News Update
# Service", "Premier League", "WORLD SOCCER").
_DOMAIN = re.compile(r"\w\.(?:com|net|org|info|biz|co\.\w\w|com\.\w\w|\w\w)\b", re.I)
_OUTLET_TEXT = """
    news newspaper newspapers times post herald tribune journal daily sun press network service
    services online radio tv television blog blogs magazine wire gazette chronicle telegraph
    guardian express mail star observer review weekly sport sports league soccer football world
    business entertainment home edition article update updates independent citizen standard
    mirror globe record headlines channel media group bulletin today live free"""
_OUTLET_WORDS = frozenset(_OUTLET_TEXT.split())
# A site's or a section's name in front of the headline: "SFGate: ...", "ABC News: ...".
_NAME_PREFIX = re.compile(r"^([^:]{2,40}):\s+(?=\S)")
# Breadcrumbs: "Home:Britain/Ireland", "Home > News > Article", "You are here: ...".
_BREADCRUMB = re.compile(r"^(?:home|you are here)\s*[:>/»|]", re.I)
_NAME_GLUE = frozenset({"the", "of", "and", "&", "de", "la", "le", "el", "for", "on"})
_SITE_NAME_WORDS = 5
# Fewer content words than a headline has: a label, a menu item.
_FEW_WORDS = 3
# How much of the first paragraph a candidate is compared with (headlines are shorter).
_BODY_START = 400


def headline(
    lines: list[str], body_line: int, lede: str, first_paragraph: str, language: str = "en"
) -> tuple[str, str | None]:
    """The headline and the site name the title line carries with it, if any (a line that
    holds a date, in the page's language or English, is none)."""
    first = next((x for x in lines[:body_line] if x), "")
    folded = _fold(first)
    body_start = " ".join(first_paragraph[:_BODY_START].casefold().split())
    notices: list[str] = []  # the page's copyright notices, gathered on first need

    def notices_text() -> str:
        if not notices:
            notices.append(_notices(lines))
        return notices[0]

    def is_name(text: str) -> bool:
        return _is_site_name(text, notices_text)

    def usable(text: str) -> bool:
        # A line above the article that merely opens its first paragraph is no headline; a
        # segment of the title line is, even when the body happens to repeat it.
        return not is_name(text) and not _starts_body(text, body_start)

    above = _above(lines, body_line, _LINES_BEFORE)
    # The page usually prints its headline again, as it appears inside the title line.
    title = _repeated(lines, body_line, above, first, is_name)
    if title:
        at = folded.find(_fold(title))
        return _without_name_prefix(title, is_name), _site(first[:at], first[at + len(title) :])
    # ... or the whole title line again, just above the article: then its segments agree.
    agreed = any(_fold(x) == folded for x in lines[max(1, above) : body_line])
    segments = [
        s
        for s in _SEPARATOR.split(_PREFIX_SITE.sub("", first))
        if s and s.strip() and not is_name(s)
    ]
    best = max(segments, key=lambda s: len(_WORDS.findall(s)), default="")
    lede_words = _content_words(lede)
    near, near_score = _headline_before(lines[above:body_line], lede_words, usable, language)
    if near is None and not segments:  # rather a headline further up than no article
        far = _above(lines, body_line, _LINES_FAR)
        near, near_score = _headline_before(lines[far:body_line], lede_words, usable, language)
    best_score = _overlap(best, lede_words) + (0.3 if len(_WORDS.findall(best)) >= 4 else 0.0)
    if best and not _looks_like_code(best) and (near is None or agreed or best_score >= near_score):
        at = first.find(best)
        site = _site(first[:at], first[at + len(best) :])
        # The article's first line too: a headline in other words may be taken for its start.
        printed = _variant(lines[above : body_line + 1], best, folded, language)
        return _without_name_prefix(_FROM_SITE.sub("", printed or best).strip(), is_name), site
    return _without_name_prefix((near or "").strip(), is_name), None


def _repeated(
    lines: list[str], body_line: int, above: int, first: str, is_name: Callable[[str], bool]
) -> str | None:
    """The headline as the page prints it again, a part of its title line (`first`).

    Looked for just above the article first, where a whole segment of the title line counts
    however short ("Impressum"); then anywhere near the article. The longest part wins, but not
    the title line's end where that is the site's name or motto ("Headline - Site | Motto").
    """
    folded = _fold(first)
    short = _short_headline(first, is_name)
    near: list[str] = []
    anywhere: list[str] = []
    for i, x in enumerate(lines[1 : body_line + _REPEAT_AFTER_START], 1):
        if not x or len(x) > len(folded):  # folding never shortens a line
            continue
        key = _fold(x).strip()
        if key not in folded or key == folded or is_name(x):
            continue
        if len(x) >= 12 and len(_WORDS.findall(x)) >= 2:
            anywhere.append(x)
        elif not (above <= i < body_line and key == short):
            continue
        if above <= i < body_line:
            near.append(x)
    for found in (near, anywhere):
        keys = [_fold(x).strip() for x in found]
        starts = any(folded.startswith(k) for k in keys)
        kept = [x for x, k in zip(found, keys, strict=True) if not _is_site_end(folded, k, starts)]
        if kept or (found and starts):
            return max(kept or found, key=len)
    return None


def _is_site_end(title_line: str, part: str, starts: bool) -> bool:
    """Whether a printed part of the title line is its end, the site's name or motto: where the
    start is printed too, or where more words stand before it (a site's name is short)."""
    if not _ends(title_line, part):
        return False
    before = title_line[: len(title_line) - len(part)]
    return starts or len(_WORDS.findall(before)) > len(_WORDS.findall(part))


def _short_headline(first: str, is_name: Callable[[str], bool]) -> str | None:
    """The title line's first segment, casefolded, where it may be a headline however short: no
    segment but the last (the site's name) has more words, and no site's name holds it."""
    segments = [s.strip() for s in _SEPARATOR.split(first) if s and s.strip()]
    if len(segments) < 2:
        return None
    lead = _fold(segments[0])
    words = len(_WORDS.findall(lead))
    if any(len(_WORDS.findall(s)) > words for s in segments[1:-1]):
        return None
    if any(lead in _fold(s) and is_name(s) for s in segments[1:]):
        return None
    return lead


def _ends(title_line: str, part: str) -> bool:
    """Whether a part of the title line ends it, after a separator that may stand before a
    site's name (not a colon, nor a breadcrumb's "»": "Blog » Archive » Headline")."""
    head = title_line[: len(title_line) - len(part)].rstrip()
    return title_line.endswith(part) and bool(head) and not head.endswith((":", "»"))


def _without_name_prefix(title: str, is_name: Callable[[str], bool]) -> str:
    """The headline without a site's or a section's name in front ("SFGate: ...")."""
    prefix = _NAME_PREFIX.match(title)
    if prefix is None or not is_name(prefix.group(1)) or prefix.end() >= len(title):
        return title
    return title[prefix.end() :]


def _headline_before(
    window: list[str], lede_words: set[str], usable: Callable[[str], bool], language: str
) -> tuple[str | None, float]:
    """The most headline-like line of the window, the lines just above the article's first
    paragraph (the nearest last)."""
    best: tuple[str | None, float] = (None, 0.0)
    below = 0  # headline-like lines seen so far, between the article and the line looked at
    for distance, line in enumerate(reversed(window)):
        if _OTHER_STORIES.match(line) and below >= _STORY_LIST:
            # A list of other stories' headings stood between it and the article.
            best, below = (None, 0.0), 0
            continue
        if len(_WORDS.findall(line)) < _FEW_WORDS or not _is_headline_like(line, language):
            continue
        below += 1
        score = _overlap(line, lede_words) + 0.2 - 0.01 * distance
        if score > best[1] and usable(line):
            best = (line, score)
    return best


def _variant(window: list[str], segment: str, title_line: str, language: str) -> str | None:
    """The headline as printed above the article where it words the title line's otherwise
    ("Gas aus der Erdkruste" printed "Der Traum vom erneuerbaren Gas aus der Erdkruste"): a
    headline-like line made mostly of the title line's words, holding most of the segment's and
    no fewer words (the title line printed whole is no variant: its segment is the headline)."""
    title_words = set(_WORDS.findall(title_line))
    own = set(_WORDS.findall(segment.casefold()))
    best: tuple[str | None, float] = (None, 0.0)
    for line in reversed(window):
        words = set(_WORDS.findall(line.casefold()))
        if len(words) < max(2, len(own)) or _fold(line) == title_line:
            continue
        if not _is_headline_like(line, language):
            continue
        shared = len(words & title_words) / len(words)
        held = len(own & words) >= _VARIANT_HELD * len(own)
        if held and shared >= _VARIANT_SHARED and shared > best[1]:
            best = (line, shared)
    return best[0]


def _is_headline_like(line: str, language: str) -> bool:
    """Whether a line may be a headline: a few words to a sentence's, no chrome, date or code."""
    n = len(_WORDS.findall(line))
    if not 2 <= n <= 30 or line.endswith(".") or _NOT_HEADLINE.match(line):
        return False
    return not (_looks_like_code(line) or _CHROME_LINE.search(line) or find_dates(line, language))


def _above(lines: list[str], body_line: int, reach: int) -> int:
    """Where the lines just above the article begin: `reach` lines up, or further up to take in
    _TEXT_LINES_BEFORE lines that are not blank."""
    start, text_lines = max(0, body_line - reach), 0
    for i in range(body_line - 1, -1, -1):
        text_lines += bool(lines[i])
        if text_lines >= _TEXT_LINES_BEFORE:
            return min(start, i)
    return 0


def _is_site_name(text: str, notices: Callable[[], str]) -> bool:
    """Whether a candidate is the site's or a section's name rather than a headline."""
    name = _SITE_TRIM.sub("", text).casefold()
    if not name or text.rstrip().endswith(":") or _BREADCRUMB.match(text.strip()):
        return True
    words = text.split()
    if len(words) > _SITE_NAME_WORDS:
        return False  # a headline may name a web address; a site's name is short
    if _DOMAIN.search(name):
        return True
    bare = [_SITE_TRIM.sub("", w) for w in words if not w.startswith("(")]
    capitalised = all(w[:1].isupper() or w.casefold() in _NAME_GLUE for w in bare if w)
    if capitalised and any(w.casefold() in _OUTLET_WORDS for w in bare):
        return True
    return (
        "\n" + name in notices()
    )  # the owner a copyright notice names: "©2008 The Sports Network"


def _notices(lines: list[str]) -> str:
    """What follows each copyright mark and its years on the page, casefolded, each after a
    newline (the owner's name first; a headline further on, in a footer, is none)."""
    return "".join(
        "\n" + x[m.end() :].casefold()
        for x in lines
        if "©" in x or "opyright" in x
        for m in _NOTICE.finditer(x)
    )


def _starts_body(text: str, body_start: str) -> bool:
    """Whether a candidate is the opening of the article's first paragraph."""
    candidate = " ".join(text.casefold().split())
    return len(candidate) >= 12 and body_start.startswith(candidate)


def _fold(text: str) -> str:
    """A text casefolded, its quotation marks plain: the title line and the page may differ in
    them ("Welches Europa" printed „Welches Europa“). Each mark stays one character."""
    folded = text.casefold()
    if folded.isascii():
        return folded
    return _SINGLE_QUOTES.sub("'", _DOUBLE_QUOTES.sub('"', folded))


def _content_words(text: str) -> set[str]:
    """The lowercase words of a text that carry meaning (longer than three letters)."""
    return {w for w in _WORDS.findall(text.casefold()) if len(w) > 3}


def _overlap(line: str, words: set[str]) -> float:
    """The share of a line's content words that also occur in a set of words (counted as at
    least _FEW_WORDS: one word of a label in common is not a headline's agreement)."""
    own = _content_words(line)
    return len(own & words) / max(len(own), _FEW_WORDS)


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


def _looks_like_code(line: str) -> bool:
    """Whether a line is script or markup rather than words (a semicolon ends a statement)."""
    return any(c in line for c in "{}=<>") or line.rstrip().endswith(";")
