"""Decoding dumps: encodings detected and named, binary refused with a reason."""

from __future__ import annotations

import pytest

from tests.conftest import SAMPLES
from transforms.decode import Decoded, decode_dump
from transforms.records import Rejection

SEED = (SAMPLES / "2019/05/000_c903989559a3121d.txt").read_bytes()
ZH = (SAMPLES / "xinhua-zh/xinhuanet-1.txt").read_bytes()


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (SEED, "utf-8"),
        (b"\xef\xbb\xbf" + SEED, "utf-8"),
        (SEED.decode().encode("utf-16"), "utf-16-le"),  # with its BOM
        (SEED.decode().encode("utf-16-le"), "utf-16-le"),  # without one
        (SEED.decode().encode("utf-16-be"), "utf-16-be"),
        (ZH.decode().encode("gb18030"), "gb18030"),
        ("Café au lait, déjà vu — naïve résumé\n".encode("cp1252") * 20, "cp1252"),
    ],
)
def test_encodings_are_detected_and_named(data: bytes, encoding: str) -> None:
    decoded = decode_dump(data)
    assert isinstance(decoded, Decoded)
    assert decoded.encoding == encoding
    original = ZH if encoding == "gb18030" else SEED
    if encoding != "cp1252":
        assert decoded.text.lstrip("\ufeff") == original.decode()


def test_latin1_text_reads_right() -> None:
    decoded = decode_dump("Ministers met in Zürich on Monday.\n".encode("latin-1"))
    assert isinstance(decoded, Decoded)
    assert "Zürich" in decoded.text


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"", "empty_dump"), (b" \n\t\r\n ", "empty_dump"), (bytes(range(256)) * 40, "binary")],
)
def test_non_text_is_refused_with_a_reason(data: bytes, reason: str) -> None:
    result = decode_dump(data)
    assert isinstance(result, Rejection)
    assert result.reason == reason and result.detail


def test_a_few_nul_bytes_do_not_make_text_binary() -> None:
    decoded = decode_dump(SEED[:3000] + b"\x00" + SEED[3000:])
    assert isinstance(decoded, Decoded)
