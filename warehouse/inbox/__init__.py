"""The inbox of a night, behind one interface: a folder on this machine (`folder`) or an
`s3://bucket/prefix` (`s3`), listed and read, never modified; bundles and .gz dumps opened into
dumps of their own (`bundles`, `unpack`).

A file's name in the warehouse is its path relative to the inbox, an object's its key relative
to the prefix, so the same dumps give the same rows from either.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

from warehouse.home import S3Access
from warehouse.inbox.arrivals import Arrivals, Hasher, InboxFile
from warehouse.inbox.folder import dump_name, find_files, folder_problem, read_file, sha256_of
from warehouse.storage import is_remote

__all__ = [
    "Arrivals",
    "Hasher",
    "InboxFile",
    "dump_name",
    "find_arrivals",
    "hash_locations",
    "inbox_problem",
    "open_binary",
    "read_bytes",
]


def find_arrivals(
    inbox: str | Path,
    settle_seconds: float,
    s3: S3Access | None = None,
    hasher: Hasher | None = None,
) -> Arrivals:
    """Every regular file under the inbox, recursively, once it has stopped changing.

    `hasher` hashes the files or objects elsewhere (on a cluster's workers)."""
    if is_remote(str(inbox)):
        from warehouse.inbox.s3 import find_objects  # fsspec's S3: only an S3 inbox pays for it

        return find_objects(str(inbox), settle_seconds, s3, hasher)
    return find_files(inbox, settle_seconds, hasher)


def hash_locations(locations: list[tuple[str, int]], s3: S3Access | None = None) -> list[str]:
    """The SHA-256 of each file or object (path or s3:// URL, size), in order: what a worker of
    a cluster runs on its share of the inbox."""
    if locations and is_remote(locations[0][0]):
        from warehouse.inbox.s3 import hash_objects

        return hash_objects(locations, s3)
    return [sha256_of(Path(path)) for path, _ in locations]


def read_bytes(location: Path | str, limit: int, s3: S3Access | None = None) -> bytes | None:
    """A file's or object's bytes, or None when larger than the limit (not read past it)."""
    if isinstance(location, str) and is_remote(location):
        from warehouse.inbox.s3 import read_object

        data = read_object(location, limit + 1, s3)
    else:
        data = read_file(location, limit + 1)
    return None if len(data) > limit else data


def open_binary(location: Path | str, s3: S3Access | None = None) -> IO[bytes]:
    """A file or object opened for reading (seekable: zipfile reads a bundle from its end)."""
    if isinstance(location, str) and is_remote(location):
        from warehouse.inbox.s3 import open_object

        return open_object(location, s3)
    return open(location, "rb")  # the caller closes it


def inbox_problem(inbox: str, s3: S3Access | None = None) -> str | None:
    """Why a night cannot read this inbox (no folder or bucket, unreachable); None if it can."""
    if not is_remote(inbox):
        return folder_problem(inbox)
    from warehouse.inbox.s3 import bucket_problem

    return bucket_problem(inbox, s3)
