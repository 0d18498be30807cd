"""The inbox side of a night: which files arrived, their bytes and hashes, read once each.

The inbox is a folder on this machine or an `s3://bucket/prefix` (`warehouse.remote_inbox`).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from transforms.records import Rejection
from warehouse.home import S3Access
from warehouse.storage import filesystem, is_remote

if TYPE_CHECKING:
    from warehouse.remote_inbox import Hasher

log = logging.getLogger(__name__)

# Names that download tools give files they are still writing.
_PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".download", ".filepart")


@dataclass(frozen=True, slots=True)
class InboxFile:
    """One regular file of the inbox: its name relative to the inbox, size and content hash."""

    dump_file: str
    path: Path | str  # a path on this machine, or the s3:// URL of an object
    bytes: int
    sha256: str
    mtime: float | None = None  # the file's modification time: when the dump was captured


@dataclass(frozen=True, slots=True)
class Arrivals:
    """What a walk of the inbox found."""

    files: list[InboxFile]  # regular, settled files, in path order
    symlinks: list[InboxFile]  # never followed; hashed by their target text; quarantined
    unsettled: list[str]  # still being written: left for the next night
    # Filled when bundles are opened (warehouse.unpack): archives recorded as `unpacked`, whose
    # members join `files`; and archives, .gz files or members refused before any reading.
    bundles: list[InboxFile] = field(default_factory=list)
    refused: list[tuple[InboxFile, Rejection]] = field(default_factory=list)


def dump_name(inbox: Path, path: Path) -> str:
    """A file's name as the warehouse records it: relative to the inbox, with / separators."""
    return _relative(path.relative_to(inbox).as_posix())


def find_arrivals(
    inbox: str | Path,
    settle_seconds: float,
    s3: S3Access | None = None,
    hasher: Hasher | None = None,
) -> Arrivals:
    """Every regular file under the inbox, recursively, once it has stopped changing.

    `hasher` hashes the objects of an inbox on S3 elsewhere (on a cluster's workers)."""
    if is_remote(str(inbox)):
        from warehouse.remote_inbox import find_objects  # it builds on this module's types

        return find_objects(str(inbox), settle_seconds, s3, hasher)
    found = _Walk()
    found.scan(str(inbox), "")
    unsettled = found.unsettled
    settled = _settled(found.candidates, settle_seconds, unsettled)
    files = [
        InboxFile(name, path, info.st_size, sha256_of(path), info.st_mtime)
        for name, path, info in settled
    ]
    by_name = lambda f: f.dump_file  # noqa: E731
    links = sorted(found.symlinks, key=by_name)
    return Arrivals(sorted(files, key=by_name), links, sorted(unsettled))


class _Walk:
    """One walk of the inbox with `os.scandir`: symlinks (never followed), files, partials.

    A walk through pathlib cost more than hashing the files it found (Path objects and
    `relative_to` per file); the directory entries already say what is a link or a folder.
    """

    def __init__(self) -> None:
        self.candidates: list[tuple[str, Path, os.stat_result]] = []
        self.symlinks: list[InboxFile] = []
        self.unsettled: list[str] = []

    def scan(self, folder: str, prefix: str) -> None:
        """Sort the entries of `folder`, whose names relative to the inbox start with `prefix`."""
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError as error:
            log.warning("cannot list %s (%s): its files are left for a later night", folder, error)
            return
        for entry in entries:
            name = _relative(prefix + entry.name)
            if entry.is_symlink():
                self.symlinks.append(_symlink(Path(entry.path), name))
            elif entry.is_dir(follow_symlinks=False):
                self.scan(entry.path, prefix + entry.name + "/")
            elif entry.name.endswith(_PARTIAL_SUFFIXES):
                self.unsettled.append(name)
            else:
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(info.st_mode):
                    self.candidates.append((name, Path(entry.path), info))


def _relative(name: str) -> str:
    """A name relative to the inbox as the warehouse records it.

    Bytes of a name that are not UTF-8 come back from the OS as surrogates, which no Parquet
    string holds: they are written as \\xNN escapes instead.
    """
    return name if name.isascii() else os.fsencode(name).decode("utf-8", "backslashreplace")


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    for piece in _pieces(path, 1 << 20):
        digest.update(piece)
    return digest.hexdigest()


def _pieces(path: Path | str, most: int, limit: int | None = None) -> Iterator[bytes]:
    """A file's bytes in pieces of at most `most` bytes, up to `limit` bytes if given.

    Plain file descriptors and reads sized by the file: a small dump is one read, plus the
    empty read at its end. A night opens every file twice (to hash it, then to read it);
    Python's buffered file objects cost more to set up than a small dump takes to read, and a
    read of `limit` bytes allocates that much before it starts.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        size = min(os.fstat(fd).st_size + 1, most)
        left = limit
        while left is None or left > 0:
            piece = os.read(fd, size if left is None else min(size, left))
            if not piece:
                return
            if left is not None:
                left -= len(piece)
            yield piece
    finally:
        os.close(fd)


def _symlink(path: Path, name: str) -> InboxFile:
    """A link as the ledger records it, identified by where it points (never followed)."""
    target = os.readlink(path)
    digest = hashlib.sha256(b"symlink\0" + os.fsencode(target)).hexdigest()
    return InboxFile(name, path, 0, digest)


def read_bytes(location: Path | str, limit: int, s3: S3Access | None = None) -> bytes | None:
    """A file's or object's bytes, or None when larger than the limit (not read past it).

    An object is one ranged GET; without `s3`, botocore finds credentials itself (AWS_*).
    """
    if isinstance(location, str) and is_remote(location):
        data = _read_object(location, limit + 1, s3)
    else:
        data = b"".join(_pieces(location, limit + 1, limit + 1))
    return None if len(data) > limit else data


def _read_object(url: str, most: int, s3: S3Access | None) -> bytes:
    """At most `most` bytes of an object, in one ranged GET."""
    fs, path = filesystem(url, s3)
    try:
        data: bytes = fs.cat_file(path, start=0, end=most)
    except OSError as error:  # S3 answers 416 to any range of an empty object
        if error.errno != errno.EINVAL or fs.size(path) != 0:
            raise
        return b""
    return data


def open_binary(location: Path | str, s3: S3Access | None = None) -> IO[bytes]:
    """A file or object opened for reading (seekable: zipfile reads a bundle from its end)."""
    if isinstance(location, str) and is_remote(location):
        fs, path = filesystem(location, s3)
        handle: IO[bytes] = fs.open(path, "rb")
        return handle
    return open(location, "rb")  # the caller closes it


def inbox_problem(inbox: str, s3: S3Access | None = None) -> str | None:
    """Why a night cannot read this inbox (no folder or bucket, unreachable); None if it can."""
    if not is_remote(inbox):
        return None if os.path.isdir(inbox) else f"no such inbox: {inbox}"
    from warehouse.remote_inbox import bucket_problem

    return bucket_problem(inbox, s3)


def _settled(
    candidates: list[tuple[str, Path, os.stat_result]],
    settle_seconds: float,
    unsettled: list[str],
) -> list[tuple[str, Path, os.stat_result]]:
    """Files not modified within the settle window; young ones are looked at again once."""
    now = time.time()
    young = [c for c in candidates if now - c[2].st_mtime < settle_seconds]
    if not young:
        return candidates
    wait = max(settle_seconds - (now - c[2].st_mtime) for c in young)
    log.info(
        "%d files changed in the last %.0f s; waiting %.1f s", len(young), settle_seconds, wait
    )
    time.sleep(max(0.0, wait))
    ready = []
    for name, path, before in candidates:
        try:
            after = path.stat()
        except FileNotFoundError:
            unsettled.append(name)
            continue
        if (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns):
            ready.append((name, path, after))
        else:
            unsettled.append(name)
    return ready
