"""The archive on S3 (moto's server): a dump too large for memory is kept whole or not at all."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import IO

import pytest

from tests.servers import S3Server
from warehouse.archive import keep_large
from warehouse.home import Home


def test_a_large_dump_is_uploaded_whole_or_not_at_all(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("WIREHOUSE_ARCHIVE", f"s3://{s3_bucket}/archive/")
    home = Home.from_env(tmp_path / "home")
    source = tmp_path / "large.txt"
    source.write_bytes(os.urandom(12 << 20))
    sha256 = hashlib.sha256(source.read_bytes()).hexdigest()

    def copy_then_fail(src: IO[bytes], dst: IO[bytes], length: int = 0) -> None:
        dst.write(src.read(7 << 20))  # past the first part of a multipart upload (5 MiB)
        raise OSError("the source went away")

    with monkeypatch.context() as patch:
        patch.setattr(shutil, "copyfileobj", copy_then_fail)
        with pytest.raises(OSError, match="went away"):
            keep_large(home, sha256, source)
    client = s3_server.client()
    assert client.list_objects_v2(Bucket=s3_bucket, Prefix="archive/").get("KeyCount") == 0

    assert keep_large(home, sha256, source) == (sha256, f"large/{sha256}", 0, 12 << 20)
    kept = client.get_object(Bucket=s3_bucket, Key=f"archive/large/{sha256}")["Body"].read()
    assert kept == source.read_bytes()
