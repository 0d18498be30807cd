"""Real servers on loopback for tests: a throwaway PostgreSQL cluster, moto's S3 server and a
Dask scheduler with its workers."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

import pytest

from bench.dask_local import LOOPBACK, DaskCluster, dask_cluster_of
from bench.pg_local import PostgresServer, missing_postgres, postgres_cluster

S3_KEY = "testing"
S3_REGION = "us-east-1"


def _unavailable(reason: str) -> NoReturn:
    """Fail under CI (which installs the server, .ci/run), skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this fails rather than skips)", pytrace=False)
    pytest.skip(reason)


@contextmanager
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster of the caller's own, which it may stop and start (skipped, or
    failed under CI, where the server programs are missing)."""
    reason = missing_postgres()
    if reason is not None:
        _unavailable(reason)
    with postgres_cluster() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 for the session (trust auth, user postgres).
    Shared: a test that stops its server makes its own (`own_postgres`)."""
    with own_postgres() as server:
        yield server


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database for one test (dropped after it); yields its dsn."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    dsn = postgres_server.create_database(name)
    yield dsn
    postgres_server.drop_database(name)


@dataclass(frozen=True)
class S3Server:
    """moto's S3-compatible server running on loopback, with its (fake) credentials."""

    endpoint_url: str
    access_key: str = S3_KEY
    secret_key: str = S3_KEY
    region: str = S3_REGION

    @property
    def endpoint(self) -> str:
        """host:port without a scheme, as DuckDB's S3 secret takes it (with USE_SSL false)."""
        return self.endpoint_url.removeprefix("http://")

    def client(self) -> Any:
        """A boto3 S3 client for this server, with path-style addressing."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(s3={"addressing_style": "path"}),
        )

    def create_bucket(self, name: str) -> str:
        """Create bucket `name`; returns the name."""
        self.client().create_bucket(Bucket=name)
        return name

    def env(self) -> dict[str, str]:
        """The standard AWS variables that point SDKs and tools at this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint_url,
        }


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1 (a free port) for the session."""
    from moto.server import ThreadedMotoServer

    # Port 0: the OS picks a free port as the server binds, so no other process can race for it.
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Server(endpoint_url=f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A fresh, uniquely named bucket for one test."""
    return s3_server.create_bucket(f"test-{uuid.uuid4().hex[:16]}")


@pytest.fixture(scope="module")
def dask_cluster(
    tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server
) -> Iterator[DaskCluster]:
    """A scheduler and two single-threaded worker processes, shared by a module's tests; the
    workers' own environment holds the keys of the S3 server (the flow never sends them)."""
    with dask_cluster_of(tmp_path_factory.mktemp("dask"), env=s3_server.env()) as cluster:
        yield cluster
