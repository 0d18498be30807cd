"""Text normalisation shared by the parsers: whitespace, blocks, words, language, fingerprints."""

from __future__ import annotations

import hashlib
import re
import unicodedata

# Horizontal whitespace as crawlers save it: NBSP (U+00A0) mixed with spaces, full-width
# ideographic spaces (U+3000) as Chinese paragraph indents, tabs, zero-width characters.
_HSPACE = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000\ufeff]+")
_BLANK_LINES = re.compile(r"\n[ \t\u00a0\u3000]*\n")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[^\s\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]+")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_FINGERPRINT_DROP = re.compile(r"[\W_]+", re.UNICODE)


def normalise_newlines(text: str) -> str:
    """CRLF and lone CR become LF; NUL and other C0 controls (bar tab and LF) are dropped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS.sub("", text)


def clean_line(line: str) -> str:
    """One line with its runs of any horizontal whitespace made one space, ends trimmed."""
    return _HSPACE.sub(" ", line).strip()


def blocks(text: str) -> list[list[str]]:
    """Blank-line separated blocks, each a list of cleaned non-empty lines."""
    out: list[list[str]] = []
    for raw in _BLANK_LINES.split(text):
        lines = [c for c in (clean_line(x) for x in raw.split("\n")) if c]
        if lines:
            out.append(lines)
    return out


def unwrap(lines: list[str]) -> str:
    """Hard-wrapped lines of one paragraph joined back with single spaces."""
    return " ".join(lines)


def is_cjk_text(text: str) -> bool:
    """Whether the text is mostly Chinese (CJK ideographs outnumber Latin words)."""
    sample = text[:4000]
    cjk = len(_CJK.findall(sample))
    return cjk > 0 and cjk >= len(_LATIN_WORD.findall(sample))


def language_of(text: str) -> str:
    """A cheap language guess good enough for these sources: zh or en."""
    return "zh" if is_cjk_text(text) else "en"


def word_count(body: str, language: str) -> int:
    """Words in the body: whitespace tokens; for Chinese, each ideograph counts as a word."""
    if language == "zh":
        return len(_CJK.findall(body)) + len(_LATIN_WORD.findall(_CJK.sub(" ", body)))
    return len(body.split())


def body_fingerprint(body: str) -> str:
    """Hash of the body with case, accents, punctuation and spacing normalised away."""
    norm = unicodedata.normalize("NFKC", body).casefold()
    norm = _FINGERPRINT_DROP.sub(" ", norm).strip()
    return hashlib.sha256(norm.encode("utf-8")).hexdigest()[:32]


def paragraph_key(paragraph: str) -> str:
    """A paragraph's identity for merging copies: case and punctuation folded."""
    return _FINGERPRINT_DROP.sub(" ", paragraph.casefold()).strip()
