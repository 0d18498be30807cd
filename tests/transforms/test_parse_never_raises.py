"""Property: no bytes make decoding or parsing raise; they give an article or a reason."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SAMPLES
from transforms.decode import Decoded, decode_dump
from transforms.parse import parse_dump
from transforms.records import Article, Rejection

SEED = (SAMPLES / "2019/05/000_c903989559a3121d.txt").read_bytes()
FRAGMENTS = [
    SEED[:400],
    SEED[400:1200],
    SEED[-200:],
    b"Source: Xinhua | 2019-05-02 04:38:54 | Editor: x\n",
    b"Source: Xinhua 2019-13-45 99:99:99\n",
    b"\xc2\xa0\xe3\x80\x80",
    b"\r\n",
    b"\n\n",
    b"_English_Xinhua\n",
    b"www.chinaview.cn\n",
    "来源：\n新华网\n".encode(),
    b"Back to Top Close\n",
    b"0100200707500000000000000111000013802802910",
    b"<script>",
    b"\x00\xff\xfe",
]


def check(data: bytes) -> None:
    """Decode then parse; whatever happens must be an Article or a Rejection."""
    decoded = decode_dump(data)
    if isinstance(decoded, Rejection):
        assert decoded.reason and decoded.detail
        return
    assert isinstance(decoded, Decoded)
    result = parse_dump(decoded.text)
    assert isinstance(result, Article | Rejection)
    if isinstance(result, Rejection):
        assert result.reason and result.detail


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(data: bytes) -> None:
    check(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=40), max_size=30))
def test_spliced_fragments_of_real_pages(parts: list[bytes]) -> None:
    check(b"".join(parts))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=3000))
def test_arbitrary_text(text: str) -> None:
    check(text.encode("utf-8", errors="surrogatepass"))
