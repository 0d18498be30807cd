"""The words dates are written with in each language, from dateparser's locale tables.

dateparser keeps, for some 200 languages, the month and weekday names of CLDR (wide and
abbreviated, format and stand-alone forms) with the variants its users met on real pages
("Jänner", "Mrz"), the units and the word of relative times ("vor", "il y a", "ago"), the
words that join a date to its time ("um", "à", "a las") and the order of numeric dates. Only
its tables are read here, as data (literal Python dictionaries), never its parser: importing
dateparser costs 180 ms, and its parser 9 ms a string. A language's table is read the first time
a page of that language is parsed (2 to 5 ms), then kept.
"""

from __future__ import annotations

import ast
import importlib.util
import unicodedata
from functools import cache
from typing import Any

MONTHS = (
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december",
)  # fmt: skip
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# The units of relative times, in seconds; months and years ago are too vague to date a page by.
UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}
# ISO 639-1 codes the detectors name whose table dateparser keeps under another code: the
# macrolanguage Norwegian is written Bokmål on nearly every page.
_TABLE_OF = {"no": "nb"}
# Forms of fewer letters are Roman numerals (Hungarian "V") or two-letter Turkish cuts ("Ni")
# that stand for other words too; a two-character form in a script beyond Latin (Bengali "মে")
# is a whole name.
_MIN_LETTERS = 3
_LATIN_END = 0x24F


def _table_source(name: str) -> bytes | None:
    """The text of dateparser's table file for a language, read through its package's loader
    (as a library reads its own data: no path of the machine is named here), or None."""
    spec = importlib.util.find_spec("dateparser")
    if spec is None or not spec.submodule_search_locations or spec.loader is None:
        return None
    folder = next(iter(spec.submodule_search_locations))
    get_data = getattr(spec.loader, "get_data", None)
    if get_data is None:
        return None
    try:
        data = get_data(f"{folder}/data/date_translation_data/{name}.py")
    except OSError:  # no table for this language
        return None
    return data if isinstance(data, bytes) else None


@cache
def locale_table(language: str) -> dict[str, Any]:
    """dateparser's table of a language (an ISO 639-1 code), or an empty one if it has none."""
    name = _TABLE_OF.get(language, language)
    source = _table_source(name) if name.replace("-", "").isalpha() else None
    if source is None:
        return {}
    text = source.decode("utf-8")
    table = ast.literal_eval(text[text.index("{") :])
    return table if isinstance(table, dict) else {}


def _forms(words: list[str]) -> set[str]:
    """The lowercase forms of names, with their accents dropped too ("fevrier", "aout")."""
    out: set[str] = set()
    for word in words:
        word = word.lower().rstrip(".")
        if not all(c.isalpha() or c in ".'" for c in word):
            continue  # "1月", forms with digits: CJK dates have a pattern of their own
        if len(word) < _MIN_LETTERS and all(ord(c) <= _LATIN_END for c in word):
            continue
        out.add(word)
        bare = "".join(
            c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c)
        )
        if bare != word and bare.isascii():
            out.add(bare)
    return out


def _numbered(language: str, keys: tuple[str, ...]) -> dict[str, int]:
    """Each form of the table's names under `keys`, numbered from 1 in their order."""
    table = locale_table(language)
    out: dict[str, int] = {}
    for number, key in enumerate(keys, 1):
        for form in sorted(_forms(table.get(key, []))):
            out.setdefault(form, number)
    return out


@cache
def month_numbers(languages: tuple[str, ...]) -> dict[str, int]:
    """The month names of the languages, lowercase, each with its month (1-12); a name two
    languages give different months ("listopad": November in Polish, October in Croatian)
    keeps the first language's."""
    out: dict[str, int] = {}
    for language in languages:
        for form, number in _numbered(language, MONTHS).items():
            out.setdefault(form, number)
    return out


@cache
def weekday_numbers(languages: tuple[str, ...]) -> dict[str, int]:
    """The weekday names of the languages, lowercase, each with its weekday (Monday 0)."""
    out: dict[str, int] = {}
    for language in languages:
        for form, number in _numbered(language, WEEKDAYS).items():
            out.setdefault(form, number - 1)
    return out


@cache
def unit_seconds(languages: tuple[str, ...]) -> dict[str, int]:
    """The words of the units of relative times (seconds to weeks), each with its length."""
    out: dict[str, int] = {}
    for language in languages:
        table = locale_table(language)
        for unit, seconds in UNIT_SECONDS.items():
            for word in table.get(unit, []):
                if len(word) >= 2 or not word.isascii():  # "h", "d", "m" stand for much else
                    out.setdefault(word.lower(), seconds)
    return out


@cache
def number_words(languages: tuple[str, ...]) -> dict[str, int]:
    """Words that stand for a small number in relative times ("an hour", "einer Stunde")."""
    out: dict[str, int] = {}
    for language in languages:
        for rule in locale_table(language).get("simplifications", []):
            for word, value in rule.items():
                if value.isdigit() and word.replace("'", "").isalpha():
                    out.setdefault(word.lower(), int(value))
    return out


def _words(languages: tuple[str, ...], key: str) -> tuple[str, ...]:
    """The plain words (letters and spaces) the languages' tables list under a key."""
    words = {
        w.lower().strip()
        for language in languages
        for w in locale_table(language).get(key, [])
        if w.strip() and all(c.isalpha() or c in " '" for c in w.strip())
    }
    return tuple(sorted(words))


@cache
def ago_words(languages: tuple[str, ...]) -> tuple[str, ...]:
    """The words that make a time relative to now ("ago", "vor", "il y a", "hace", "temu")."""
    return _words(languages, "ago")


@cache
def joining_words(languages: tuple[str, ...]) -> tuple[str, ...]:
    """The words a page may set between a date and its time ("at", "um", "à", "a las", "om")."""
    return _words(languages, "skip")


@cache
def genitive_words(languages: tuple[str, ...]) -> tuple[str, ...]:
    """The words a page may set between day, month and year ("of", "de", "del")."""
    return _words(languages, "pertain")


def is_day_first(language: str) -> bool:
    """Whether the language writes numeric dates day first (15/01/2008), by its table."""
    return str(locale_table(language).get("date_order", "")).startswith("D")
