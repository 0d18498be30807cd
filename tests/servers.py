"""Real servers on loopback for tests: a throwaway PostgreSQL cluster, moto's S3 server and a
Dask scheduler with its workers."""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from bench.dask_local import LOOPBACK, DaskCluster, dask_cluster_of, free_port

PG_VERSION = "15"
PG_SUPERUSER = "postgres"
PG_OS_USER = "postgres"  # initdb and postgres refuse to run as root: they run as this user then
PG_START_SECONDS = 60
S3_KEY = "testing"
S3_REGION = "us-east-1"


def _unavailable(reason: str) -> NoReturn:
    """Fail under CI (which installs the server, .ci/run), skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this fails rather than skips)", pytrace=False)
    pytest.skip(reason)


def _has_server(bindir: Path) -> bool:
    """Whether `bindir` holds the server programs (client-only installs lack them)."""
    return all((bindir / name).is_file() for name in ("initdb", "pg_ctl", "postgres"))


def find_postgres_bindir() -> Path | None:
    """The folder of initdb/pg_ctl/postgres: on the PATH, `pg_config --bindir`, Debian's path."""
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        done = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if done.returncode == 0 and done.stdout.strip():
            candidates.append(Path(done.stdout.strip()))
    # Debian installs the server outside the PATH; prefer 15, else the newest there.
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: (path.parent.name != PG_VERSION, -_major(path.parent.name)),
    )
    candidates.extend(debian)
    return next((path for path in candidates if _has_server(path)), None)


def _major(name: str) -> int:
    """A Debian PostgreSQL folder name's major version (0 if it is not a number)."""
    return int(name) if name.isdigit() else 0


@dataclass(frozen=True)
class PostgresServer:
    """A running throwaway PostgreSQL cluster on loopback, trusting every local connection."""

    host: str
    port: int
    user: str
    root: Path

    def dsn(self, dbname: str) -> str:
        """A libpq key=value connection string for `dbname` on this server."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(host=self.host, port=self.port, user=self.user, dbname=dbname)

    def _admin(self, statement: str, name: str) -> None:
        """Run a statement naming database `name` (as an identifier) on the maintenance db."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as con:
            con.execute(sql.SQL(statement).format(sql.Identifier(name)))

    def create_database(self, name: str) -> str:
        """Create a fresh empty database `name`; returns its dsn."""
        self._admin("CREATE DATABASE {}", name)
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        """Drop database `name`, closing whatever connections it still has."""
        self._admin("DROP DATABASE IF EXISTS {} WITH (FORCE)", name)


class _Cluster:
    """Runs a cluster's programs, as the postgres OS user when this process is root."""

    def __init__(self, bindir: Path, root: Path) -> None:
        """A cluster with its data, socket and log under `root`."""
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.sockets = root / "sockets"
        self.log = root / "server.log"

    def run(self, program: str, *args: str, timeout: float = 120) -> None:
        """Run one of the server's programs; raise with its output if it fails."""
        command = [str(self.bindir / program), *args]
        if os.geteuid() == 0:
            if shutil.which("runuser"):
                command = ["runuser", "-u", PG_OS_USER, "--", *command]
            else:
                command = ["su", PG_OS_USER, "-s", "/bin/sh", "-c", shlex.join(command)]
        done = subprocess.run(
            command, cwd=self.root, capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{program} exited {done.returncode}: {shlex.join(command)}\n"
                f"{done.stdout}{done.stderr}{self.log_tail()}"
            )

    def log_tail(self) -> str:
        """The end of the server's log, if any, for error messages."""
        try:
            lines = self.log.read_text(errors="replace").splitlines()[-30:]
        except OSError:
            return ""
        return "\n--- server.log ---\n" + "\n".join(lines)

    def init(self) -> None:
        """initdb with trust auth, then settings for a fast, loopback-only test server."""
        self.sockets.mkdir()
        if os.geteuid() == 0:
            owner = pwd.getpwnam(PG_OS_USER)
            for path in (self.root, self.sockets):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        self.run(
            "initdb",
            *("-D", str(self.data), "-U", PG_SUPERUSER, "-A", "trust"),
            *("-E", "UTF8", "--locale=C", "--no-sync"),
        )
        settings = {
            "listen_addresses": f"'{LOOPBACK}'",
            "unix_socket_directories": f"'{self.sockets}'",
            # Throwaway data: no need to survive a crash.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("".join(f"{key} = {value}\n" for key, value in settings.items()))

    def start(self) -> int:
        """Start on a free port (a few tries, should another process take it first)."""
        for attempt in range(3):
            port = free_port()
            try:
                self.run(
                    "pg_ctl",
                    *("-D", str(self.data), "-l", str(self.log), "-w"),
                    *("-t", str(PG_START_SECONDS), "-o", f"-p {port}", "start"),
                    timeout=PG_START_SECONDS + 30,
                )
            except RuntimeError as error:
                if attempt == 2 or not re.search(r"could not bind|already in use", str(error)):
                    raise
                continue
            return port
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Stop the server if it runs (fast shutdown: open sessions are ended)."""
        if (self.data / "postmaster.pid").exists():
            self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 for the session (trust auth, user postgres)."""
    bindir = find_postgres_bindir()
    if bindir is None:
        _unavailable(
            "PostgreSQL server programs (initdb, pg_ctl) not found on the PATH, by pg_config "
            "or in /usr/lib/postgresql/*/bin: apt-get install postgresql-15"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PG_OS_USER)
        except KeyError:
            _unavailable(f"running as root and there is no {PG_OS_USER!r} user to run initdb as")
    # Not under pytest's tmp_path: its folders are root-only, and the socket path must be short.
    cluster = _Cluster(bindir, Path(tempfile.mkdtemp(prefix="wirehouse-pg-")))
    try:
        cluster.init()
        port = cluster.start()
        yield PostgresServer(host=LOOPBACK, port=port, user=PG_SUPERUSER, root=cluster.root)
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(cluster.root, ignore_errors=True)


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
