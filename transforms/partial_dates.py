"""Times a page gives only in part: dates without a year, and times relative to the capture.

Both are completed from outside the date itself (the year the page states elsewhere, the time
the dump was captured), so an article dated from them is marked `inferred`, never `page`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache

from transforms.calendar_words import (
    ago_words,
    number_words,
    unit_seconds,
    weekday_numbers,
)
from transforms.dates import (
    MAX_YEAR,
    MIN_YEAR,
    TIME_PATTERN,
    date_words,
    inside_prose,
    page_languages,
    with_time_of_day,
    word_alternation,
)
from transforms.text import UNSPACED

# The weekday written before a date ("Fri Dec 28"), read back from where the date starts (as a
# group in front of the date, it was tried at every letter of the page).
_WEEKDAY_BEFORE = re.compile(r"(?<![^\W\d_])([^\W\d_]{2,10})\.?,?\s+$")
_WEEKDAY_REACH = 14


# Chinese and Japanese without a year: "06月24日 11時30分", "5月3日 14:00"; not the end of a
# full date ("2019年6月24日").
_CJK_NO_YEAR = re.compile(
    r"(?<![\d年])(?<!年\s)(?P<m>\d{1,2})\s?月\s?(?P<d>\d{1,2})\s?日"
    r"(?:\s*(?P<hh>\d{1,2})\s?[時时点:]\s?(?P<mi>\d{2})分?(?P<ss>))?"
)
# The end of a word: a boundary, or none after a word of an unspaced script ("3時間前").
_END = r"(?:\b|(?<=" + UNSPACED.pattern + r"))"
# The space between words, which may be none before a word of an unspaced script.
_GAP = r"(?:\s+|\s*(?=" + UNSPACED.pattern + r"))"


@dataclass(frozen=True)
class PartialDateWords:
    """The patterns of dates without a year and of relative times in a page's languages."""

    no_year: tuple[re.Pattern[str], ...]
    weekdays: dict[str, int]
    units: dict[str, int]  # seconds
    numbers: dict[str, int]  # "an" hour, "einer" Stunde
    relative: re.Pattern[str]


@cache
def partial_date_words(language: str) -> PartialDateWords:
    """The patterns of partial dates of a page in a language, built once a language."""
    words = date_words(language)
    languages = page_languages(language)
    month = words.month
    time_after = r"(?:[\s,|@\-–—]*(?:(?:" + words.joining + r")\s+)?" + TIME_PATTERN + r")?"
    # A date without a year: "Fri Dec 28, 6:09 PM ET", "Sat 19 Jan, 10:45 AM", "Tuesday January
    # 15", and numeric month/day only with a time ("01/09 18:48:47 ET"): alone, "1/2" is a
    # fraction.
    no_year = (
        re.compile(
            r"(?<![^\W\d_])"
            + month
            + r"\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?(?![\d:])(?!\.?,?\s*\d{4})"
            + time_after,
            re.I,
        ),
        re.compile(
            r"(?<!\d)(?P<d>\d{1,2})(?:st|nd|rd|th|er)?\.?"
            + (r"(?:\s+(?:" + words.genitive + r"))?" if words.genitive else "")
            + r"\s+"
            + month
            + r"(?!\s*,?\s*\d{4})"
            + time_after,
            re.I,
        ),
        re.compile(
            r"(?<![\d/.])(?P<m>\d{1,2})/(?P<d>\d{1,2})(?![\d/])[\s,]+" + TIME_PATTERN,
            re.I,
        ),
        _CJK_NO_YEAR,
    )
    # Relative times: "5 days ago", "1 hour, 24 minutes ago", "il y a 3 heures", "vor 2
    # Stunden", "hace 3 horas", "3 godziny temu". Months and years ago are too vague.
    units, numbers = unit_seconds(languages), number_words(languages)
    unit = word_alternation(units)
    count = r"\d{1,3}" + ("|" + word_alternation(numbers) if numbers else "")

    def amount(i: int) -> str:
        return rf"(?P<n{i}>{count}){_GAP}(?P<u{i}>{unit}){_END}"

    ago = word_alternation(ago_words(languages))
    relative = re.compile(
        r"(?:\b(?:"
        + ago
        + r")\s+"
        + amount(1)
        + r"|\b"
        + amount(2)
        + r"(?:,?\s+(?:(?:"
        + words.joining
        + r")\s+)?"
        + amount(3)
        + r")?"
        + _GAP
        + "(?:"
        + ago
        + r")"
        + _END
        + ")",
        re.I,
    )
    return PartialDateWords(
        no_year=no_year,
        weekdays=weekday_numbers(languages),
        units=units,
        numbers=numbers,
        relative=relative,
    )


# A line this short that holds a date is a date line (a byline, "Posted ..."), not a sentence.
_DATE_LINE = 80
_RELATIVE_LINE = 160


# Where a page states its own year: a copyright notice ("© 2006-07 ...", "Copyright 2008",
# "© Guardian News and Media Limited 2008").
_COPYRIGHT = re.compile(r"©|\(c\)|copyright", re.I)
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d\d)(?:\s*[-–]\s*(\d\d(?:\d\d)?))?(?!\d)")
_COPYRIGHT_REACH = 80
# Failing a notice, the year in the path of an address the page prints (a share link:
# "ladiaria.com.uy/ambiente/articulo/2022/5/productor-...").
_PATH_YEAR = re.compile(r"\w/((?:19|20)\d\d)/[01]?\d/")


def page_year(text: str) -> int | None:
    """The latest year a copyright notice on the page names (the page is of that year or so),
    or failing one, the latest year of a dated address on it."""
    years: list[int] = []
    for mark in _COPYRIGHT.finditer(text):
        for year in _YEAR.finditer(text, mark.end(), mark.end() + _COPYRIGHT_REACH):
            first = int(year.group(1))
            last = year.group(2)
            if last is not None:  # a range: "1997 - 2007", "2006-07"
                first = int(last) if len(last) == 4 else first // 100 * 100 + int(last)
            if MIN_YEAR <= first <= MAX_YEAR:
                years.append(first)
    if not years:
        years = [int(y) for y in _PATH_YEAR.findall(text) if MIN_YEAR <= int(y) <= MAX_YEAR]
    return max(years) if years else None


def date_without_year(
    text: str,
    lo: int,
    hi: int,
    anchor: int,
    year: int | None,
    captured_at: datetime | None,
    language: str = "en",
) -> datetime | None:
    """The date without a year nearest the anchor in text[lo:hi], its year completed."""
    words = partial_date_words(language)
    best: tuple[int, datetime] | None = None
    for pattern in words.no_year:
        for match in pattern.finditer(text, lo, hi):
            if not _is_date_line(text, match) or inside_prose(text, match.start()):
                continue
            value = _completed(text, match, year, captured_at, language)
            distance = abs(anchor - match.start())
            if value is not None and (best is None or distance < best[0]):
                best = (distance, value)
    return best[1] if best is not None else None


def relative_time(
    text: str, lo: int, hi: int, anchor: int, captured_at: datetime, language: str = "en"
) -> datetime | None:
    """The capture time less the relative time ("3 hours ago") nearest the anchor."""
    words = partial_date_words(language)
    best: tuple[int, datetime] | None = None
    for match in words.relative.finditer(text, lo, hi):
        start = text.rfind("\n", 0, match.start()) + 1
        end = text.find("\n", match.end())
        if (len(text) if end < 0 else end) - start > _RELATIVE_LINE:
            continue  # inside a paragraph: "two days ago, the minister said"
        seconds = _seconds(match, words)
        distance = abs(anchor - match.start())
        if seconds is not None and (best is None or distance < best[0]):
            best = (distance, captured_at - timedelta(seconds=seconds))
    return best[1] if best is not None else None


def _seconds(match: re.Match[str], words: PartialDateWords) -> int | None:
    """How far back a relative time reaches, in seconds."""
    total = 0
    for i in (1, 2, 3):
        amount, unit = match.group(f"n{i}"), match.group(f"u{i}")
        if amount is None or unit is None:
            continue
        n = int(amount) if amount.isdigit() else words.numbers.get(amount.lower(), 1)
        scale = words.units.get(unit.lower())
        if scale is None:
            return None
        total += n * scale
    return total or None


def _is_date_line(text: str, match: re.Match[str]) -> bool:
    """A date without a year counts when a time goes with it or it stands on a short line."""
    if match.group("hh"):
        return True
    start = text.rfind("\n", 0, match.start()) + 1
    end = text.find("\n", match.end())
    return (len(text) if end < 0 else end) - start <= _DATE_LINE


def _completed(
    text: str,
    match: re.Match[str],
    year: int | None,
    captured_at: datetime | None,
    language: str,
) -> datetime | None:
    """The match's date in the year the page or the capture suggests; None if none fits."""
    parts = match.groupdict()
    words = date_words(language)
    month = words.months[parts["mon"].lower()] if parts.get("mon") else int(parts["m"])
    day = int(parts["d"])
    candidates = [y for y in (year, captured_at.year if captured_at else None) if y]
    years = [y for c in candidates for y in (c, c - 1)]
    before = _WEEKDAY_BEFORE.search(text, max(0, match.start() - _WEEKDAY_REACH), match.start())
    weekdays = partial_date_words(language).weekdays
    weekday = weekdays.get(before.group(1).lower()) if before is not None else None
    chosen = _year_of(month, day, years, weekday, captured_at)
    if chosen is None:
        return None
    midnight = datetime(chosen, month, day, tzinfo=UTC)
    return with_time_of_day(midnight, match) if parts.get("hh") else midnight


def _year_of(
    month: int, day: int, years: list[int], weekday: int | None, captured_at: datetime | None
) -> int | None:
    """The first year that gives a real day, on the weekday written, not after the capture."""
    for y in years:
        try:
            when = date(y, month, day)
        except ValueError:
            continue
        if weekday is not None and when.weekday() != weekday:
            continue
        if captured_at is not None and when > captured_at.date() + timedelta(days=1):
            continue
        return y
    return None
