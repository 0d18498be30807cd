"""Reading and hashing inbox files: exact bytes, the size limit, files larger than one read;
hashed elsewhere (a cluster's workers), the same arrivals."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from warehouse.inbox import find_arrivals, hash_locations, read_bytes
from warehouse.inbox.folder import _pieces, sha256_of


@pytest.mark.parametrize("size", [0, 1, 4095, 1 << 20, 3 * (1 << 20) + 7])
def test_files_are_hashed_and_read_whole(tmp_path: Path, size: int) -> None:
    path = tmp_path / "dump.txt"
    data = os.urandom(size)
    path.write_bytes(data)
    assert sha256_of(path) == hashlib.sha256(data).hexdigest()
    assert read_bytes(path, size) == data
    assert read_bytes(path, size + 1) == data


def test_a_file_over_the_limit_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "dump.txt"
    path.write_bytes(b"x" * 1001)
    assert read_bytes(path, 1000) is None
    assert read_bytes(path, 1001) == b"x" * 1001


def test_pieces_cover_the_file_up_to_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "dump.txt"
    path.write_bytes(bytes(range(100)))
    assert [len(p) for p in _pieces(path, 30)] == [30, 30, 30, 10]
    assert b"".join(_pieces(path, 30, limit=45)) == bytes(range(45))
    assert b"".join(_pieces(path, 1000, limit=101)) == bytes(range(100))


def test_a_folder_hashed_by_another_hasher_gives_the_same_arrivals(sample_inbox: Path) -> None:
    asked: list[tuple[str, int]] = []

    def elsewhere(files: list[tuple[str, int]]) -> list[str]:
        asked.extend(files)
        return hash_locations(files)

    here = find_arrivals(sample_inbox, 0)
    hashed = find_arrivals(sample_inbox, 0, hasher=elsewhere)
    assert hashed == here and len(here.files) > 10
    # every settled file, by its path on this machine and its size, and nothing else
    assert sorted(asked) == sorted((str(f.path), f.bytes) for f in here.files)
