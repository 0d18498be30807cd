"""Local files that appear complete or not at all: written under a hidden name, then renamed."""

from __future__ import annotations

import os
from pathlib import Path

from warehouse.faults import checkpoint

_TMP_MARK = ".tmp-"


def temp_path(path: Path) -> Path:
    """The hidden name a file is written under before `publish` gives it its own."""
    return path.with_name(f".{path.name}{_TMP_MARK}{os.getpid()}")


def publish(tmp: Path, path: Path) -> None:
    """Flush a finished temporary file to disk and rename it into place, atomically."""
    _fsync(tmp)
    checkpoint(f"publish.before:{path.parent.name}")
    os.replace(tmp, path)
    _fsync(path.parent)
    checkpoint(f"publish.after:{path.parent.name}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
