"""Who wrote an article: the names of its byline, as the page prints them.

No kept source of locale data lists the words that open a byline ("By", "Von", "Par"): CLDR has
none, nor have dateparser's tables or the stopword lists. So the few below are typed, one or
two a language of the pages seen, and only read where a byline stands: at the start of a short
line above the article, or after a date or a "Posted"-like word on it.
"""

from __future__ import annotations

import re

# The word before the names: English, German, French, Spanish and Portuguese, Italian, Dutch.
_BY = r"(?:by|von|vom|par|por|di|door)"
# A label before the names: "Author: X", "Autor: X", "Auteur : X".
_LABEL = r"(?:author|autor|autorin|auteur|autore)\s?:"
# Words a byline may open with before its "by": "Posted by", "Veröffentlicht von".
_POSTED = r"(?:posted|written|published|veröffentlicht|publiziert|geschrieben|publicado|publié)"
# A name: capitalised words, with the particles of names between them ("Walter von Aachen",
# "Luis de la Fuente"); a user name alone ("uriebe", "Herr_Rein") when it ends the byline.
_WORD = r"[^\W\d_][\w.'’-]*"
_CAPITAL = r"[^\W\d_a-zß-ÿ][\w.'’-]*"
_PARTICLE = r"(?:von|van|der|den|de|del|la|le|da|di|du|dos|zu|ter|ten|bin|al)"
_NAME = _CAPITAL + r"(?:\s(?:" + _PARTICLE + r"\s)*" + _CAPITAL + r"){0,3}"
_AND = r"\s(?:and|und|et|y|e|&)\s"
_NAMES = r"(?P<names>" + _NAME + r"(?:" + _AND + _NAME + r")*)"
_BYLINE = re.compile(
    r"(?:^|(?<=[\d\s|•·:,]))(?:(?i:" + _BY + r")\s+|(?i:" + _LABEL + r")\s*)" + _NAMES
)
_USER = re.compile(r"(?:^|(?<=[\d\s|•·:,]))(?i:" + _BY + r")\s+(?P<names>" + _WORD + r")\s*$")
# What may stand before the "by" on its line: nothing but a date's digits and marks, or a
# "Posted"-like word and what follows it ("Posted 11. April 2018 by X").
_BEFORE_OK = re.compile(r"^(?:[\W\d_]*|.*\b(?i:" + _POSTED + r")\b.*)$")
_SPLIT = re.compile(_AND)
# A byline is a short line; it stands within these many lines above the article's first one.
_BYLINE_CHARS = 100
_REACH = 15


def byline_author(lines: list[str], body_line: int) -> str | None:
    """The names of the byline nearest above the article's first line (several joined by
    "; " in the page's order), or None where no byline is found."""
    for i in range(body_line - 1, max(-1, body_line - _REACH - 1), -1):
        names = _names_of(lines[i].strip())
        if names is not None:
            return names
    return None


def _names_of(line: str) -> str | None:
    """The names of a byline line, or None if the line is no byline."""
    if not line or len(line) > _BYLINE_CHARS:
        return None
    for pattern in (_BYLINE, _USER):
        match = pattern.search(line)
        if match is not None and _BEFORE_OK.match(line[: match.start()]):
            names = [n.strip() for n in _SPLIT.split(match.group("names")) if n.strip()]
            return "; ".join(names) if names else None
    return None


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
