"""The catalog on PostgreSQL and the data on S3: the same night, the same rows, one writer."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.nightly import nightly_ingest
from tests.servers import S3Server
from tests.state import snapshot
from warehouse.catalog import lake_connection
from warehouse.home import Home
from warehouse.lock import RunLocked, run_lock
from warehouse.verify import verify

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture(autouse=True)
def _no_docs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIREHOUSE_BUILD_DOCS", "0")


def test_postgres_catalog_and_s3_data_give_the_embedded_rows(
    sample_inbox: Path,
    tmp_path: Path,
    postgres_dsn: str,
    s3_server: S3Server,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    embedded = tmp_path / "embedded"
    nightly_ingest(inbox=str(sample_inbox), home=str(embedded))
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("WIREHOUSE_CATALOG", f"postgres:{postgres_dsn}")
    monkeypatch.setenv("WIREHOUSE_DATA_PATH", f"s3://{s3_bucket}/lake/")
    summary = nightly_ingest(inbox=str(sample_inbox), home=str(tmp_path / "remote"))
    remote = Home.from_env(tmp_path / "remote")
    assert summary["status"] == "succeeded" and summary["violations"] == []
    assert snapshot(remote) == snapshot(embedded)
    assert verify(remote) == []
    # the data files are objects in the bucket, the local home holds none
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert any(k.startswith("lake/main/articles/") and k.endswith(".parquet") for k in keys)
    assert not (tmp_path / "remote" / "lake").exists()
    with lake_connection(remote) as con:
        assert con.execute("SELECT count(*) FROM runs").fetchall() == [(1,)]
    # a second night over the same inbox changes nothing
    again = nightly_ingest(inbox=str(sample_inbox), home=str(tmp_path / "remote"))
    assert again["counts"]["files"] == 0 and snapshot(remote) == snapshot(embedded)


def test_the_run_lock_holds_across_homes_sharing_a_postgres_catalog(
    tmp_path: Path, postgres_dsn: str
) -> None:
    # two machines: each its own home folder (file lock), one catalog database
    first = Home.at(tmp_path / "machine-a", catalog=f"postgres:{postgres_dsn}")
    second = Home.at(tmp_path / "machine-b", catalog=f"postgres:{postgres_dsn}")
    refused = pytest.raises(RunLocked, match="held in the catalog database")
    with run_lock(first), refused, run_lock(second):
        pass
    with run_lock(second):  # released with the first run
        pass
