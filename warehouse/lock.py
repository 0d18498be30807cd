"""One run at a time per home: an advisory file lock, released by the kernel if the run dies."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class RunLocked(RuntimeError):
    """Another run holds the home; raised after waiting as long as allowed."""


@contextmanager
def run_lock(path: Path, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the home's run lock for the duration of the block."""
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
                    raise RunLocked(
                        f"another run is in progress on this home (holder: {holder}); "
                        "it was left to finish. Try again when it is done."
                    ) from None
                time.sleep(0.5)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%S%z')}".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def lock_holder(path: Path) -> str | None:
    """Who holds the home's run lock right now, or None when it is free."""
    try:
        with run_lock(path):
            return None
    except RunLocked as locked:
        return str(locked)
