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

from transforms.text import UNSPACED

# Lines at least this long are read to tell the language: menus are shorter.
_LONG_LINE = 40
# What is read of them: their first 500 characters, 5,000 in all. On the 1,129 pages of both
# evaluations they name the same language as whole pages, at 0.28 ms a page instead of 0.56
# (web-pages; 0.52 instead of 1.38 on the longer pages of web-multilingual).
_LINE_CHARS, _PAGE_CHARS = 500, 5000
# Fewer words covered than this: no language is told (a page of names and numbers).
_MIN_COVERED = 20
# Punctuation of every script, turned into spaces before splitting into words (str.split
# beats re.findall).
_PUNCTUATION_MARKS = (
    "\"'“”‘’„‚«».,;:!?()[]{}<>|/\\-–—_*#@&=+" + "，。、；：！？「」『』（）《》【】〈〉・"
)
_PUNCTUATION = str.maketrans({c: " " for c in _PUNCTUATION_MARKS})


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


def words_of_text(lowered: str) -> list[str]:
    """The words of a lower-cased text as the function-word tests count them: split at spaces
    and punctuation, and each ideograph or kana a word of its own (the stopword lists of
    Chinese and Japanese hold their particles: "的", "の")."""
    spaced = lowered.translate(_PUNCTUATION)
    if lowered.isascii() or UNSPACED.search(lowered) is None:  # both scans run in C
        return spaced.split()
    return UNSPACED.sub(r" \g<0> ", spaced).split()


def unspaced_characters(text: str) -> int:
    """How many characters of a text belong to scripts written without spaces (CJK)."""
    return 0 if text.isascii() else len(UNSPACED.findall(text))


def _may_be_prose(line: str) -> bool:
    """Whether a long line may be prose: a line without a space is an address, a file name or a
    token (whose words, split at its punctuation, may be of another language than the page's),
    unless it is written in a script without spaces."""
    return " " in line or UNSPACED.search(line) is not None


def page_language(lines: list[str]) -> str | None:
    """The language whose function words cover most words of the page's longer lines (their
    first `_LINE_CHARS`, up to `_PAGE_CHARS` in all)."""
    words: Counter[str] = Counter()
    read = 0
    for line in lines:
        if len(line) >= _LONG_LINE and _may_be_prose(line):
            words.update(words_of_text(line[:_LINE_CHARS].casefold()))
            read += min(len(line), _LINE_CHARS)
            if read >= _PAGE_CHARS:
                break
    # Each distinct word looked up once: most words of a page recur.
    languages_of = _languages_of_words()
    counts: Counter[str] = Counter()
    for word, times in words.items():
        for language in languages_of.get(word, ()):
            counts[language] += times
    if not counts:
        return None
    language, covered = counts.most_common(1)[0]
    return language if covered >= _MIN_COVERED else None
