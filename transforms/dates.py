"""Finding and parsing the publication dates written on news pages, in the many formats seen."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from transforms.calendar_words import (
    genitive_words,
    is_day_first,
    joining_words,
    month_numbers,
)

# Pages before the web news era are misreadings (a "1987" in a sentence), not publication dates.
MIN_YEAR = 1990
MAX_YEAR = 2099

# Offsets in hours. "ET"/"PT"/... without S/D are read as standard time (the pages are winter
# 2007-08); IST is India's (the outlets using it are Indian); BST is British Summer Time.
_ZONES = {
    "utc": 0.0, "gmt": 0.0, "ut": 0.0, "z": 0.0, "bst": 1.0, "cet": 1.0, "cest": 2.0,
    "eet": 2.0, "msk": 3.0, "ist": 5.5, "pkt": 5.0, "ict": 7.0, "wib": 7.0, "hkt": 8.0,
    "sgt": 8.0, "pht": 8.0, "awst": 8.0, "jst": 9.0, "kst": 9.0, "acst": 9.5, "aest": 10.0,
    "acdt": 10.5, "aedt": 11.0, "nzst": 12.0, "nzdt": 13.0, "ast": -4.0, "adt": -3.0,
    "est": -5.0, "edt": -4.0, "et": -5.0, "cst": -6.0, "cdt": -5.0, "ct": -6.0,
    "mst": -7.0, "mdt": -6.0, "mt": -7.0, "pst": -8.0, "pdt": -7.0, "pt": -8.0,
    "akst": -9.0, "hst": -10.0,
}  # fmt: skip


def word_alternation(words: Iterable[str]) -> str:
    """A regex matching any of the words, as a trie: an alternation of ninety words tried at
    every position of a page cost more than the rest of the date search."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return _trie_regex(trie)


def _trie_regex(node: dict[str, Any]) -> str:
    """The regex of one trie node (longest branches first, so a word is never cut short)."""
    branches = [re.escape(c) + _trie_regex(child) for c, child in node.items() if c]
    optional = "" in node
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if optional:
        return ("(?:" + body + ")?") if len(branches) > 1 or len(body) > 1 else body + "?"
    return body


_ZONE = (
    r"(?P<tz>(?:gmt|utc)\s?[+-]\s?\d{1,2}(?::?\d{2})?|[+-]\d{2}:?\d{2}|z\b|"
    + "|".join(sorted((z for z in _ZONES if z != "z"), key=len, reverse=True))
    + r")\b"
)
# A time: "14:32", "14h32", "6.20 p.m.", and as German and French write it, "14.30 Uhr",
# "14 Uhr", "14 h" (the hour alone only before its word: "Uhr" is in no locale table as one).
_TIME = (
    r"(?P<hh>\d{1,2})(?:(?::|h(?=\d{2}\b)|\.(?=\d{2}\s?(?:[ap]\.?\s?m\b|uhr\b)))(?P<mi>\d{2})"
    r"(?::(?P<ss>\d{2}))?(?:\.\d+)?|(?=\s?(?:uhr|h)\b))"
    r"\s?(?P<ap>[ap]\.?\s?m\b\.?)?(?:\s*\(?\s*" + _ZONE + r")?"
)
_TIME_IN_DATE = r"\s+(?P<hh>\d{1,2}):(?P<mi>\d{2})(?::(?P<ss>\d{2}))?\s+(?P<y>\d{4})$"
_AFTER_TIME = re.compile(r":\d\d\s+$")
# ISO: "2008-01-11 11:37:09", "2008-01-11T11:37:09Z"
_ISO = re.compile(r"(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})(?![\d-])")
# Chinese and Japanese: "2008年1月15日"
_CJK = re.compile(r"(?P<y>\d{4})\s?年\s?(?P<m>\d{1,2})\s?月\s?(?P<d>\d{1,2})\s?日")
# Numeric with a two-digit year: "01/13/08", "15/01/08 15:46" (read as 20YY, or 19YY from 90);
# not a version number ("[1.9.22_1171]").
_SHORT_YEAR = re.compile(
    r"(?<![\d/.])(?P<a>\d{1,2})(?P<sep>[/.])(?P<b>\d{1,2})(?P=sep)(?P<y>\d\d)(?![\d/._])"
)
# A year may run into the next word when a crawler glued two elements ("2008Hornets"), into
# the time after it ("4 de mayo de 202200:00"), or into a second date, as themes print the
# published and updated dates side by side ("19. Dezember 202219. Dezember 2022",
# "15/01/201614/01/2016").
_YEAR = re.compile(
    r"(?<!\d)(?:19|20)\d\d(?:(?!\d)|(?=\d{1,2}:\d\d)|(?=\d{1,2}(?:\.\s?[^\W\d_]|[/.]\d)))"
)
# The longest date text that can stand before its year ("Wednesday, 17th of September ").
_BEFORE_YEAR = 32
_TIME_BEFORE = re.compile(_TIME + r"[\s,|\-–—]*(?:on\s+)?(?:[a-z]{3,9}\.?,?\s+)?$", re.I)
_ZONE_ALONE = re.compile(r"\s*\(?\s*" + _ZONE, re.I)
_SPACE = re.compile(r"\s+")


def page_languages(language: str) -> tuple[str, ...]:
    """The languages whose date words a page is read with: its own, then English (the
    language of many a page's stamps and tools whatever its text)."""
    return ("en",) if language == "en" else (language, "en")


@dataclass(frozen=True)
class DateWords:
    """The patterns of dates written with the words of a page's languages, and those words."""

    months: dict[str, int]
    month: str  # the pattern of a month name, group `mon`
    joining: str  # the pattern of a word set between a date and its time ("at", "um")
    genitive: str  # the pattern of a word set between day and month ("of", "de"), or ""
    day_first: bool  # numeric dates with slashes are read day first (15/01/2008)
    ending_at_year: tuple[re.Pattern[str], ...]
    time_before_year: tuple[re.Pattern[str], ...]
    time_after: re.Pattern[str]
    short_year: re.Pattern[str]


@cache
def date_words(language: str) -> DateWords:
    """The date patterns of a page in a language (an ISO 639-1 code), built once a language."""
    languages = page_languages(language)
    months = month_numbers(languages)
    # A whole word: "mars" is not "marshal", "mai" not "main".
    month = r"(?P<mon>" + word_alternation(months) + r")\.?(?![^\W\d_])"
    joining = word_alternation(joining_words(languages))
    genitive = word_alternation(genitive_words(languages))
    of = r"(?:\s+(?:" + genitive + r"))?" if genitive else ""
    part = r"(?:\s*/\s*|[\s-]+)"  # "15 Januar 2008", "12-Jan-2008", "29 / Dezember / 2022"
    ending_at_year = (
        # Month D, YYYY: "Sunday, December 30, 2007", "Jan. 12, 2008", "JAN 9 2008",
        # "January 10. 2008"
        re.compile(month + r"\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?[,.]?\s+(?P<y>\d{4})$", re.I),
        # D Month YYYY: "16 January 2008", "12-Jan-2008", "9th, Jan 2008", "15. Januar 2008",
        # "15 de enero de 2008", "1er janvier 2008"
        re.compile(
            r"\b(?P<d>\d{1,2})(?:st|nd|rd|th|er|º)?\.?,?"
            + of
            + part
            + month
            + r",?"
            + of
            + part
            + r"(?P<y>\d{4})$",
            re.I,
        ),
        # Numeric: "01/08/2008", "(14/01/2008)", "15.01.2008", "4. 2. 2022"
        re.compile(
            r"(?<![\d/.])(?P<a>\d{1,2})(?P<sep>[/.])(?:(?<=\.)\s)?(?P<b>\d{1,2})(?P=sep)"
            r"(?:(?<=\.)\s)?(?P<y>\d{4})$"
        ),
    )
    # The time between day and year, as in e-mail and log stamps: "Sat, 29 Dec 15:58:00 2007",
    # "Sat Dec 29 15:58:00 2007". Tried only at a year that follows a time ("...:00 2007").
    time_before_year = (
        re.compile(r"\b(?P<d>\d{1,2})\s+" + month + _TIME_IN_DATE, re.I),
        re.compile(r"\b" + month + r"\s+(?P<d>\d{1,2})" + _TIME_IN_DATE, re.I),
    )
    # "at" and its words in the page's language ("um", "à", "a las") may stand between.
    time_after = re.compile(
        r"(?:[\s,|@\-–—]|T(?=\d))*(?:(?:" + joining + r")\s+|-\s*)?" + _TIME, re.I
    )
    # A month name and a two-digit year: "( Pescasseroli, 14 Gennaio 20 )", "31. Mai 12"; only
    # where the line or a clause ends after it: "am 5. Mai 20 Personen", "31. Mai 12 Uhr",
    # "Mai 12:30" are not years. It starts with its digits, which the regex engine scans for
    # fast (no lookbehind first): what stands before them is checked by _is_number_start.
    short_year = re.compile(
        r"(?P<d>\d{1,2})(?:st|nd|rd|th|er|º)?\.?,?"
        + of
        + r"\s+"
        + month
        + of
        + r"\s+(?P<y>\d\d)(?=[ \t]*(?:$|[)\],;|–—]|-\s))",
        re.I | re.M,
    )
    return DateWords(
        months=months,
        month=month,
        joining=joining,
        genitive=genitive,
        day_first=language != "en" and is_day_first(language),
        ending_at_year=ending_at_year,
        time_before_year=time_before_year,
        time_after=time_after,
        short_year=short_year,
    )


# Shared with transforms/partial_dates.py (dates without a year, relative times).
TIME_PATTERN = _TIME
_OFFSET = re.compile(r"([+-])\s?(\d{1,2}):?(\d{2})?$")


@dataclass(frozen=True, slots=True)
class DateMention:
    """A date written in a text: where it starts and ends, and its value in UTC."""

    start: int
    end: int
    value: datetime
    has_time: bool


def find_dates(text: str, language: str = "en", day_first: bool | None = None) -> list[DateMention]:
    """Every plausible full date (day, month, year) in the text, in order of position, read
    with the month names and numeric order of the text's language and of English."""
    words = date_words(language)
    first = words.day_first or has_day_first_slashes(text) if day_first is None else day_first
    found: dict[int, DateMention] = {}
    for year in _YEAR.finditer(text):
        end = year.end()
        lo = max(0, year.start() - _BEFORE_YEAR)
        patterns = words.ending_at_year
        if _AFTER_TIME.search(text, max(0, year.start() - 5), year.start()):
            patterns = words.time_before_year
        matches = [p.search(text, lo, end) for p in patterns]
        matches.append(_ISO.match(text, year.start()) or _CJK.match(text, year.start()))
        for match in matches:
            if match is not None:
                _add(found, _mention(text, match, words, first))
    for match in _SHORT_YEAR.finditer(text):
        _add(found, _mention(text, match, words, first))
    if not found:  # a page that writes its years in two digits writes all its dates so
        for match in words.short_year.finditer(text):
            if _is_number_start(text, match.start()):
                _add(found, _mention(text, match, words, first))
    return sorted(found.values(), key=lambda m: m.start)


# Slashed numeric dates, for the order a page writes them in.
# It starts at the first slash, a literal the regex engine scans for fast; the number before it
# is read back (_FIRST_NUMBER).
_SLASHED = re.compile(r"/(\d{1,2})/(?:\d{4}|\d\d)(?![\d/])")
_FIRST_NUMBER = re.compile(r"(?<![\d./])\d{1,2}$")


def _is_number_start(text: str, pos: int) -> bool:
    """Whether a number starts at pos, not inside a longer number or a date ("1.5", "3/4")."""
    return pos == 0 or text[pos - 1] not in "0123456789./"


def has_day_first_slashes(text: str) -> bool:
    """Whether the text's slashed dates are day first: one has a first number over 12 ("23/04/
    2020") and none a second one ("04/23/2020"). An English page may be British or Indian."""
    day_first = False
    for match in _SLASHED.finditer(text):
        number = _FIRST_NUMBER.search(text, max(0, match.start() - 3), match.start())
        if number is None:
            continue
        first, second = int(number.group()), int(match.group(1))
        if second > 12 and first <= 12:
            return False
        day_first = day_first or (first > 12 and second <= 12)
    return day_first


def _add(found: dict[int, DateMention], mention: DateMention | None) -> None:
    """Keep a mention unless another one starts at the same place."""
    if mention is not None and mention.start not in found:
        found[mention.start] = mention


# The words that mark a date as an update's, in the languages of the pages met: no kept locale
# data lists them. Looked for in the few words before a date on its line.
_UPDATED = re.compile(
    r"(?<![^\W\d_])(?:updated?|last modified|modified|aktualisiert|geändert|mis à jour|modifié"
    r"|actualizad[oa]|actualización|aggiornat[oa]|aggiornamento|atualizad[oa]|zaktualizowano"
    r"|aktualizacja|päivitetty|oppdatert|frissítve|обновлено|更新)",
    re.I,
)
_UPDATE_REACH = 30
# An update's date loses to a publication date this many characters further off.
_UPDATE_COST = 600

# A line this long is a paragraph of prose; a date further in than the opening words is in it.
_PROSE_LINE = 100
_OPENING_WORDS = 40
# Within the opening words, a date is the sentence's when words run on from it ("Seit 4. August
# 2014 ist ...") or two lowercase words lead to it ("Wir suchen zum 1. April 2016").
_RUNS_ON = re.compile(r"\s+[^\W\d_]")
_WORD = re.compile(r"[^\W\d_]+")


# How far into prose a date stands (prose_level): free (a short line, a paragraph's opening),
# a sentence's opening words, deep in a paragraph.
FREE, SENTENCE, PROSE = 0, 1, 2


def dates_around(
    text: str, anchor: int, before: int, after: int, language: str
) -> list[DateMention]:
    """The dates in text[anchor - before : anchor + after], at their places in the text."""
    lo = max(0, anchor - before)
    day_first = date_words(language).day_first or has_day_first_slashes(text)
    return [
        DateMention(m.start + lo, m.end + lo, m.value, m.has_time)
        for m in find_dates(text[lo : anchor + after], language, day_first)
    ]


def nearest_date(
    text: str, anchor: int, mentions: list[DateMention], prose: int = PROSE
) -> DateMention | None:
    """The mention closest to a position (a headline, an article start), preferring one before
    it, among those no deeper in prose than `prose`."""
    best: tuple[float, DateMention] | None = None
    for mention in mentions:
        pos = mention.start
        if prose < PROSE and prose_level(text, pos, mention.end) > prose:
            continue
        # A date after the anchor is more often a comment stamp or an aside: weigh it double.
        distance = float(anchor - pos) if pos <= anchor else 2.0 * (pos - anchor)
        distance -= 40 if mention.has_time else 0
        distance += _UPDATE_COST if is_update(text, pos) else 0
        if best is None or distance < best[0]:
            best = (distance, mention)
    return best[1] if best is not None else None


def date_near(
    text: str,
    anchor: int,
    before: int = 600,
    after: int = 300,
    *,
    prose: int = PROSE,
    language: str = "en",
) -> DateMention | None:
    """The date closest to a position, preferring one before it (see nearest_date)."""
    return nearest_date(text, anchor, dates_around(text, anchor, before, after, language), prose)


def is_update(text: str, pos: int) -> bool:
    """A date the page says it was updated or changed on, not first published."""
    start = max(text.rfind("\n", 0, pos) + 1, pos - _UPDATE_REACH)
    return _UPDATED.search(text, start, pos) is not None


def inside_prose(text: str, pos: int) -> bool:
    """A date mid-sentence in a long paragraph is about an event, not when the page was made.

    A paragraph may open with its date ("16 January 2008 – The Security Council ..."): those
    count, so only dates past the opening words of a long line are ignored.
    """
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    end = len(text) if end < 0 else end
    return end - start > _PROSE_LINE and pos - start > _OPENING_WORDS


def prose_level(text: str, pos: int, end: int) -> int:
    """How far into prose the date at text[pos:end] stands: FREE, SENTENCE or PROSE.

    Among a paragraph's opening words, a date a sentence runs through ("Seit 4. August 2014
    ist ...", "Wir suchen zum 1. April 2016") is more often an event's; but it may be the
    page's own ("Dieser Beitrag wurde am 04/02/2020 ... veröffentlicht"), so it is kept apart.
    """
    start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos)
    if (len(text) if line_end < 0 else line_end) - start <= _PROSE_LINE:
        return FREE
    if pos - start > _OPENING_WORDS:
        return PROSE
    leading = sum(w[0].islower() for w in _WORD.findall(text, start, pos))
    return SENTENCE if leading >= 2 or _RUNS_ON.match(text, end) else FREE


def _mention(
    text: str, match: re.Match[str], words: DateWords, day_first: bool
) -> DateMention | None:
    """The date of one match, with a time found right after or right before it."""
    day = _ymd(match, words, day_first)
    if day is None:
        return None
    end, start = match.end(), match.start()
    if match.groupdict().get("hh"):  # the time stands between day and year
        inside = with_time_of_day(day, match)
        if inside is None:
            return None
        zone = _ZONE_ALONE.match(text, end, min(len(text), end + 12))
        offset = _offset_hours(zone.group("tz")) if zone is not None else None
        return DateMention(start, end, inside - timedelta(hours=offset or 0.0), True)
    tm = words.time_after.match(text, end, min(len(text), end + 40))
    if tm is None:
        tm = _TIME_BEFORE.search(text, max(0, start - 40), start)
    if tm is not None:
        value = with_time_of_day(day, tm)
        if value is not None:
            return DateMention(min(start, tm.start()), max(end, tm.end()), value, True)
    zone = _ZONE_ALONE.match(text, end, min(len(text), end + 12))
    offset = _offset_hours(zone.group("tz")) if zone is not None else None
    # No time or zone written: midnight, read as UTC (nothing on the page says otherwise).
    return DateMention(start, end, day - timedelta(hours=offset or 0.0), False)


def _ymd(match: re.Match[str], words: DateWords, day_first: bool) -> datetime | None:
    """The calendar day a date match names, or None when it is not a real day in range."""
    parts = match.groupdict()
    year = int(parts["y"])
    if year < 100:
        year += 1900 if year >= 90 else 2000
    if parts.get("mon"):
        month = words.months[parts["mon"].lower()]
    elif parts.get("m"):
        month = int(parts["m"])
    else:
        first, second = int(parts["a"]), int(parts["b"])
        # Dotted dates are European (D.M.Y); slashed ones as the language or the page's other
        # dates write them, and in English American unless impossible as such.
        european = parts["sep"] == "." or first > 12 or day_first
        month, parts["d"] = (second, str(first)) if european else (first, str(second))
    if not MIN_YEAR <= year <= MAX_YEAR:
        return None
    try:
        return datetime(year, month, int(parts["d"]), tzinfo=UTC)
    except ValueError:
        return None


def with_time_of_day(day: datetime, tm: re.Match[str]) -> datetime | None:
    """The day at the matched time of day, shifted to UTC by its zone when one is written."""
    parts = tm.groupdict()
    hour, minute = int(parts["hh"]), int(parts["mi"] or 0)
    second = int(parts["ss"] or 0)
    ampm = (parts.get("ap") or "").lower()
    if ampm:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm.startswith("p") else 0)
    if hour > 23 or minute > 59 or second > 59:
        return None
    offset = _offset_hours(parts["tz"]) if parts.get("tz") else None
    # No zone written: the time is taken as UTC, the only reading that needs no guess.
    local = day.replace(hour=hour, minute=minute, second=second)
    return local - timedelta(hours=offset or 0.0)


def _offset_hours(zone: str) -> float | None:
    """Hours east of UTC for a zone abbreviation or a written offset."""
    zone = _SPACE.sub("", zone.lower())
    if zone in _ZONES:
        return _ZONES[zone]
    sign = _OFFSET.search(zone)
    if sign is None:
        return None
    hours = int(sign.group(2)) + int(sign.group(3) or 0) / 60
    if hours > 14:
        return None
    return hours if sign.group(1) == "+" else -hours
