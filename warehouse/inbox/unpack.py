"""The night's bundles and .gz dumps opened into dumps of their own, staged by content hash.

A bundle's member becomes an inbox file named `bundle!member` whose bytes sit in the run's
staging folder under their SHA-256, never at a path the member names. From there on it is read
like any dump. The bundle itself is kept raw in the archive and recorded as `unpacked`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path

from transforms.records import Rejection
from warehouse.archive import ArchiveEntry, keep_large
from warehouse.home import Home
from warehouse.inbox import Arrivals, InboxFile, open_binary
from warehouse.inbox.bundles import BundleLimits, Member, kind_of, read_gzip, read_members
from warehouse.storage import is_remote, join, write_bytes


@dataclass(slots=True)
class Unpacked:
    """Arrivals with bundles opened, and where their raw bytes were archived."""

    arrivals: Arrivals
    archived: list[ArchiveEntry] = field(default_factory=list)


def container_hashes(arrivals: Arrivals) -> list[str]:
    """Raw hashes of the bundles and .gz files: asked of the ledger before opening them."""
    return [f.sha256 for f in arrivals.files if kind_of(f.path) is not None]


def unpack_arrivals(
    arrivals: Arrivals,
    recorded: set[tuple[str, str]],
    home: Home,
    run_id: str,
    limits: BundleLimits,
) -> Unpacked:
    """Open the new bundles and .gz dumps; ones the ledger holds stay closed (already recorded)."""
    out = Unpacked(replace(arrivals, files=[], bundles=[], refused=[]))
    staging = join(home.staging, run_id, "unpacked")
    for found in arrivals.files:
        kind = kind_of(found.path)
        if kind is None or (found.dump_file, found.sha256) in recorded:
            out.arrivals.files.append(found)  # plain, or seen before: plan_night decides
        elif kind == "gz":
            _open_gzip(found, staging, home, limits, out)
        else:
            _open_bundle(found, staging, home, limits, out)
    out.arrivals.files.sort(key=lambda f: f.dump_file)
    return out


def _open_gzip(
    found: InboxFile, staging: str, home: Home, limits: BundleLimits, out: Unpacked
) -> None:
    """A .gz of one dump is that dump: named as the .gz, hashed and sized decompressed."""
    with open_binary(found.path, home.s3) as handle:
        data = read_gzip(handle, found.bytes, limits)
    if isinstance(data, Rejection):
        out.arrivals.refused.append((found, data))  # identified by its raw bytes, kept raw
        out.archived.append(keep_large(home, found.sha256, found.path))
        return
    path, sha = _stage(staging, data, home)
    out.arrivals.files.append(InboxFile(found.dump_file, path, len(data), sha, found.mtime))


def _open_bundle(
    found: InboxFile, staging: str, home: Home, limits: BundleLimits, out: Unpacked
) -> None:
    """Each member a dump of its own; a refused bundle one quarantined row, members unopened."""
    opened: list[InboxFile] = []
    refused: list[tuple[InboxFile, Rejection]] = []
    out.archived.append(keep_large(home, found.sha256, found.path))
    kind = kind_of(found.path) or "zip"
    with open_binary(found.path, home.s3) as handle:
        for member in read_members(handle, kind, found.bytes, limits):
            if isinstance(member, Rejection):
                out.arrivals.refused.append((found, member))
                return
            _add_member(found, member, staging, home, opened, refused)
    out.arrivals.bundles.append(found)
    out.arrivals.files.extend(opened)
    out.arrivals.refused.extend(refused)


def _add_member(
    found: InboxFile,
    member: Member,
    staging: str,
    home: Home,
    opened: list[InboxFile],
    refused: list[tuple[InboxFile, Rejection]],
) -> None:
    """A member staged under its hash, or recorded with the reason it was not read."""
    name = f"{found.dump_file}!{member.name}"
    if member.data is None:
        assert member.refusal is not None
        earlier = sum(1 for refusal, _ in refused if refusal.dump_file == name)
        member_id = _refused_id(found, member, earlier)
        refused.append((InboxFile(name, found.path, member.size, member_id), member.refusal))
    else:
        path, sha = _stage(staging, member.data, home)
        opened.append(InboxFile(name, path, member.size, sha, found.mtime))


def _stage(staging: str, data: bytes, home: Home) -> tuple[Path | str, str]:
    """Write bytes under their hash in the run's staging folder (once per content, written whole:
    a retried task never trusts a half-written one); where the parse stage reads them."""
    sha = hashlib.sha256(data).hexdigest()
    location = join(staging, sha)
    if is_remote(location):
        write_bytes(location, home.s3, data)
        return location, sha
    path = Path(location)
    if not path.exists():
        write_bytes(location, None, data)
    return path, sha


def _refused_id(bundle: InboxFile, member: Member, earlier: int = 0) -> str:
    """A refused member's bytes are never read: it is identified by its bundle and its name, and
    by how many refused members of that name came before it (a bundle may repeat a name)."""
    again = f"\0{earlier}" if earlier else ""  # the first keeps the id it always had
    return hashlib.sha256(f"member\0{bundle.sha256}\0{member.name}{again}".encode()).hexdigest()
