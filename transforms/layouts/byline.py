"""Who wrote an article: the names of its byline, as the page prints them.

A byline is read where it opens with a byline word ("Von X", "Par X", "Publicado por" and the
names on the next line), or where a name stands alone on a short line beside the story's date
("Jeanne Corriveau" over "19 février 2020"): most pages print it so, with no word before it.

No kept source of locale data lists the words that open a byline ("By", "Von", "Par"): CLDR has
none, nor have dateparser's tables or the stopword lists. So the few below are typed, one or
two a language of the pages seen, and only read where a byline stands: at the start of a short
line above the article, or after a date or a "Posted"-like word on it; or alone on a line, over
the names (anywhere on the page: in an author box under the story too).
"""

from __future__ import annotations

import re

from transforms.dates import find_dates
from transforms.layouts.function_words import function_words

# The word before the names: English, German, French, Spanish and Portuguese, Italian, Dutch.
_BY_WORDS = ("by", "von", "vom", "par", "por", "di", "door")
_BY = r"(?:" + "|".join(_BY_WORDS) + r")"
# A label before the names: "Author: X", "Autor: X", "Auteur : X", "Author X".
_LABEL_WORDS = ("author", "autor", "autorin", "auteur", "autore")
_LABEL_WORD = r"(?:" + "|".join(_LABEL_WORDS) + r")"
_LABEL = _LABEL_WORD + r"(?:\s?:|\s)"
# Words a byline may open with before its "by": "Posted by", "Veröffentlicht von".
_POSTED = (
    r"(?:posted|written|published|veröffentlicht|publiziert|geschrieben|gepostet|publicado|publié)"
)
# A name: capitalised words, with the particles of names between them ("Walter von Aachen",
# "Luis de la Fuente"); a user name alone ("uriebe", "Herr_Rein") when it ends the byline.
_WORD = r"[^\W\d_][\w.'’-]*"
_CAPITAL = r"[^\W\d_a-zß-ÿ][\w.'’-]*"
_PARTICLE = r"(?:von|van|der|den|de|del|la|le|da|di|du|dos|zu|ter|ten|bin|al)"
_NAME = _CAPITAL + r"(?:\s(?:" + _PARTICLE + r"\s)*" + _CAPITAL + r"){0,3}"
_AND = r"\s(?:and|und|et|y|e|&)\s"
# A comma joins names of two words or more: one word after it is an outlet ("Rob Picheta, CNN").
_COMMA = r",\s(?=" + _CAPITAL + r"\s" + _CAPITAL + r")"
_NAMES = r"(?P<names>" + _NAME + r"(?:(?:" + _AND + r"|" + _COMMA + r")" + _NAME + r")*)"
_BYLINE = re.compile(
    r"(?:^|(?<=[\d\s|•·:,]))(?:(?i:" + _BY + r")\s+|(?i:" + _LABEL + r")\s*)" + _NAMES
)
_USER = re.compile(r"(?:^|(?<=[\d\s|•·:,]))(?i:" + _BY + r")\s+(?P<names>" + _WORD + r")\s*$")
# What may stand before the "by" on its line: nothing but a date's digits and marks, or a
# "Posted"-like word and what follows it ("Posted 11. April 2018 by X"); or a date and at most
# one word ("Stars 06.11.2023 13:30 von Olga"), or one word in small letters ("erstellt von X"):
# a capitalised one may be a name's first ("Christoph von Eichhorn").
_BEFORE_OK = re.compile(r"^(?:[\W\d_]*|.*\b(?i:" + _POSTED + r")\b.*)$")
_ONE_WORD = re.compile(r"^[\W\d_]*(?:[^\W\d_]+[\W\d_]*)?$")
_SMALL_WORD = re.compile(r"^[\W\d_]*[^\W\d_A-ZÀ-Þ][^\W\d_]*[\W\d_]*$")
_SPLIT = re.compile(_AND + r"|,\s")
# A byline is a short line; it stands within these many lines above the article's first one.
_BYLINE_CHARS = 100
# Function words this short that follow a name are no part of it ("Ein", "The"); longer ones may
# be ("Today", "Siete").
_ARTICLE_CHARS = 4
_REACH = 15
_REACH_BELOW = 8


def byline_author(
    lines: list[str], body_line: int, language: str = "en", title: str = ""
) -> str | None:
    """The names of the byline nearest above the article's first line (several joined by
    "; " in the page's order), or None where no byline is found; dates beside a name alone on
    its line are read in `language` and English, and a name alone is looked for under the
    `title`."""
    # Above the first line, nearest first; then a few lines under it, where a lede or a
    # teaser stands over the byline.
    below = range(body_line, min(len(lines), body_line + _REACH_BELOW))
    stopwords = function_words(language) | function_words("en")
    for i in [*range(body_line - 1, max(-1, body_line - _REACH - 1), -1), *below]:
        names = _names_of(lines[i].strip(), stopwords, language)
        if names is not None:
            return names
    return _standalone_author(lines, body_line, language, title.casefold())


# A byline word alone on its line, the names on the next: "Von", "Par", "Publicado por",
# "Artikel von:", "words written by".
# ("Di" alone is a weekday's, "Harald Bauer Autor" an author box's name.)
_BY_ALONE = re.compile(
    r"^(?:[^\W\d_]+\s+)?(?:(?i:"
    + _POSTED
    + r")\s+)?(?i:(?!di\b)"
    + _BY
    + r"|"
    + _LABEL_WORD
    + r")\s?:?$"
)
# The last word of a line the pattern above matches (a set's test is cheaper than a match).
_ALONE_WORDS = frozenset(_BY_WORDS + _LABEL_WORDS)
# What may follow the names on the line under it: a handle, a dash ("Williams Perdomo @wperdomod").
_AFTER_NAMES = re.compile(r"(?:\s+@\w+|\s*[-–|])+$")
# A writer's user name or one name alone under a byline word ("delta201", "Eurosport").
_ONE_NAME = re.compile(r"[^\W_][\w.'’/-]{1,29}")
# A name alone on its line: two to four capitalised words, an honorific before them, a "|" or
# a comma and the writer's role after ("Mathilda Trausch, Online-Redaktion").
_HONORIFIC = r"(?:(?:Dr|Prof|Mr|Mrs|Ms|Mme|Sr|Sra)\.?\s)*"
_INITIAL = r"[^\W\d_a-zß-ÿ]\."
_NAME_WORD = r"(?:" + _INITIAL + r"|[^\W\d_a-zß-ÿ][^\W\d_]+(?:[-'’][^\W\d_]+)?)"
_ALONE = re.compile(
    r"^(?:(?i:"
    + _BY
    + r")\s+)?(?P<names>"
    + _HONORIFIC
    + _NAME_WORD
    + r"(?:\s(?:"
    + _PARTICLE
    + r"\s)*"
    + _NAME_WORD
    + r"){1,3}(?:"
    + r"(?:"
    + _AND
    + r"|,\s)"
    + _NAME_WORD
    + r"(?:\s"
    + _NAME_WORD
    + r"){1,3})*)\s*(?:[|,](?:\s*[^\W\d_][\w-]*)?)?$"
)
# A line that is a date or a time and little else: "19.10.19, 08:16 Uhr", "le 14.09.2020".
_NUMERIC_DATE = re.compile(r"\b\d{1,2}[./]\d{1,2}[./]\d{2,4}\b|\b\d{1,2}[:h]\d{2}\b")
_DATE_LINE_CHARS = 60
# A numeric date before the name on its line: "25.10.2022 - Reiner Nagel".
_DATE_BEFORE = re.compile(r"^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}\s*[-–—|·•]\s*")
# Where a name alone is looked for: this many lines with text above the article's first line,
# and this many below it (a lede or a teaser may stand above the byline).
_ALONE_ABOVE = 20
_ALONE_BELOW = 4
# A name alone on one of these many lines under the headline is its byline.
_UNDER_HEADLINE = 2


def _standalone_author(lines: list[str], body_line: int, language: str, title: str) -> str | None:
    """The names on a line of their own after a byline word alone on its line or over a date
    line, else under one, nearest the article's first line; or in an author box under it."""
    texts = [i for i, line in enumerate(lines) if line.strip()]
    at = next((k for k, i in enumerate(texts) if i >= body_line), len(texts))
    order = [*range(at - 1, max(-1, at - _ALONE_ABOVE - 1), -1), *range(at, at + _ALONE_BELOW)]

    def line_at(k: int) -> str:
        return lines[texts[k]].strip() if 0 <= k < len(texts) else ""

    found = [(k, names) for k in order if (names := _alone_names(line_at(k))) is not None]
    # A name is printed over the date it signs more often than under it; under a date stand
    # the share tools and the next story's headline as well.
    signed = [
        n
        for k, n in found
        if _BY_ALONE.match(line_at(k - 1))
        or _is_date_line(line_at(k + 1), language)
        or _DATE_BEFORE.match(line_at(k))
    ]
    signed += [n for k, n in found if _is_date_line(line_at(k - 1), language)]
    signed += [n for k in order if (n := _dated_names(line_at(k), language)) is not None]
    page = "\n".join(lines) if signed or title else ""
    stopwords = function_words(language) | function_words("en")
    # A name alone under the headline, over the story or its lede.
    heads = (k for k in range(at - 1, max(-1, at - _ALONE_ABOVE - 1), -1) if title)
    head = next((k for k in heads if line_at(k).casefold() == title), None)
    if head is not None:
        signed += [n for k, n in found if head < k <= head + _UNDER_HEADLINE]
    for names in signed:
        if not _has_common_word(names, page, stopwords):
            return names
    # A byline word alone on its line anywhere on the page, nearest the article first: over
    # the story, or in an author box under it ("Autor", "Von:", "Geschrieben von:").
    by_alone = [
        k
        for k in range(len(texts) - 1)
        if lines[texts[k]].rstrip(" :").rpartition(" ")[2].casefold() in _ALONE_WORDS
        and _BY_ALONE.match(line_at(k))
    ]
    page = page or "\n".join(lines) if by_alone else page
    for k in sorted(by_alone, key=lambda k: abs(k - at)):
        names = _names_under_by(line_at(k + 1), stopwords)
        if names is not None and not (
            " " not in names and _has_common_word(names, page, stopwords)
        ):
            return names
    return None


def _names_under_by(line: str, stopwords: frozenset[str]) -> str | None:
    """The names of the line under a byline word alone on its line: names as a name alone on
    its line has them, or one name or a user name alone that is no function word."""
    line = _AFTER_NAMES.sub("", line)
    if _ONE_NAME.fullmatch(line):
        return None if line.casefold() in stopwords else line
    names = _alone_names(line)
    if names is None or any(w.casefold() in stopwords for w in names.split()):
        return None  # a team's name may hold common words ("Teufel Blog Redaktion")
    return names


def _has_common_word(names: str, page: str, stopwords: frozenset[str]) -> bool:
    """Whether a capitalised word of the names is a common word, no part of a name."""
    capitalised = (w for w in _WORDS.findall(names) if w[0].isupper() and len(w) > 1)
    return any(_is_common_word(w, page, stopwords) for w in capitalised)


_WORDS = re.compile(r"[^\W\d_]+")


def _is_common_word(word: str, page: str, stopwords: frozenset[str]) -> bool:
    """Whether a capitalised word is no part of a name: a function word of the page's language
    or English, or a word the page also writes in small letters ("Digital Life", "Aktuelle
    Meldung")."""
    lower = word.lower()
    if lower in stopwords:
        return True
    if lower not in page:
        return False
    return re.search(r"(?<![\w-])" + re.escape(lower) + r"(?![\w-])", page) is not None


def _alone_names(line: str) -> str | None:
    """The names of a line that holds nothing but a name or names, or None."""
    if len(line) > _BYLINE_CHARS:
        return None
    match = _ALONE.match(_DATE_BEFORE.sub("", line, count=1))
    if match is None:
        return None
    names = [n.strip() for n in _SPLIT.split(match.group("names")) if n.strip()]
    if any(len(w) > 2 and w.isupper() for w in _WORDS.findall(line)):
        return None  # in capitals: a section's or a site's name far more often than a writer's
    return "; ".join(names)


# The marks that part a byline's names from its date on one line.
_SEPARATOR = re.compile(r"\s[|·•–—-]\s|^[|·•–—-]\s|\s[|·•–—-]$")


def _dated_names(line: str, language: str) -> str | None:
    """The names of a line that gives them and a date, parted by marks ("Arne Sjöström |
    29. Dezember 2022 | HR-Welt", "28. Juni 2019 | Klaus Quibeldey-Cirkel"), or None; a word
    may follow (the story's section)."""
    if len(line) > _BYLINE_CHARS or not any(c.isdigit() for c in line):
        return None
    parts = [p.strip() for p in _SEPARATOR.split(line) if p.strip()]
    dates = [_is_date_line(p, language) for p in parts]
    rest = [p for p, dated in zip(parts, dates, strict=True) if not dated]
    if not any(dates) or not rest or any(" " in p for p in rest[1:]):
        return None
    return _alone_names(rest[0])


def _is_date_line(line: str, language: str) -> bool:
    """Whether a short line states a date or a time."""
    if not line or len(line) > _DATE_LINE_CHARS or not any(c.isdigit() for c in line):
        return False
    return bool(_NUMERIC_DATE.search(line) or find_dates(line, language))


def _names_of(line: str, stopwords: frozenset[str], language: str) -> str | None:
    """The names of a byline line, or None if the line is no byline."""
    if not line or len(line) > _BYLINE_CHARS:
        return None
    for pattern in (_BYLINE, _USER):
        match = pattern.search(line)
        if match is not None and _is_before_byline(line[: match.start()], language):
            split = _SPLIT.split(match.group("names"))
            names = [n for n in (_name_alone(n, stopwords) for n in split) if n]
            return "; ".join(names) if names else None
    return None


def _is_before_byline(before: str, language: str) -> bool:
    """Whether what stands before a byline's "by" on its line leaves it a byline."""
    if _BEFORE_OK.match(before) or _SMALL_WORD.match(before):
        return True
    dates = find_dates(before, language) if any(c.isdigit() for c in before) else []
    for mention in reversed(dates):
        before = before[: mention.start] + before[mention.end :]
    return bool(dates) and _ONE_WORD.match(before) is not None


def _name_alone(name: str, stopwords: frozenset[str]) -> str:
    """A name without the words run on after it: "KleineGrüneMonster Ein Kommentar", "Herr_Rein
    Veröffentlicht am"; a short capitalised function word (an article, a pronoun) ends it
    unless it is a name's particle."""
    words = name.split()
    for i, word in enumerate(words[1:], 1):
        lower = word.casefold()
        if (
            len(lower) <= _ARTICLE_CHARS
            and lower in stopwords
            and not re.fullmatch(_PARTICLE, lower)
        ) or re.fullmatch(_POSTED, lower):
            return " ".join(words[:i])
    return name.strip()


# Xinhua names its reporters in the dateline: "新华社巴黎12月9日电（记者唐霁）", "by Xinhua writer
# Li Jing", "by Xinhua writers Li Jing, Wang Bo".
_REPORTER_ZH = re.compile(r"（记者(?P<names>[^）]{1,40})）")
_REPORTER_EN = re.compile(
    r"\bby Xinhua (?:writers?|reporters?|correspondents?)\s+(?P<names>"
    + _NAME
    + r"(?:(?:,\s|\sand\s)"
    + _NAME
    + r")*)"
)


def reporters_of(first_paragraph: str) -> str | None:
    """The reporters a Xinhua dateline names (several joined by "; "), or None."""
    head = first_paragraph[:200]
    match = _REPORTER_ZH.search(head)
    if match is not None:
        names = re.split(r"[、，,\s]+", match.group("names"))
    else:
        match = _REPORTER_EN.search(head)
        if match is None:
            return None
        names = re.split(r",\s|\sand\s", match.group("names"))
    kept = [n.strip() for n in names if n.strip()]
    return "; ".join(kept) if kept else None
