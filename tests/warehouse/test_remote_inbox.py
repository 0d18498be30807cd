"""An inbox on S3 (moto's server): the names, hashes and fates a folder of the same files gets."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CASES
from tests.servers import S3Server
from warehouse.home import S3Access
from warehouse.inbox import find_arrivals, inbox_problem, read_bytes
from warehouse.inbox.bundles import kind_of

HOSTILE = CASES / "hostile" / "inbox"


def access(server: S3Server) -> S3Access:
    """The settings a home holds for this server."""
    return S3Access(server.access_key, server.secret_key, server.region, server.endpoint, False)


def upload(server: S3Server, bucket: str, folder: Path, prefix: str) -> None:
    """Every regular file under `folder` as an object under `prefix`, keyed by its relative path."""
    client = server.client()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            key = prefix + path.relative_to(folder).as_posix()
            client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())


def listing(server: S3Server, bucket: str) -> list[tuple[Any, ...]]:
    """Every object of a bucket with what would show a change: size, ETag, last-modified."""
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [
        (o["Key"], o["Size"], o["ETag"], o["LastModified"])
        for page in pages
        for o in page.get("Contents", [])
    ]


def test_objects_get_the_names_hashes_and_fates_of_the_same_files(
    s3_server: S3Server, s3_bucket: str
) -> None:
    upload(s3_server, s3_bucket, HOSTILE, "night/")
    s3_server.client().put_object(Bucket=s3_bucket, Key="nightly/not-in-the-inbox.txt", Body=b"x")
    s3_server.client().put_object(Bucket=s3_bucket, Key="night/a/", Body=b"")  # a folder marker
    before = listing(s3_server, s3_bucket)
    remote = find_arrivals(f"s3://{s3_bucket}/night/", 0, access(s3_server))
    local = find_arrivals(HOSTILE, 0)
    assert [(f.dump_file, f.sha256, f.bytes) for f in remote.files] == [
        (f.dump_file, f.sha256, f.bytes) for f in local.files
    ]
    assert remote.unsettled == local.unsettled == ["still-being-written.txt.part"]
    assert "deeply/nested/folder/of/the/crawl/001_7ddd.txt" in {f.dump_file for f in remote.files}
    first = remote.files[0]
    assert first.path == f"s3://{s3_bucket}/night/{first.dump_file}"
    assert {kind_of(f.path) for f in remote.files} == {None, "zip", "tar", "gz"}
    assert listing(s3_server, s3_bucket) == before  # listed and read, never modified


def test_the_bucket_root_is_an_inbox_too(s3_server: S3Server, s3_bucket: str) -> None:
    s3_server.client().put_object(Bucket=s3_bucket, Key="2019/05/a.txt", Body=b"a page")
    found = find_arrivals(f"s3://{s3_bucket}", 0, access(s3_server))
    assert [(f.dump_file, f.sha256) for f in found.files] == [
        ("2019/05/a.txt", hashlib.sha256(b"a page").hexdigest())
    ]


def test_an_object_written_again_within_the_window_is_left_for_later(
    s3_server: S3Server, s3_bucket: str
) -> None:
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="in/steady.txt", Body=b"written once")
    client.put_object(Bucket=s3_bucket, Key="in/growing.txt", Body=b"first part")
    rewrite = threading.Timer(
        0.5, lambda: client.put_object(Bucket=s3_bucket, Key="in/growing.txt", Body=b"first ")
    )
    rewrite.start()
    started = time.monotonic()
    found = find_arrivals(f"s3://{s3_bucket}/in", 2.0, access(s3_server))
    rewrite.join()
    assert time.monotonic() - started >= 1.0  # it waited for the young objects
    assert [f.dump_file for f in found.files] == ["steady.txt"]
    assert found.unsettled == ["growing.txt"]
    # a night later it has settled
    again = find_arrivals(f"s3://{s3_bucket}/in", 0, access(s3_server))
    assert [f.dump_file for f in again.files] == ["growing.txt", "steady.txt"]


@pytest.mark.parametrize("size", [0, 1000, 9 * (1 << 20) + 3])  # past one hashing chunk
def test_objects_are_hashed_whole_and_read_up_to_the_limit(
    s3_server: S3Server, s3_bucket: str, size: int
) -> None:
    data = os.urandom(size)
    s3_server.client().put_object(Bucket=s3_bucket, Key="in/dump.txt", Body=data)
    [found] = find_arrivals(f"s3://{s3_bucket}/in", 0, access(s3_server)).files
    assert (found.sha256, found.bytes) == (hashlib.sha256(data).hexdigest(), size)
    assert isinstance(found.path, str)
    assert read_bytes(found.path, size, access(s3_server)) == data
    if size:
        assert read_bytes(found.path, size - 1, access(s3_server)) is None


def test_an_inbox_that_cannot_be_listed_is_named(s3_server: S3Server, s3_bucket: str) -> None:
    s3 = access(s3_server)
    assert inbox_problem(f"s3://{s3_bucket}/empty-yet", s3) is None
    problem = inbox_problem("s3://no-such-bucket-here/in", s3)
    assert problem is not None and "s3://no-such-bucket-here/in" in problem
    assert "does not exist" in problem
