"""Raw dump bytes kept forever, content-addressed: archive/ab/abcdef...(sha256)."""

from __future__ import annotations

import os
from pathlib import Path

from warehouse.home import Home


def archive_path(home: Home, sha256: str) -> Path:
    """Where the bytes with this SHA-256 are kept."""
    return home.archive / sha256[:2] / sha256


def keep_raw(home: Home, sha256: str, data: bytes) -> bool:
    """Store the bytes under their hash unless already there; True when newly written."""
    path = archive_path(home, sha256)
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{sha256}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True


def flush() -> None:
    """Push the archive's new files to disk before the run commits (one sync for the batch)."""
    os.sync()
