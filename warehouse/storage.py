"""Folders that may be on object storage: the inbox, the archive and the staging area.

A location is a folder on this machine (an absolute path) or an `s3://bucket/prefix` URL,
reached through fsspec (s3fs) with the same AWS_* settings as the lake's data path
(`warehouse.home.S3Access`). Local folders keep the standard library's fast paths; only S3
goes through fsspec.
"""

from __future__ import annotations

import functools
from typing import Any

import fsspec
from fsspec import AbstractFileSystem

from warehouse.home import S3Access


def is_remote(location: str) -> bool:
    """Whether a location is a URL (object storage) rather than a folder on this machine."""
    return "://" in location


def join(location: str, *parts: str) -> str:
    """`location/part/...` for a folder or a URL."""
    return "/".join([location.rstrip("/"), *(p.strip("/") for p in parts)])


def s3_options(s3: S3Access | None) -> dict[str, Any]:
    """fsspec's (s3fs's) options for these settings; none: botocore's own lookup (env, roles)."""
    if s3 is None:
        return {}
    options: dict[str, Any] = {"client_kwargs": {"region_name": s3.region}}
    if s3.key_id:
        options.update(key=s3.key_id, secret=s3.secret)
    if s3.endpoint:
        options["endpoint_url"] = f"{'https' if s3.use_ssl else 'http'}://{s3.endpoint}"
    return options


def filesystem(location: str, s3: S3Access | None) -> tuple[AbstractFileSystem, str]:
    """The filesystem holding a location, and the location's path on it (no scheme)."""
    if not is_remote(location):
        return _local(), location
    fs, path = fsspec.core.url_to_fs(location, **s3_options(s3))
    return fs, path


@functools.cache
def _local() -> AbstractFileSystem:
    return fsspec.filesystem("file")
