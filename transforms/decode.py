"""Bytes of a dump to text: byte-order marks, UTF-8, UTF-16, GB18030 and Latin-1, or a reason."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from transforms.records import Rejection
from transforms.text import count_controls

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_SAMPLE = 8192
# Text has few control characters; binary noise has many. Share of the sample, tabs and line
# ends aside, above which a dump is called binary.
_MAX_CONTROL_SHARE = 0.05
# Control characters (tab, LF and CR aside) and U+FFFD, the mark of bytes that did not decode.
_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
_REPLACEMENT = "\ufffd"
_HIGH_BYTE = re.compile(rb"[\x80-\xff]")
_GB_PAIR = re.compile(rb"[\xa1-\xfe][\xa1-\xfe]")


@dataclass(frozen=True, slots=True)
class Decoded:
    """A dump's text and the encoding it was read with."""

    text: str
    encoding: str


def decode_dump(data: bytes) -> Decoded | Rejection:
    """The text of a dump, decoded with the encoding its bytes show, or why it has none."""
    if not data.strip():
        return Rejection("empty_dump", "The dump is empty or holds only whitespace.")
    decoded = _by_bom(data) or _by_utf16_pattern(data) or _by_utf8(data) or _by_legacy(data)
    if _is_binary(decoded.text):
        return Rejection(
            "binary",
            f"The dump is binary data, not text (tried {decoded.encoding}).",
        )
    return decoded


def _by_bom(data: bytes) -> Decoded | None:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            body = data if encoding == "utf-8-sig" else data[len(bom) :]
            return Decoded(body.decode(encoding, errors="replace"), encoding.removesuffix("-sig"))
    return None


def _by_utf16_pattern(data: bytes) -> Decoded | None:
    """UTF-16 without a mark: ASCII-heavy text leaves every other byte NUL."""
    sample = data[:_SAMPLE]
    if len(sample) < 4 or b"\0" not in sample:  # most dumps: no NUL byte, not UTF-16
        return None
    even_nuls = sample[0::2].count(0) / len(sample[0::2])
    odd_nuls = sample[1::2].count(0) / max(1, len(sample[1::2]))
    if odd_nuls > 0.4 and even_nuls < 0.05:
        return Decoded(data.decode("utf-16-le", errors="replace"), "utf-16-le")
    if even_nuls > 0.4 and odd_nuls < 0.05:
        return Decoded(data.decode("utf-16-be", errors="replace"), "utf-16-be")
    return None


def _by_utf8(data: bytes) -> Decoded | None:
    try:
        return Decoded(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        return None


def _by_legacy(data: bytes) -> Decoded:
    """Not UTF-8: GB18030 when it reads as Chinese, else Windows-1252 (Latin-1's superset)."""
    if _looks_like_gb(data[:_SAMPLE]):
        try:
            return Decoded(data.decode("gb18030"), "gb18030")
        except UnicodeDecodeError:
            pass
    try:
        return Decoded(data.decode("cp1252"), "cp1252")
    except UnicodeDecodeError:
        # cp1252 leaves five bytes undefined; Latin-1 maps every byte.
        return Decoded(data.decode("latin-1"), "latin-1")


def _looks_like_gb(sample: bytes) -> bool:
    """Chinese in GB encodings is runs of byte pairs both in A1-FE; Latin-1 accents stand alone."""
    high = len(_HIGH_BYTE.findall(sample))
    return high >= 4 and 2 * len(_GB_PAIR.findall(sample)) >= 0.9 * high


def _is_binary(text: str) -> bool:
    sample = text[:_SAMPLE]
    noise = count_controls(sample, _CONTROL_BYTES) + sample.count(_REPLACEMENT)
    return bool(sample) and noise > _MAX_CONTROL_SHARE * len(sample)
