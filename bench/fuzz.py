"""A long fuzz run of the reader and parser: `python -m bench.fuzz --minutes 5` (not in CI).

Hypothesis generates arbitrary bytes, real dump fragments spliced with noise and re-encoded,
and zip, tar.gz and gz archives of such fragments, then damaged (bytes flipped, cut). Each input
goes through decode_dump and parse_dump, or the bundle reader, which must never raise: bad
input is data. It prints how many inputs ran and every crash (type, message, input).
bench/fuzz_nights.py sends the same mutations through whole nights of `wirehouse ingest`.
"""

from __future__ import annotations

import argparse
import gzip
import io
import random
import tarfile
import time
import traceback
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from transforms.decode import decode_dump
from transforms.parse import parse_dump
from warehouse.inbox.bundles import BundleLimits, Kind, read_gzip, read_members

REPO = Path(__file__).resolve().parent.parent
SAMPLES = sorted((REPO / "samples" / "inbox").rglob("*.txt"))
# Small limits, so that they are reached often and every refusal path runs.
LIMITS = BundleLimits(
    max_member_bytes=64 * 1024, max_members=8, max_total_bytes=256 * 1024, max_ratio=20.0
)
# Bundle member names that must never be written outside the inbox or trusted.
HOSTILE_NAMES = ("../x.txt", "/abs.txt", "a/../../b", "C:\\x", "", "dup.txt")
ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "gb18030", "latin-1")


@dataclass(slots=True)
class Tally:
    """Inputs run and crashes seen."""

    inputs: int = 0
    crashes: list[tuple[str, str, bytes]] = field(default_factory=list)


TALLY = Tally()


@st.composite
def fragments(draw: st.DrawFn) -> bytes:
    """Slices of real dumps spliced with noise, in one of the encodings real inboxes bring."""
    pieces = []
    for _ in range(draw(st.integers(1, 4))):
        text = draw(st.sampled_from(SAMPLES)).read_text(encoding="utf-8")
        start = draw(st.integers(0, len(text)))
        pieces.append(text[start : start + draw(st.integers(0, 3000))])
        pieces.append(draw(st.text(max_size=40)))
    encoding = draw(st.sampled_from(ENCODINGS))
    data = "".join(pieces).encode(encoding, errors="replace")
    return _damage(draw, data)


@st.composite
def archives(draw: st.DrawFn) -> tuple[Kind, bytes]:
    """A zip, tar.gz or gz of fragments (names hostile at times), possibly damaged."""
    kind: Kind = draw(st.sampled_from(("zip", "tar", "gz")))
    members = draw(st.lists(st.tuples(_names(), fragments()), min_size=0, max_size=6))
    if kind == "gz":
        data = gzip.compress(members[0][1] if members else b"", mtime=0)
    elif kind == "zip":
        data = zip_of(members, draw(st.booleans()))
    else:
        data = tar_of(members)
    return kind, _damage(draw, data)


def _names() -> st.SearchStrategy[str]:
    hostile = st.sampled_from(HOSTILE_NAMES)
    return st.one_of(hostile, st.text(min_size=1, max_size=30))


def zip_of(members: list[tuple[str, bytes]], zeros: bool) -> bytes:
    """A zip of the members, with a member of 3 MB of zeros (past the ratio) if `zeros`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(_writable(name), data)
        if zeros:
            archive.writestr("zeros.txt", bytes(3 << 20))  # a small bomb past the ratio
    return buffer.getvalue()


def tar_of(members: list[tuple[str, bytes]]) -> bytes:
    """A tar.gz of the members."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members:
            info = tarfile.TarInfo(_writable(name))
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _writable(name: str) -> str:
    """A name the archive writers accept (they cut at NUL and need one character)."""
    return name.replace("\0", "_") or "empty"


def _damage(draw: st.DrawFn, data: bytes) -> bytes:
    """Flip some bytes, cut the tail, or leave the input whole (a seed drawn for `damage`)."""
    return damage(random.Random(draw(st.integers(0, 2**32))), data)


def damage(rng: random.Random, data: bytes) -> bytes:
    """Flip some bytes, cut the tail, or leave the input whole (half the time), by `rng`."""
    how = rng.choice(("whole", "whole", "flip", "cut"))
    if how == "whole" or not data:
        return data
    if how == "cut":
        return data[: rng.randrange(len(data))]
    damaged = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        damaged[rng.randrange(len(damaged))] = rng.randrange(256)
    return bytes(damaged)


def splice(rng: random.Random, texts: list[str]) -> bytes:
    """Slices of real dumps spliced with noise, in one of the encodings real inboxes bring: the
    `fragments` strategy driven by `rng` (for inputs made by the thousand, outside Hypothesis)."""
    pieces = []
    for _ in range(rng.randint(1, 4)):
        text = rng.choice(texts)
        start = rng.randint(0, len(text))
        pieces.append(text[start : start + rng.randint(0, 3000)])
        pieces.append("".join(chr(rng.randrange(32, 0x2FFF)) for _ in range(rng.randint(0, 40))))
    return "".join(pieces).encode(rng.choice(ENCODINGS), errors="replace")


def run_text(data: bytes) -> None:
    """Decode and parse one input; the result is a Decoded/Article or a Rejection, never a raise."""
    decoded = decode_dump(data)
    if not hasattr(decoded, "text"):
        return
    parse_dump(decoded.text)  # type: ignore[union-attr]


def run_archive(kind: Kind, data: bytes) -> None:
    """Read every member (or the .gz dump) of one archive, then parse what was read."""
    if kind == "gz":
        result = read_gzip(io.BytesIO(data), len(data), LIMITS)
        if isinstance(result, bytes):
            run_text(result)
        return
    for member in read_members(io.BytesIO(data), kind, len(data), LIMITS):
        data_read = getattr(member, "data", None)
        if data_read:
            run_text(data_read)


def _guarded(target: str, data: bytes, call: object) -> None:
    TALLY.inputs += 1
    try:
        call()  # type: ignore[operator]
    except Exception as error:  # a crash: recorded, and the run goes on
        TALLY.crashes.append((target, "".join(traceback.format_exception_only(error)), data[:200]))


@given(st.one_of(st.binary(max_size=4096), fragments()))
def fuzz_text(data: bytes) -> None:
    """decode_dump + parse_dump on arbitrary bytes and spliced real fragments."""
    _guarded("text", data, lambda: run_text(data))


@given(archives())
def fuzz_archive(archive: tuple[Kind, bytes]) -> None:
    """The bundle and .gz readers on generated, damaged archives."""
    kind, data = archive
    _guarded(kind, data, lambda: run_archive(kind, data))


def main() -> None:
    """Run both fuzz targets in rounds until the time or example budget is spent."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--examples", type=int, default=0, help="stop after this many inputs")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # zipfile warns of the duplicate names made on purpose
    end = time.monotonic() + 60 * args.minutes
    config = settings(
        max_examples=500,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    text_round, archive_round = config(fuzz_text), config(fuzz_archive)
    while time.monotonic() < end and not (args.examples and TALLY.inputs >= args.examples):
        text_round()
        archive_round()
        print(f"{TALLY.inputs:,} inputs, {len(TALLY.crashes)} crashes", flush=True)
    for target, message, sample in TALLY.crashes[:20]:
        print(f"CRASH in {target}: {message.strip()}\n  input: {sample!r}")
    print(f"fuzz: {TALLY.inputs:,} inputs in {args.minutes:g} min, {len(TALLY.crashes)} crashes")


if __name__ == "__main__":
    main()
