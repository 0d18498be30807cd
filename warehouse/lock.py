"""One writer at a time per warehouse: a file lock on the home, and with a PostgreSQL catalog an
advisory lock in its database, so that runs on other machines are kept apart too. Both are
released by the kernel or the server if the process dies."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from warehouse.home import Home

# The advisory lock's key in the catalog database: any fixed 64-bit number, the same everywhere.
ADVISORY_KEY = 0x57_49_52_45_48_4F_55_53  # "WIREHOUS"
_POLL_SECONDS = 0.5


class RunLocked(RuntimeError):
    """Another run holds the warehouse; raised after waiting as long as allowed."""


@contextmanager
def run_lock(home: Home, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the warehouse's run lock (the home's file, then the catalog's) for the block."""
    with _file_lock(home.lock, wait_seconds):
        if home.catalog_spec.startswith("postgres:"):
            with _advisory_lock(home.catalog_spec.removeprefix("postgres:"), wait_seconds):
                yield
        else:
            yield


def lock_holder(home: Home) -> str | None:
    """Who holds the warehouse's run lock right now, or None when it is free."""
    try:
        with run_lock(home):
            return None
    except RunLocked as locked:
        return str(locked)


@contextmanager
def _file_lock(path: Path, wait_seconds: float) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
                    raise RunLocked(_busy(f"holder: {holder}")) from None
                time.sleep(_POLL_SECONDS)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%S%z')}".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextmanager
def _advisory_lock(dsn: str, wait_seconds: float) -> Iterator[None]:
    lock = _Advisory(dsn)
    lock.take(wait_seconds)
    _HELD.append(lock)
    try:
        yield
    finally:
        _HELD.remove(lock)
        lock.release()


def still_held() -> None:
    """Before a commit: this process's run lock is still its own. A catalog's restart ends the
    database session that held the advisory lock, and the lock with it: it is taken again here,
    or `RunLocked` when another run took it meanwhile (and this one must not commit)."""
    for lock in _HELD:
        lock.ensure()


class _Advisory:
    """The advisory lock in the catalog's database, on a connection of its own."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.con = self._connect()

    def _connect(self) -> Any:
        import psycopg

        return psycopg.connect(self.dsn, autocommit=True, application_name="wirehouse-run-lock")

    def take(self, wait_seconds: float) -> None:
        """Take the lock, waiting up to `wait_seconds` for another run to let it go."""
        deadline = time.monotonic() + wait_seconds
        try:
            while not self._try():
                if time.monotonic() >= deadline:
                    held_by = f"held in the catalog database by {self._holder()}"
                    # Not from an outage it may meet on a retry: another run holds the lock.
                    raise RunLocked(_busy(held_by)) from None
                time.sleep(_POLL_SECONDS)
        except BaseException:
            self.con.close()
            raise

    def _try(self) -> bool:
        row = self.con.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_KEY]).fetchone()
        return bool(row and row[0])

    def _holder(self) -> str:
        holder = self.con.execute(
            "SELECT string_agg(coalesce(a.client_addr::text, 'local') || ' pid ' || a.pid, ', ') "
            "FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE l.locktype = 'advisory' AND l.granted",
        ).fetchone()
        return str(holder[0]) if holder and holder[0] else "another machine"

    def ensure(self) -> None:
        """The lock still held by this connection, or taken again on a new one."""
        import psycopg

        try:
            row = self.con.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND pid = pg_backend_pid()"
            ).fetchone()
            if row and row[0]:
                return
        except psycopg.OperationalError:
            if not self.con.broken:
                raise
        self.con.close()
        self.con = self._connect()  # the catalog down still: its error, retried by the caller
        self.take(0.0)

    def release(self) -> None:
        import psycopg

        if self.con.closed:  # lost to another run during a restart (`ensure`): nothing held
            return
        try:
            self.con.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_KEY])
        except psycopg.OperationalError:
            # A connection the catalog's restart broke held nothing any more: the server
            # released the lock when the session ended.
            if not self.con.broken:
                raise
        finally:
            self.con.close()


_HELD: list[_Advisory] = []  # the advisory locks this process holds (one, during a run)


def _busy(holder: str) -> str:
    return (
        f"another run is in progress on this warehouse ({holder}); it was left to finish. "
        "Try again when it is done."
    )
