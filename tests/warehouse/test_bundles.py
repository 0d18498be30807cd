"""The bundle reader: members read from memory under limits, unsafe ones refused, never a raise."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transforms.records import Rejection
from warehouse.home import Home
from warehouse.inbox.arrivals import Arrivals, InboxFile
from warehouse.inbox.bundles import (
    BundleLimits,
    Member,
    gunzip,
    is_bundle,
    kind_of,
    members,
    read_gzip,
    read_members,
)
from warehouse.inbox.unpack import unpack_arrivals

LIMITS = BundleLimits(max_member_bytes=4096, max_members=5, max_total_bytes=16384, max_ratio=100)
MB = 1 << 20


def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def _reasons(found: list[Member | Rejection]) -> dict[str, str | None]:
    return {
        m.name: (m.refusal.reason if m.refusal else None) for m in found if isinstance(m, Member)
    }


def test_kinds_by_name() -> None:
    assert [
        kind_of(Path(n)) for n in ("a.zip", "a.TAR.GZ", "a.tgz", "a.tar", "a.txt.gz", "a.txt")
    ] == ["zip", "tar", "tar", "tar", "gz", None]
    assert is_bundle(Path("x.zip")) and not is_bundle(Path("x.txt.gz"))


def test_unsafe_members_are_refused_alone_and_the_rest_is_read(tmp_path: Path) -> None:
    path = _zip(
        tmp_path / "b.zip",
        {"ok.txt": b"hello", "../up.txt": b"x", "/abs.txt": b"y", "big.txt": b"z" * 5000},
    )
    found = list(members(path, LIMITS))
    assert _reasons(found) == {
        "ok.txt": None,
        "../up.txt": "unsafe_member",
        "/abs.txt": "unsafe_member",
        "big.txt": "too_large",
    }
    [ok] = [m for m in found if isinstance(m, Member) and m.name == "ok.txt"]
    assert ok.data == b"hello" and ok.size == 5
    assert not (tmp_path.parent / "up.txt").exists()


def test_a_bundle_past_its_limits_is_refused_whole(tmp_path: Path) -> None:
    many = _zip(tmp_path / "many.zip", {f"{i}.txt": b"a" for i in range(6)})
    [refusal] = list(members(many, LIMITS))
    assert isinstance(refusal, Rejection) and refusal.reason == "bundle_refused"
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(many.read_bytes()[:50])
    [broken] = list(members(corrupt, LIMITS))
    assert isinstance(broken, Rejection) and broken.reason == "corrupt_archive"


def test_a_zip_bomb_member_is_refused_before_inflating(tmp_path: Path) -> None:
    limits = BundleLimits(8 * MB, 10, 64 * MB, 100)
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.txt", bytes(4 * MB))  # ~4 KB compressed: 1000:1
        archive.writestr("fine.txt", b"text")
    assert _reasons(list(members(path, limits))) == {
        "zeros.txt": "compression_bomb",
        "fine.txt": None,
    }


def test_tar_links_and_tar_gz_bombs(tmp_path: Path) -> None:
    path = tmp_path / "t.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("a.txt")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"abc"))
        link = tarfile.TarInfo("link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    assert _reasons(list(members(path, LIMITS))) == {"a.txt": None, "link": "unsafe_member"}
    bomb = io.BytesIO()
    with tarfile.open(fileobj=bomb, mode="w:gz") as archive:
        info = tarfile.TarInfo("zeros.txt")
        info.size = 8 * MB
        archive.addfile(info, io.BytesIO(bytes(info.size)))
    limits = BundleLimits(16 * MB, 10, 64 * MB, 100)
    found = list(read_members(io.BytesIO(bomb.getvalue()), "tar", len(bomb.getvalue()), limits))
    assert len(found) == 1 and isinstance(found[0], Rejection)
    assert found[0].reason == "bundle_refused"


def test_gz_is_its_dump_within_limits(tmp_path: Path) -> None:
    good, big, bad = tmp_path / "g.txt.gz", tmp_path / "b.txt.gz", tmp_path / "c.txt.gz"
    good.write_bytes(gzip.compress(b"a dump"))
    big.write_bytes(gzip.compress(b"x" * 5000))
    bad.write_bytes(gzip.compress(b"a dump")[:10])
    assert gunzip(good, LIMITS) == b"a dump"
    assert isinstance(r := gunzip(big, LIMITS), Rejection) and r.reason == "too_large"
    assert isinstance(r := gunzip(bad, LIMITS), Rejection) and r.reason == "corrupt_archive"


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=2048), st.sampled_from(["zip", "tar", "gz"]))
def test_the_reader_never_raises_on_arbitrary_bytes(data: bytes, kind: str) -> None:
    if kind == "gz":
        read_gzip(io.BytesIO(data), len(data), LIMITS)
    else:
        list(read_members(io.BytesIO(data), kind, len(data), LIMITS))  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_members_of_one_name_are_each_a_file_of_their_own(tmp_path: Path) -> None:
    # A name repeated in a bundle: every copy after the first, and every unsafe one, is refused
    # unread; each still needs a ledger key (name, id) of its own (a night of 50,000 hostile
    # inputs broke `one_ledger_row_per_name_and_bytes` here).
    path = tmp_path / "b.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in [("../x.txt", b"1"), ("dup.txt", b"2"), ("../x.txt", b"3")]:
            archive.writestr(name, data)
        for name, data in [("dup.txt", b"4"), ("dup.txt", b"2")]:
            archive.writestr(name, data)
    bundle = InboxFile("b.zip", path, path.stat().st_size, hashlib.sha256(b"b").hexdigest())
    arrivals = Arrivals(files=[bundle], symlinks=[], unsettled=[])
    out = unpack_arrivals(arrivals, set(), Home.at(tmp_path / "home"), "run", LIMITS)
    keys = [(f.dump_file, f.sha256) for f in out.arrivals.files]
    keys += [(f.dump_file, f.sha256) for f, _ in out.arrivals.refused]
    assert sorted(name for name, _ in keys) == ["b.zip!../x.txt"] * 2 + ["b.zip!dup.txt"] * 3
    assert len(set(keys)) == 5
