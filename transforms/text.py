"""Text normalisation shared by the parsers: whitespace, blocks, words, scripts, fingerprints."""

from __future__ import annotations

import hashlib
import re
import string
import unicodedata

# Horizontal whitespace as crawlers save it: NBSP (U+00A0) mixed with spaces, full-width
# ideographic spaces (U+3000) as Chinese paragraph indents, tabs, zero-width characters.
_HSPACE = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000\ufeff]+")
_BLANK_LINES = re.compile(r"\n[ \t\u00a0\u3000]*\n")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Ideographs and kana: the words of scripts written without spaces (each a word of its own).
UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[^\s\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]+")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_CONTROL_BYTES = bytes([*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F])  # the same characters
_PUNCTUATION = string.punctuation.encode("ascii")
# ASCII punctuation and whitespace become spaces (bytes.split() splits on the same whitespace).
_FOLD = bytes.maketrans(_PUNCTUATION + b"\t\n\x0b\x0c\r", b" " * (len(_PUNCTUATION) + 5))


def normalise_newlines(text: str) -> str:
    """CRLF and lone CR become LF; NUL and other C0 controls (bar tab and LF) are dropped."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS.sub("", text) if count_controls(text, _CONTROL_BYTES) else text


def count_controls(text: str, controls: bytes) -> int:
    """How many characters of text are among `controls` (ASCII characters, given as bytes).

    Counted on the UTF-8 bytes, where ASCII characters are the bytes they are, by deleting
    them in C: several times faster than a regex scan of the text, and most texts have none.
    """
    data = text.encode("utf-8", "surrogatepass")
    return len(data) - len(data.translate(None, controls))


def clean_line(line: str) -> str:
    """One line with its runs of any horizontal whitespace made one space, ends trimmed."""
    if _is_clean(line):
        return line
    # str.split() knows Unicode whitespace (NBSP, U+3000, U+2000-U+200A ...) and runs in C;
    # zero-width characters are not whitespace to it, so they take the slower path.
    if "\u200b" in line or "\ufeff" in line:
        return _HSPACE.sub(" ", line).strip()
    return " ".join(line.split())


def _is_clean(text: str) -> bool:
    """Whether ASCII text has no whitespace but single inner spaces: cleaning would keep it.

    Most lines of a dump are; these scans run in C and spare them the split and join. ASCII
    whitespace other than the space (tab, vertical tab, form feed, separators) is unprintable.
    """
    return (
        text.isascii()
        and text.isprintable()
        and "  " not in text
        and text[:1] != " "
        and text[-1:] != " "
    )


def blocks(text: str) -> list[list[str]]:
    """Blank-line separated blocks, each a list of cleaned non-empty lines."""
    out: list[list[str]] = []
    for raw in _BLANK_LINES.split(text):
        lines = [c for c in (clean_line(x) for x in raw.split("\n")) if c]
        if lines:
            out.append(lines)
    return out


def paragraphs_of(cleaned: list[str]) -> list[str]:
    """Paragraphs from already-cleaned lines: runs of non-empty lines, each run unwrapped."""
    out: list[str] = []
    run: list[str] = []
    for line in cleaned:
        if line:
            run.append(line)
        elif run:
            out.append(" ".join(run))
            run = []
    if run:
        out.append(" ".join(run))
    return out


def unwrap(lines: list[str]) -> str:
    """Hard-wrapped lines of one paragraph joined back with single spaces."""
    return " ".join(lines)


def is_cjk_text(text: str) -> bool:
    """Whether the text is mostly Chinese (CJK ideographs outnumber Latin words)."""
    sample = text[:4000]
    cjk = len(_CJK.findall(sample))
    return cjk > 0 and cjk >= len(_LATIN_WORD.findall(sample))


def word_count(body: str) -> int:
    """Words in the body: whitespace tokens, and each ideograph or kana a word of its own
    (Chinese and Japanese are written without spaces), whatever language the body is in."""
    if body.isascii() or UNSPACED.search(body) is None:  # both scans run in C
        return len(body.split())
    return len(UNSPACED.findall(body)) + len(_LATIN_WORD.findall(UNSPACED.sub(" ", body)))


def folded(body: str) -> bytes:
    """The body as fingerprints and shingles compare it, UTF-8: compatibility forms and case
    folded, ASCII punctuation and whitespace made spaces (runs of them kept)."""
    if body.isascii():  # runs in C; no compatibility forms, and ASCII case folding is lower()
        return body.encode("ascii").lower().translate(_FOLD)
    return unicodedata.normalize("NFKC", body).casefold().encode("utf-8").translate(_FOLD)


def body_fingerprint(body: str) -> str:
    """Hash of the body with compatibility forms, case, ASCII punctuation and spacing folded."""
    return fingerprint_of_folded(folded(body))


def fingerprint_of_folded(text: bytes) -> str:
    """`body_fingerprint` of a body already `folded` (the parse workers fold each body once,
    for this and for its MinHash shingles)."""
    # bytes.split and bytes.join run in C: several times faster than a regex over str.
    return hashlib.sha256(b" ".join(text.split())).hexdigest()[:32]


def paragraph_key(paragraph: str) -> str:
    """A paragraph's identity for merging copies of one page: case and spacing folded."""
    if _is_clean(paragraph):  # ASCII case folding adds no whitespace
        return paragraph.casefold()
    return " ".join(paragraph.casefold().split())
