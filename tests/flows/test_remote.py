"""The catalog on PostgreSQL, the data and the inbox on S3: the same night, the same rows."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from flows.nightly import NightFailed, nightly_ingest
from tests.servers import S3Server
from tests.state import snapshot
from tests.warehouse.test_remote_inbox import listing, upload
from warehouse.catalog import lake_connection
from warehouse.home import Home
from warehouse.lock import RunLocked, run_lock
from warehouse.search import find
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
        # the search index is the lake's: an analyst reaching the catalog searches it
        remote_found = find(con, "china", 100)
    assert any(k.startswith("lake/main/search_postings/") for k in keys)
    with lake_connection(Home.at(embedded)) as con:
        assert remote_found == find(con, "china", 100) != []
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


def test_an_inbox_on_s3_gives_the_rows_of_the_same_dumps_in_a_folder(
    sample_inbox_with_bundles: Path,
    tmp_path: Path,
    s3_server: S3Server,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local = nightly_ingest(inbox=str(sample_inbox_with_bundles), home=str(tmp_path / "local"))
    upload(s3_server, s3_bucket, sample_inbox_with_bundles, "crawl/incoming/")
    before = listing(s3_server, s3_bucket)
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("WIREHOUSE_INBOX", f"s3://{s3_bucket}/crawl/incoming/")
    remote = nightly_ingest(home=str(tmp_path / "remote"))
    assert remote["status"] == local["status"] == "succeeded" and remote["violations"] == []
    assert remote["counts"] == local["counts"]
    assert snapshot(tmp_path / "remote") == snapshot(tmp_path / "local")
    assert listing(s3_server, s3_bucket) == before  # listed and read, never modified
    home = Home.from_env(tmp_path / "remote")
    with lake_connection(home) as con:
        opened = "SELECT count(*) FROM files WHERE dump_file LIKE 'bundles/night.zip!%'"
        gunzipped = "SELECT status FROM files WHERE dump_file = 'gz/other-page.txt.gz'"
        assert con.execute(opened).fetchall()[0][0] > 0
        assert con.execute(gunzipped).fetchall() == [("loaded",)]
    assert verify(home, inbox=f"s3://{s3_bucket}/crawl/incoming") == []
    # a second night finds everything recorded; a backfill window of another day takes nothing
    assert nightly_ingest(home=str(tmp_path / "remote"))["counts"]["files"] == 0
    old = nightly_ingest(
        home=str(tmp_path / "other"), backfill=True, since=date(2001, 1, 1), until=date(2001, 1, 2)
    )
    assert old["counts"]["files"] == 0 and old["counts"]["already_recorded"] == 0
    assert listing(s3_server, s3_bucket) == before


def test_a_missing_bucket_fails_the_night_naming_it(
    tmp_path: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    url = "s3://no-such-bucket-for-wirehouse/inbox"
    with pytest.raises(NightFailed, match=f"no such inbox: {url}"):
        nightly_ingest(inbox=url, home=str(tmp_path / "home"))
