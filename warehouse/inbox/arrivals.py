"""What a walk of the inbox finds, folder or bucket alike."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from transforms.records import Rejection

# Names that download tools give files they are still writing.
PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".download", ".filepart")


@dataclass(frozen=True, slots=True)
class InboxFile:
    """One regular file of the inbox: its name relative to the inbox, size and content hash."""

    dump_file: str
    path: Path | str  # a path on this machine, or the s3:// URL of an object
    bytes: int
    sha256: str
    mtime: float | None = None  # the file's modification time: when the dump was captured


@dataclass(frozen=True, slots=True)
class Arrivals:
    """What a walk of the inbox found."""

    files: list[InboxFile]  # regular, settled files, in path order
    symlinks: list[InboxFile]  # never followed; hashed by their target text; quarantined
    unsettled: list[str]  # still being written: left for the next night
    # Filled when bundles are opened (warehouse.inbox.unpack): archives recorded as `unpacked`,
    # whose members join `files`; and archives, .gz files or members refused before any reading.
    bundles: list[InboxFile] = field(default_factory=list)
    refused: list[tuple[InboxFile, Rejection]] = field(default_factory=list)


# Hashes files or objects given as (path or s3:// URL, size), in their order: here by default,
# or spread over the workers of a cluster (flows.cluster.hash_on_cluster), which then read the
# inbox, not the flow (`warehouse.inbox.hash_locations` on each chunk).
Hasher = Callable[[list[tuple[str, int]]], list[str]]
