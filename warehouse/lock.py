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
    import psycopg

    with psycopg.connect(dsn, autocommit=True, application_name="wirehouse-run-lock") as con:
        deadline = time.monotonic() + wait_seconds
        while True:
            row = con.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_KEY]).fetchone()
            if row and row[0]:
                break
            if time.monotonic() >= deadline:
                holder = con.execute(
                    "SELECT string_agg(coalesce(a.client_addr::text, 'local') || ' pid ' "
                    "|| a.pid, ', ') "
                    "FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                    "WHERE l.locktype = 'advisory' AND l.granted",
                ).fetchone()
                where = holder[0] if holder and holder[0] else "another machine"
                raise RunLocked(_busy(f"held in the catalog database by {where}"))
            time.sleep(_POLL_SECONDS)
        try:
            yield
        finally:
            try:
                con.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_KEY])
            except psycopg.OperationalError:
                # A connection the catalog's restart broke held nothing any more: the server
                # released the lock when the session ended.
                if not con.broken:
                    raise


def _busy(holder: str) -> str:
    return (
        f"another run is in progress on this warehouse ({holder}); it was left to finish. "
        "Try again when it is done."
    )
