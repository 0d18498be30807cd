"""An inbox that is a folder on this machine: walked, settled, hashed and read, never modified."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from warehouse.inbox.arrivals import PARTIAL_SUFFIXES, Arrivals, Hasher, InboxFile

log = logging.getLogger(__name__)


def find_files(inbox: str | Path, settle_seconds: float, hasher: Hasher | None = None) -> Arrivals:
    """Every regular file under the folder, recursively, once it has stopped changing.

    `hasher` hashes the files elsewhere (on the workers of a cluster, which see the inbox at
    the same path); without it they are hashed here."""
    found = _Walk()
    found.scan(str(inbox), "")
    unsettled = found.unsettled
    settled = _settled(found.candidates, settle_seconds, unsettled)
    if hasher is not None:
        hashes = hasher([(str(path), info.st_size) for _, path, info in settled])
    else:
        hashes = [sha256_of(path) for _, path, _ in settled]
    files = [
        InboxFile(name, path, info.st_size, sha, info.st_mtime)
        for (name, path, info), sha in zip(settled, hashes, strict=True)
    ]
    by_name = lambda f: f.dump_file  # noqa: E731
    links = sorted(found.symlinks, key=by_name)
    return Arrivals(sorted(files, key=by_name), links, sorted(unsettled))


def read_file(path: Path | str, most: int) -> bytes:
    """At most `most` bytes of a file."""
    return b"".join(_pieces(path, most, most))


def folder_problem(inbox: str) -> str | None:
    """Why this folder is no inbox; None if it is one."""
    return None if os.path.isdir(inbox) else f"no such inbox: {inbox}"


def dump_name(inbox: Path, path: Path) -> str:
    """A file's name as the warehouse records it: relative to the inbox, with / separators."""
    return _relative(path.relative_to(inbox).as_posix())


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
            elif entry.name.endswith(PARTIAL_SUFFIXES):
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
