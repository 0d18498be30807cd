"""An inbox on object storage (`s3://bucket/prefix`): listed and read, never modified.

An object's name in the warehouse is its key relative to the inbox prefix, exactly as a file's
is its path relative to an inbox folder, so the same dumps give the same rows from either.
S3 writes an object whole or not at all, but a crawler may write one again: an object is
settled when its size, last-modified time and ETag hold across the settle window.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO

from fsspec import AbstractFileSystem

from warehouse.home import S3Access
from warehouse.inbox.arrivals import PARTIAL_SUFFIXES, Arrivals, Hasher, InboxFile
from warehouse.storage import filesystem

log = logging.getLogger(__name__)

# Objects are hashed this many at a time, each its own GET: a night of small dumps is bound by
# round trips, not bytes (measured in docs/decisions.md, "Inbox on object storage").
_HASHING_THREADS = 16
_CHUNK = 8 << 20


@dataclass(frozen=True, slots=True)
class _Object:
    """One object of a listing: what says whether it changed."""

    path: str  # bucket/key, as fsspec names it
    size: int
    modified: float  # LastModified, POSIX seconds (S3 keeps whole seconds)
    etag: str

    @property
    def version(self) -> tuple[int, float, str]:
        return self.size, self.modified, self.etag


def find_objects(
    inbox: str, settle_seconds: float, s3: S3Access | None, hasher: Hasher | None = None
) -> Arrivals:
    """Every object under the inbox prefix, once it has stopped changing (see the module)."""
    fs, root = filesystem(inbox, s3)
    root = root.rstrip("/")
    listed = _listing(fs, root)
    unsettled = sorted(name for name in listed if name.endswith(PARTIAL_SUFFIXES))
    candidates = {n: o for n, o in listed.items() if not n.endswith(PARTIAL_SUFFIXES)}
    settled = sorted(_settled(fs, root, candidates, settle_seconds, unsettled).items())
    urls = [(fs.unstrip_protocol(o.path), o.size) for _, o in settled]
    hashes = hasher(urls) if hasher is not None else hash_objects(urls, s3)
    files = [
        InboxFile(name, url, o.size, sha, o.modified)
        for (name, o), (url, _), sha in zip(settled, urls, hashes, strict=True)
    ]
    return Arrivals(files, [], sorted(unsettled))


def hash_objects(objects: list[tuple[str, int]], s3: S3Access | None) -> list[str]:
    """The SHA-256 of each object (URL, size), several objects at a time."""
    if not objects:
        return []
    fs, _ = filesystem(objects[0][0], s3)
    with ThreadPoolExecutor(_HASHING_THREADS) as pool:
        return list(pool.map(lambda o: _sha256(fs, fs._strip_protocol(o[0]), o[1]), objects))


def read_object(url: str, most: int, s3: S3Access | None) -> bytes:
    """At most `most` bytes of an object, in one ranged GET; without `s3`, botocore finds
    credentials itself (AWS_*)."""
    fs, path = filesystem(url, s3)
    try:
        data: bytes = fs.cat_file(path, start=0, end=most)
    except OSError as error:  # S3 answers 416 to any range of an empty object
        if error.errno != errno.EINVAL or fs.size(path) != 0:
            raise
        return b""
    return data


def open_object(url: str, s3: S3Access | None) -> IO[bytes]:
    """An object opened for reading, seekable."""
    fs, path = filesystem(url, s3)
    handle: IO[bytes] = fs.open(path, "rb")
    return handle


def bucket_problem(inbox: str, s3: S3Access | None) -> str | None:
    """Why an inbox on S3 cannot be listed (no bucket, refused, unreachable); None if it can."""
    fs, root = filesystem(inbox, s3)
    bucket = root.split("/", 1)[0]
    try:
        if not fs.exists(bucket):  # also when S3 does not answer: told apart below
            _raise_if_down(s3, bucket)
            return f"no such inbox: {inbox} (bucket {bucket!r} does not exist)"
        fs.ls(root.rstrip("/"), refresh=True)
    except FileNotFoundError:
        return None  # the bucket is there, nothing under the prefix yet: an empty inbox
    except (OSError, ValueError) as error:  # refused, unreachable, bad endpoint
        _raise_if_down(s3, bucket)
        return f"cannot list the inbox {inbox}: {type(error).__name__}: {error}"
    return None


def _raise_if_down(s3: S3Access | None, bucket: str) -> None:
    """Raise `ServiceUnavailable` when object storage does not answer at all now (an
    outage is no problem of the inbox's)."""
    from warehouse.home import s3_from_env
    from warehouse.outage import s3_outage_now

    if (outage := s3_outage_now(s3 or s3_from_env(), bucket)) is not None:
        raise outage


def object_times(inbox: str, s3: S3Access | None) -> list[tuple[str, float]]:
    """Names (as the ledger writes them) and last-modified times of the inbox's objects."""
    fs, root = filesystem(inbox, s3)
    return [(name, o.modified) for name, o in _listing(fs, root.rstrip("/")).items()]


def _listing(fs: AbstractFileSystem, root: str) -> dict[str, _Object]:
    """One listing of every object under the prefix (never cached), by name under the inbox."""
    found = fs.find(root, detail=True)
    start = len(root) + 1
    return {
        path[start:]: _Object(
            path, int(info["size"]), info["LastModified"].timestamp(), info.get("ETag", "")
        )
        for path, info in found.items()
        if info.get("type") == "file" and not path.endswith("/") and path.startswith(root + "/")
    }


def _settled(
    fs: AbstractFileSystem,
    root: str,
    candidates: dict[str, _Object],
    settle_seconds: float,
    unsettled: list[str],
) -> dict[str, _Object]:
    """Objects not written within the settle window; young ones are listed again once."""
    now = time.time()
    young = [o for o in candidates.values() if now - o.modified < settle_seconds]
    if not young:
        return candidates
    # The server's clock may run ahead of ours: never wait longer than the window itself.
    wait = min(settle_seconds, max(settle_seconds - (now - o.modified) for o in young))
    log.info(
        "%d objects written in the last %.0f s; waiting %.1f s", len(young), settle_seconds, wait
    )
    time.sleep(max(0.0, wait))
    again = _listing(fs, root)
    ready = {}
    for name, before in candidates.items():
        after = again.get(name)
        if after is not None and after.version == before.version:
            ready[name] = after
        else:
            unsettled.append(name)
    return ready


def _sha256(fs: AbstractFileSystem, path: str, size: int) -> str:
    """One GET for a dump-sized object; a larger one streamed in pieces, never held whole."""
    if size <= _CHUNK:
        return hashlib.sha256(fs.cat_file(path)).hexdigest()
    digest = hashlib.sha256()
    with fs.open(path, "rb", block_size=_CHUNK, cache_type="none") as handle:
        while piece := handle.read(_CHUNK):
            digest.update(piece)
    return digest.hexdigest()
