"""Object storage answering badly: nights through a proxy that disturbs a share of S3 requests.

The home's data path, archive and staging, and the inbox, are on the tests' S3 server, reached
through `bench.s3proxy`: 503 SlowDown, 500 InternalError, connections reset and slow answers
are retried (DuckDB's httpfs, botocore, the flow's tasks) and the night equals a clean one; a
lasting outage fails the night with one sentence naming object storage and changes nothing,
and the next night once it is back builds what a clean night builds.
"""

from __future__ import annotations

import io
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from bench.s3proxy import Proxy, disturbing_proxy
from flows.cli import main
from flows.nightly import nightly_ingest
from tests.conftest import SAMPLES
from tests.servers import S3Server
from tests.state import empty_snapshot, snapshot
from tests.warehouse.test_remote_inbox import listing, upload
from warehouse.catalog import lake_connection
from warehouse.home import Home
from warehouse.outage import transient
from warehouse.verify import verify

pytestmark = pytest.mark.usefixtures("prefect_server")

SEED = 24


@pytest.fixture(autouse=True)
def _no_docs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIREHOUSE_BUILD_DOCS", "0")


@pytest.fixture(scope="module")
def small_inbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three dozen of the sample dumps (Xinhua's, a redelivery, 20 other outlets' pages)."""
    inbox = tmp_path_factory.mktemp("small") / "inbox"
    shutil.copytree(SAMPLES, inbox)
    for extra in sorted((inbox / "web-pages").iterdir())[20:]:
        extra.unlink()
    return inbox


@pytest.fixture(scope="module")
def reference(
    small_inbox: Path, tmp_path_factory: pytest.TempPathFactory, prefect_server: None
) -> Any:
    """What a clean night of the small inbox builds, in a home on this machine."""
    home = tmp_path_factory.mktemp("reference") / "home"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WIREHOUSE_BUILD_DOCS", "0")
        summary = nightly_ingest(inbox=str(small_inbox), home=str(home))
    assert summary["status"] == "succeeded" and summary["counts"]["articles"] > 20
    return snapshot(home)


@pytest.fixture
def proxy(s3_server: S3Server) -> Iterator[Proxy]:
    """The disturbing proxy in front of the tests' S3 server, calm until told."""
    with disturbing_proxy(s3_server.endpoint_url, SEED, slow_seconds=0.5) as running:
        yield running


@pytest.fixture
def s3_home(
    tmp_path: Path,
    s3_server: S3Server,
    s3_bucket: str,
    small_inbox: Path,
    proxy: Proxy,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Path, str]:
    """A home whose data path, archive, staging and inbox (the small inbox, uploaded directly)
    are in a fresh bucket reached through the proxy; its folder and the inbox's URL."""
    upload(s3_server, s3_bucket, small_inbox, "inbox/")
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint_url)
    for name in ("DATA_PATH", "ARCHIVE", "STAGING"):
        monkeypatch.setenv(f"WIREHOUSE_{name}", f"s3://{s3_bucket}/{name.lower()}/")
    return tmp_path / "home", f"s3://{s3_bucket}/inbox/"


def _client(endpoint_url: str, server: S3Server) -> Any:
    """A plain boto3 client that tries each request once."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=server.region,
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}),
    )


def test_the_proxy_disturbs_the_share_it_is_told(s3_server: S3Server, s3_bucket: str) -> None:
    with disturbing_proxy(s3_server.endpoint_url, SEED) as proxy:
        client = _client(proxy.endpoint_url, s3_server)
        body = bytes(range(256)) * 40_000  # 10 MB: a multipart upload (two parts) through it
        parts = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20)
        client.upload_fileobj(io.BytesIO(body), s3_bucket, "whole", Config=parts)
        whole = client.get_object(Bucket=s3_bucket, Key="whole")
        assert whole["ETag"].endswith('-2"') and whole["Body"].read() == body
        proxy.disturb(1.0, ["slowdown"])
        with pytest.raises(ClientError) as refused:
            client.get_object(Bucket=s3_bucket, Key="whole")
        answer = refused.value.response
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert answer["Error"]["Code"] == "SlowDown"
        assert transient(refused.value)  # worth another try
        proxy.disturb(1.0, ["error"])
        with pytest.raises(ClientError, match="InternalError") as failed:
            client.list_objects_v2(Bucket=s3_bucket)
        assert transient(failed.value)
        proxy.disturb(1.0, ["reset"])
        with pytest.raises((ConnectionClosedError, EndpointConnectionError)) as reset:
            client.list_objects_v2(Bucket=s3_bucket)
        assert transient(reset.value)
        proxy.calm()
        with pytest.raises(ClientError, match="NoSuchKey") as missing:
            client.get_object(Bucket=s3_bucket, Key="missing")
        assert not transient(missing.value)  # an answer, not trouble
        assert client.get_object(Bucket=s3_bucket, Key="whole")["Body"].read() == body
    # a share of requests, each tried once: every failure is an injected fault; the same seed
    # disturbs the same requests
    failed, injected = _sixty_disturbed(s3_server, s3_bucket)
    assert failed == sum(injected.values()) and 5 < failed < 35
    assert set(injected) == {"slowdown", "error", "reset"}
    assert _sixty_disturbed(s3_server, s3_bucket) == (failed, injected)


def _sixty_disturbed(server: S3Server, bucket: str) -> tuple[int, Counter[str]]:
    """Sixty requests tried once each through a fresh proxy disturbing 30% of them: how many
    failed, and the faults it injected."""
    with disturbing_proxy(server.endpoint_url, SEED) as proxy:
        proxy.disturb(0.3, ["slowdown", "error", "reset"])
        client = _client(proxy.endpoint_url, server)
        failed = 0
        for _ in range(60):
            try:
                client.list_objects_v2(Bucket=bucket, MaxKeys=1)
            except (ClientError, ConnectionClosedError, EndpointConnectionError):
                failed += 1
        assert proxy.requests == 60  # one attempt each
        return failed, proxy.injected


@pytest.mark.parametrize(
    ("kind", "share"), [("slowdown", 0.1), ("error", 0.1), ("reset", 0.1), ("slow", 0.1)]
)
def test_a_night_through_disturbed_object_storage_equals_a_clean_one(
    kind: str, share: float, s3_home: tuple[Path, str], proxy: Proxy, reference: Any
) -> None:
    home, inbox = s3_home
    proxy.disturb(share, [kind])
    summary = nightly_ingest(inbox=inbox, home=str(home))
    proxy.calm()
    assert proxy.injected[kind] > 0 and set(proxy.injected) == {kind}
    assert summary["status"] == "succeeded" and summary["violations"] == []
    assert snapshot(Home.from_env(home)) == reference
    assert verify(Home.from_env(home), inbox=inbox) == []


def test_a_lasting_outage_fails_the_night_cleanly_and_the_next_converges(
    s3_home: tuple[Path, str],
    proxy: Proxy,
    reference: Any,
    s3_server: S3Server,
    s3_bucket: str,
    small_inbox: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home, inbox = s3_home
    # botocore's own setting: fewer attempts before giving up (DuckDB's retries are unchanged)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    before = listing(s3_server, s3_bucket)
    proxy.down()
    code = main(["--home", str(home), "ingest", "--inbox", inbox])
    out, err = capfd.readouterr()
    named = f"object storage (S3 at {proxy.host_port}) is unavailable"
    assert code == 1, err
    assert named in err and "the night changed nothing" in err and "then run again" in err
    assert "Traceback" not in out + err and s3_server.secret_key not in out + err
    # an inbox on this machine: the night itself meets the outage (its lake, archive, staging)
    code = main(["--home", str(home), "ingest", "--inbox", str(small_inbox)])
    out, err = capfd.readouterr()
    assert code == 1, err
    assert named in err and "Traceback" not in out + err and s3_server.secret_key not in err
    assert proxy.injected["down"] > 0 and set(proxy.injected) == {"down"}
    proxy.calm()
    assert listing(s3_server, s3_bucket) == before  # nothing written, nothing removed
    assert snapshot(Home.from_env(home)) == empty_snapshot()
    monkeypatch.delenv("AWS_MAX_ATTEMPTS")
    summary = nightly_ingest(inbox=inbox, home=str(home))
    assert summary["status"] == "succeeded"
    assert snapshot(Home.from_env(home)) == reference
    with lake_connection(Home.from_env(home)) as con:
        assert con.execute("SELECT status FROM runs").fetchall() == [("succeeded",)]
