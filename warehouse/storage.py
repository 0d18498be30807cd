"""Folders that may be on object storage: the inbox, the archive and the staging area.

A location is a folder on this machine (an absolute path) or an `s3://bucket/prefix` URL,
reached through fsspec (s3fs) with the same AWS_* settings as the lake's data path
(`warehouse.home.S3Access`). Local folders keep the standard library's fast paths; only S3
goes through fsspec.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from warehouse.home import S3Access

if TYPE_CHECKING:  # fsspec (0.1 s to import) only when a path is reached through it
    from fsspec import AbstractFileSystem


def is_remote(location: str) -> bool:
    """Whether a location is a URL (object storage) rather than a folder on this machine."""
    return "://" in location


def join(location: str, *parts: str) -> str:
    """`location/part/...` for a folder or a URL."""
    return "/".join([location.rstrip("/"), *(p.strip("/") for p in parts)])


# botocore's "standard" retries: throttling (503 SlowDown), 5xx answers and connections
# refused, reset or timed out are tried again, up to 8 times after the first, after waits of up
# to 1, 2, 4, 8, 16, then 20 s (random within those bounds: about a minute in all before a
# lasting outage fails). s3fs retries on top of that for dropped connections and SlowDown.
# botocore's own variables AWS_RETRY_MODE and AWS_MAX_ATTEMPTS (attempts in all), when set,
# are used instead.
S3_RETRIES = {"mode": "standard", "total_max_attempts": 9}


def s3_options(s3: S3Access | None) -> dict[str, Any]:
    """fsspec's (s3fs's) options for these settings, with S3's passing errors retried;
    no settings: botocore's own lookup (env, roles)."""
    if s3 is None:
        return {}
    options: dict[str, Any] = {"client_kwargs": {"region_name": s3.region}}
    if not {"AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS"} & os.environ.keys():
        options["config_kwargs"] = {"retries": dict(S3_RETRIES)}
    if s3.key_id:
        options.update(key=s3.key_id, secret=s3.secret)
    if s3.endpoint:
        options["endpoint_url"] = f"{'https' if s3.use_ssl else 'http'}://{s3.endpoint}"
    return options


def filesystem(location: str, s3: S3Access | None) -> tuple[AbstractFileSystem, str]:
    """The filesystem holding a location, and the location's path on it (no scheme)."""
    if not is_remote(location):
        return _local(), location
    import fsspec

    fs, path = fsspec.core.url_to_fs(location, **s3_options(s3))
    return fs, path


@functools.cache
def _local() -> AbstractFileSystem:
    import fsspec

    return fsspec.filesystem("file")


def write_whole(location: str, s3: S3Access | None, write: Callable[[IO[bytes]], object]) -> None:
    """Write a file that appears whole or not at all: locally under a name of this process and
    thread, then renamed (two writers of one name leave one whole file); on S3 one upload,
    aborted on error."""
    if not is_remote(location):
        path = Path(location)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}")
        try:
            with open(tmp, "wb") as handle:
                write(handle)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return
    fs, path_on_fs = filesystem(location, s3)
    handle = fs.open(path_on_fs, "wb")
    try:
        write(handle)
    except BaseException:
        abort_upload(handle)
        raise
    handle.close()


def abort_upload(handle: IO[bytes]) -> None:
    """Drop what was written to an fsspec file being uploaded; nothing is uploaded, not even
    when the file is collected later (its `__del__` would close it, that is, upload it)."""
    handle.discard()  # type: ignore[attr-defined]  # s3fs: abort the multipart upload
    handle.closed = True  # type: ignore[misc]  # fsspec files keep `closed` as an attribute


def write_bytes(location: str, s3: S3Access | None, data: bytes) -> None:
    """`write_whole` of some bytes."""
    write_whole(location, s3, lambda handle: handle.write(data))


def remove_tree(location: str, s3: S3Access | None) -> bool:
    """Delete a folder (or prefix) and everything under it; whether anything was there."""
    if not is_remote(location):
        found = os.path.lexists(location)
        shutil.rmtree(location, ignore_errors=True)
        return found
    fs, path = filesystem(location, s3)
    try:
        fs.rm(path, recursive=True)
    except FileNotFoundError:
        return False
    return True


def is_empty(location: str, s3: S3Access | None) -> bool:
    """Whether a folder (or prefix) holds no file at all (a missing one holds none)."""
    if not is_remote(location):
        if not os.path.isdir(location):
            return True
        with os.scandir(location) as entries:
            return not any(entries)
    fs, path = filesystem(location, s3)
    fs.invalidate_cache(path)  # other processes (a cluster's workers) write there
    try:
        return not fs.find(path, maxdepth=None, withdirs=False)
    except FileNotFoundError:
        return True
