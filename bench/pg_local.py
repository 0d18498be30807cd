"""A throwaway PostgreSQL cluster on loopback, made with the server programs of this machine
(shared by the tests and the bench): it can be stopped, as a crash or an operator would stop it,
and started again on the same port, so that connection strings stay valid across an outage."""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from bench.dask_local import LOOPBACK, free_port

PG_VERSION = "15"
PG_SUPERUSER = "postgres"
PG_OS_USER = "postgres"  # initdb and postgres refuse to run as root: they run as this user then
PG_START_SECONDS = 60
# Tries at binding a port: another process may take a free port before the server does.
_START_TRIES = 3
StopMode = Literal["fast", "immediate"]


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


def missing_postgres() -> str | None:
    """Why no cluster can be made on this machine (what to install), or None when one can."""
    if find_postgres_bindir() is None:
        return (
            "PostgreSQL server programs (initdb, pg_ctl) not found on the PATH, by pg_config "
            "or in /usr/lib/postgresql/*/bin: apt-get install postgresql-15"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PG_OS_USER)
        except KeyError:
            return f"running as root and there is no {PG_OS_USER!r} user to run initdb as"
    return None


def _has_server(bindir: Path) -> bool:
    """Whether `bindir` holds the server programs (client-only installs lack them)."""
    return all((bindir / name).is_file() for name in ("initdb", "pg_ctl", "postgres"))


def _major(name: str) -> int:
    """A Debian PostgreSQL folder name's major version (0 if it is not a number)."""
    return int(name) if name.isdigit() else 0


class PostgresServer:
    """A throwaway PostgreSQL cluster on loopback, trusting every local connection: its data,
    socket and log under `root`; its programs run as the postgres OS user when this is root."""

    def __init__(self, bindir: Path, root: Path, host: str = LOOPBACK) -> None:
        """A cluster to be made under `root` (see `init`), listening on `host` once started."""
        self.bindir = bindir
        self.root = root
        self.host = host
        self.port = 0  # chosen at the first start, kept by every later one
        self.user = PG_SUPERUSER
        self.data = root / "data"
        self.sockets = root / "sockets"
        self.log = root / "server.log"

    def dsn(self, dbname: str) -> str:
        """A libpq key=value connection string for `dbname` on this server."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(host=self.host, port=self.port, user=self.user, dbname=dbname)

    def create_database(self, name: str) -> str:
        """Create a fresh empty database `name`; returns its dsn."""
        self._admin("CREATE DATABASE {}", name)
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        """Drop database `name`, closing whatever connections it still has."""
        self._admin("DROP DATABASE IF EXISTS {} WITH (FORCE)", name)

    def _admin(self, statement: str, name: str) -> None:
        """Run a statement naming database `name` (as an identifier) on the maintenance db."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as con:
            con.execute(sql.SQL(statement).format(sql.Identifier(name)))

    @property
    def running(self) -> bool:
        """Whether the server's process is up (its pid file is there)."""
        return (self.data / "postmaster.pid").exists()

    def init(self) -> None:
        """initdb with trust auth, then settings for a fast, loopback-only test server."""
        self.sockets.mkdir()
        if os.geteuid() == 0:
            owner = pwd.getpwnam(PG_OS_USER)
            for path in (self.root, self.sockets):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        self._run(
            "initdb",
            *("-D", str(self.data), "-U", PG_SUPERUSER, "-A", "trust"),
            *("-E", "UTF8", "--locale=C", "--no-sync"),
        )
        settings = {
            "listen_addresses": f"'{self.host}'",
            "unix_socket_directories": f"'{self.sockets}'",
            # Throwaway data: no need to survive a crash of the machine. A crash of the server
            # (`stop("immediate")`) keeps every acknowledged commit, as in production: the
            # write-ahead log is written (not flushed) before a commit returns.
            "fsync": "off",
            "full_page_writes": "off",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("".join(f"{key} = {value}\n" for key, value in settings.items()))

    def start(self) -> None:
        """Start the server: on a free port the first time, on that same port after a stop."""
        for attempt in range(_START_TRIES):
            port = self.port or free_port()
            try:
                self._run(
                    "pg_ctl",
                    *("-D", str(self.data), "-l", str(self.log), "-w"),
                    *("-t", str(PG_START_SECONDS), "-o", f"-p {port}", "start"),
                    timeout=PG_START_SECONDS + 30,
                )
            except RuntimeError as error:
                taken = re.search(r"could not bind|already in use", str(error))
                if attempt == _START_TRIES - 1 or not taken:
                    raise
                continue
            self.port = port
            return

    def stop(self, mode: StopMode = "fast") -> None:
        """Stop the server if it runs: "fast" ends open sessions and shuts down cleanly,
        "immediate" quits at once as a crash would (the next start recovers from its log)."""
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def _run(self, program: str, *args: str, timeout: float = 120) -> None:
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


@contextmanager
def postgres_cluster() -> Iterator[PostgresServer]:
    """A new cluster, started on a free loopback port; stopped and removed after the block.

    Raises RuntimeError saying what to install when this machine cannot run one."""
    reason = missing_postgres()
    bindir = find_postgres_bindir()
    if reason is not None or bindir is None:
        raise RuntimeError(reason)
    # Not under pytest's tmp_path: its folders are root-only, and the socket path must be short.
    server = PostgresServer(bindir, Path(tempfile.mkdtemp(prefix="wirehouse-pg-")))
    try:
        server.init()
        server.start()
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(server.root, ignore_errors=True)
