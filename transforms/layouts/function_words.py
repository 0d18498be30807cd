"""The function words of a page's language, from a kept library's stopword lists.

Prose is dense in function words ("the", "der", "de"), menus and link lists are not. The
language is the one whose list covers most words of the page's longer lines: no typed lists,
no language model, and a page in a language without a list gets none (the tests of prose then
rest on punctuation and length alone).
"""

from __future__ import annotations

from collections import Counter
from functools import cache

from stopwordsiso import langs, stopwords

# Lines at least this long are read to tell the language: menus are shorter.
_LONG_LINE = 40
# Fewer words covered than this: no language is told (a page of names and numbers).
_MIN_COVERED = 20
_PUNCTUATION = str.maketrans({c: " " for c in "\"'“”‘’„«».,;:!?()[]{}<>|/\\-–—_*#@&=+"})


@cache
def _languages_of_words() -> dict[str, tuple[str, ...]]:
    """Each function word with the languages whose lists hold it (built once: a pure value)."""
    found: dict[str, list[str]] = {}
    for lang in sorted(langs()):
        for word in stopwords(lang):
            found.setdefault(word.casefold(), []).append(lang)
    return {word: tuple(names) for word, names in found.items()}


@cache
def function_words(language: str) -> frozenset[str]:
    """The function words of a language (ISO 639-1), empty for one without a list."""
    return frozenset(w.casefold() for w in stopwords(language))


def page_language(lines: list[str]) -> str | None:
    """The language whose function words cover most words of the page's longer lines."""
    words_of = _languages_of_words()
    counts: Counter[str] = Counter()
    for line in lines:
        if len(line) >= _LONG_LINE:
            for word in line.casefold().translate(_PUNCTUATION).split():
                counts.update(words_of.get(word, ()))
    if not counts:
        return None
    language, covered = counts.most_common(1)[0]
    return language if covered >= _MIN_COVERED else None
