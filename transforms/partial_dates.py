"""Times a page gives only in part: dates without a year, and times relative to the capture.

Both are completed from outside the date itself (the year the page states elsewhere, the time
the dump was captured), so an article dated from them is marked `inferred`, never `page`.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from transforms.dates import (
    MAX_YEAR,
    MIN_YEAR,
    MONTH_NUMBERS,
    MONTH_PATTERN,
    TIME_PATTERN,
    inside_prose,
    with_time_of_day,
)

_WEEKDAYS = {
    name: i
    for i, names in enumerate(
        (
            "mon monday lun lundi lunes montag mo lunedì lunedi segunda",
            "tue tues tuesday mar mardi martes dienstag di martedì martedi terça terca",
            "wed weds wednesday mer mercredi miércoles miercoles mittwoch mi mercoledì mercoledi",
            "thu thur thurs thursday jeu jeudi jueves donnerstag do giovedì giovedi quinta",
            "fri friday ven vendredi viernes freitag fr venerdì venerdi sexta",
            "sat saturday sam samedi sábado sabado samstag sa sabato",
            "sun sunday dim dimanche domingo sonntag so domenica",
        )
    )
    for name in names.split()
}
# The weekday written before a date ("Fri Dec 28"), read back from where the date starts (as a
# group in front of the date, it was tried at every letter of the page).
_WEEKDAY_BEFORE = re.compile(r"(?<![^\W\d_])([^\W\d_]{2,10})\.?,?\s+$")
_WEEKDAY_REACH = 14
_TIME_AFTER = r"(?:[\s,|@\-–—]*(?:at\s+|à\s+|um\s+)?" + TIME_PATTERN + r")?"
# A date without a year: "Fri Dec 28, 6:09 PM ET", "Sat 19 Jan, 10:45 AM", "Tuesday January 15",
# and numeric month/day only with a time ("01/09 18:48:47 ET"): alone, "1/2" is a fraction.
_NO_YEAR = [
    re.compile(
        r"(?<![^\W\d_])"
        + MONTH_PATTERN
        + r"\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?(?![\d:])(?!\.?,?\s*\d{4})"
        + _TIME_AFTER,
        re.I,
    ),
    re.compile(
        r"(?<!\d)(?P<d>\d{1,2})(?:st|nd|rd|th|er)?\.?(?:\s+de)?\s+"
        + MONTH_PATTERN
        + r"(?!\s*,?\s*\d{4})"
        + _TIME_AFTER,
        re.I,
    ),
    re.compile(
        r"(?<![\d/.])(?P<m>\d{1,2})/(?P<d>\d{1,2})(?![\d/])[\s,]+" + TIME_PATTERN,
        re.I,
    ),
]
# A line this short that holds a date is a date line (a byline, "Posted ..."), not a sentence.
_DATE_LINE = 80
# Relative times: "5 days ago", "1 hour, 24 minutes ago", "il y a 3 heures", "vor 2 Stunden",
# "hace 3 horas", "há 2 dias". Months and years ago are too vague to date a page by.
_UNITS = {
    "sec": 1, "second": 1, "seconde": 1, "segundo": 1, "sekunde": 1,
    "min": 60, "minute": 60, "minuto": 60, "minuten": 60, "mins": 60,
    "hr": 3600, "hour": 3600, "heure": 3600, "hora": 3600, "stunde": 3600, "stunden": 3600,
    "day": 86400, "jour": 86400, "día": 86400, "dia": 86400, "tag": 86400, "tage": 86400,
    "tagen": 86400, "week": 604800, "semaine": 604800, "semana": 604800, "woche": 604800,
    "wochen": 604800,
}  # fmt: skip
_UNIT = r"(?:" + "|".join(sorted(_UNITS, key=len, reverse=True)) + r")s?"
_AMOUNT = r"(?P<n{i}>\d{{1,3}}|an?|one)\s+(?P<u{i}>" + _UNIT + r")\b"
_RELATIVE = re.compile(
    r"(?:\b(?:il y a|vor|hace|há|ha)\s+"
    + _AMOUNT.format(i=1)
    + r"|\b"
    + _AMOUNT.format(i=2)
    + r"(?:,?\s+(?:and\s+)?"
    + _AMOUNT.format(i=3)
    + r")?\s+ago\b)",
    re.I,
)
_RELATIVE_LINE = 160
# Where a page states its own year: a copyright notice ("© 2006-07 ...", "Copyright 2008",
# "© Guardian News and Media Limited 2008").
_COPYRIGHT = re.compile(r"©|\(c\)|copyright", re.I)
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d\d)(?:\s*[-–]\s*(\d\d(?:\d\d)?))?(?!\d)")
_COPYRIGHT_REACH = 80


def page_year(text: str) -> int | None:
    """The latest year a copyright notice on the page names (the page is of that year or so)."""
    years: list[int] = []
    for mark in _COPYRIGHT.finditer(text):
        for year in _YEAR.finditer(text, mark.end(), mark.end() + _COPYRIGHT_REACH):
            first = int(year.group(1))
            last = year.group(2)
            if last is not None:  # a range: "1997 - 2007", "2006-07"
                first = int(last) if len(last) == 4 else first // 100 * 100 + int(last)
            if MIN_YEAR <= first <= MAX_YEAR:
                years.append(first)
    return max(years) if years else None


def date_without_year(
    text: str, lo: int, hi: int, anchor: int, year: int | None, captured_at: datetime | None
) -> datetime | None:
    """The date without a year nearest the anchor in text[lo:hi], its year completed."""
    best: tuple[int, datetime] | None = None
    for pattern in _NO_YEAR:
        for match in pattern.finditer(text, lo, hi):
            if not _is_date_line(text, match) or inside_prose(text, match.start()):
                continue
            value = _completed(text, match, year, captured_at)
            distance = abs(anchor - match.start())
            if value is not None and (best is None or distance < best[0]):
                best = (distance, value)
    return best[1] if best is not None else None


def relative_time(
    text: str, lo: int, hi: int, anchor: int, captured_at: datetime
) -> datetime | None:
    """The capture time less the relative time ("3 hours ago") nearest the anchor."""
    best: tuple[int, datetime] | None = None
    for match in _RELATIVE.finditer(text, lo, hi):
        start = text.rfind("\n", 0, match.start()) + 1
        end = text.find("\n", match.end())
        if (len(text) if end < 0 else end) - start > _RELATIVE_LINE:
            continue  # inside a paragraph: "two days ago, the minister said"
        seconds = _seconds(match)
        distance = abs(anchor - match.start())
        if seconds is not None and (best is None or distance < best[0]):
            best = (distance, captured_at - timedelta(seconds=seconds))
    return best[1] if best is not None else None


def _seconds(match: re.Match[str]) -> int | None:
    """How far back a relative time reaches, in seconds."""
    total = 0
    for i in (1, 2, 3):
        amount, unit = match.group(f"n{i}"), match.group(f"u{i}")
        if amount is None or unit is None:
            continue
        n = int(amount) if amount.isdigit() else 1
        word = unit.lower()
        scale = _UNITS.get(word) or _UNITS.get(word[:-1])
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
    text: str, match: re.Match[str], year: int | None, captured_at: datetime | None
) -> datetime | None:
    """The match's date in the year the page or the capture suggests; None if none fits."""
    parts = match.groupdict()
    month = MONTH_NUMBERS[parts["mon"].lower()] if parts.get("mon") else int(parts["m"])
    day = int(parts["d"])
    candidates = [y for y in (year, captured_at.year if captured_at else None) if y]
    years = [y for c in candidates for y in (c, c - 1)]
    before = _WEEKDAY_BEFORE.search(text, max(0, match.start() - _WEEKDAY_REACH), match.start())
    weekday = _WEEKDAYS.get(before.group(1).lower()) if before is not None else None
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
