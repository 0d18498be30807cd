"""Raw dump bytes kept forever, content-addressed: append-only packs and an index by SHA-256.

One small file per dump costs about half a millisecond to create on a typical disk, more than
parsing the dump; a pack per parse batch costs microseconds per dump. The index (sha256, pack,
offset, length) is the lake's `archive_index` table, committed in the night's snapshot, so the
archive holds exactly the committed nights' bytes: packs no index row names are a killed or
refused run's, removed by the next run. Dumps too large to read are copied whole under `large/`.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING

import duckdb
import pyarrow as pa

from warehouse.files import publish, temp_path
from warehouse.home import Home
from warehouse.storage import abort_upload, filesystem, is_remote, join, write_whole

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

# (sha256, pack, offset, length): where one dump's bytes are.
ArchiveEntry = tuple[str, str, int, int]

INDEX_SCHEMA = pa.schema(
    [
        ("dump_sha256", pa.string()),
        ("pack", pa.string()),  # file name under archive/packs, or "large/<sha>"
        ("offset", pa.int64()),
        ("length", pa.int64()),
    ]
)


class PackWriter:
    """Appends one batch's new dumps to one pack file; `entries` says where each one went.

    In a local archive the pack is written under a hidden name and renamed when complete; on S3
    it is uploaded as it is written (in parts) and appears whole when closed, or not at all.
    """

    def __init__(self, home: Home, run_id: str, batch: int) -> None:
        self.name = f"{run_id}-{batch:05d}.pack"
        self.final = join(home.archive, "packs", self.name)
        self.entries: list[ArchiveEntry] = []
        self.offset = 0
        self.fs: AbstractFileSystem | None = None
        self.handle: IO[bytes]
        if is_remote(self.final):
            self.fs, path = filesystem(self.final, home.s3)
            self.handle = self.fs.open(path, "wb")
        else:
            self.tmp = temp_path(Path(self.final))
            self.tmp.parent.mkdir(parents=True, exist_ok=True)
            self.handle = self.tmp.open("wb")

    def add(self, sha256: str, data: bytes) -> None:
        """Append a dump's bytes."""
        self.handle.write(data)
        self.entries.append((sha256, self.name, self.offset, len(data)))
        self.offset += len(data)

    def __enter__(self) -> PackWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        complete = kind is None and bool(self.entries)
        if self.fs is not None:
            if complete:
                self.handle.close()  # completes the upload
            else:
                abort_upload(self.handle)
            return
        try:
            self.handle.close()  # writes what is buffered: on a full disk, this fails too
            if complete:
                publish(self.tmp, Path(self.final))
        finally:
            self.tmp.unlink(missing_ok=True)  # gone once published; a failed one's space freed


def keep_large(home: Home, sha256: str, source: str | Path) -> ArchiveEntry:
    """Copy a dump too large to read into memory, streamed; its index entry."""
    final = join(home.archive, "large", sha256)
    src_fs, src_path = filesystem(str(source), home.s3)
    if is_remote(final):
        with src_fs.open(src_path, "rb") as src:
            write_whole(final, home.s3, lambda dst: shutil.copyfileobj(src, dst, 8 << 20))
        fs, path = filesystem(final, home.s3)
        return (sha256, f"large/{sha256}", 0, int(fs.size(path)))
    target = Path(final)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(target)
    with src_fs.open(src_path, "rb") as src, tmp.open("wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    publish(tmp, target)
    return (sha256, f"large/{sha256}", 0, target.stat().st_size)


def index_table(entries: list[ArchiveEntry]) -> pa.Table:
    """Index entries as an Arrow table."""
    columns = list(zip(*entries, strict=True)) if entries else [(), (), (), ()]
    arrays = [pa.array(c, f.type) for c, f in zip(columns, INDEX_SCHEMA, strict=True)]
    return pa.Table.from_arrays(arrays, schema=INDEX_SCHEMA)


def read_archived(home: Home, con: duckdb.DuckDBPyConnection, sha256: str) -> bytes | None:
    """The raw bytes kept for a hash, or None if the archive does not hold them."""
    rows = con.execute(
        'SELECT pack, "offset", length FROM archive_index WHERE dump_sha256 = ? LIMIT 1',
        [sha256],
    ).fetchall()
    if not rows:
        return None
    pack, offset, length = rows[0]
    with _open(home, pack) as handle:
        handle.seek(offset)
        data: bytes = handle.read(length)
        return data


def read_many_archived(
    home: Home, con: duckdb.DuckDBPyConnection, hashes: list[str]
) -> dict[str, bytes]:
    """The raw bytes kept for many hashes at once: one index query, each pack opened once."""
    con.register("wanted", pa.table({"dump_sha256": pa.array(sorted(set(hashes)), pa.string())}))
    try:
        rows = con.execute(
            # A dump kept twice (a night read again after a rollback) is read from its first pack.
            'SELECT dump_sha256, min(pack), arg_min("offset", pack), arg_min(length, pack) '
            "FROM archive_index SEMI JOIN wanted USING (dump_sha256) GROUP BY dump_sha256 "
            "ORDER BY 2, 3"
        ).fetchall()
    finally:
        con.unregister("wanted")
    found: dict[str, bytes] = {}
    for pack, entries in itertools.groupby(rows, key=lambda row: row[1]):
        with _open(home, pack) as handle:
            for sha, _pack, offset, length in entries:
                handle.seek(offset)
                found[sha] = handle.read(length)
    return found


def pack_path(home: Home, pack: str) -> str:
    """Where the archive keeps a pack (or a large dump) named in the index."""
    return join(home.archive, pack if pack.startswith("large/") else f"packs/{pack}")


def _open(home: Home, pack: str) -> IO[bytes]:
    location = pack_path(home, pack)
    if not is_remote(location):
        return open(location, "rb")
    fs, path = filesystem(location, home.s3)
    handle: IO[bytes] = fs.open(path, "rb", block_size=1 << 20)
    return handle


def remove_unindexed(home: Home, con: duckdb.DuckDBPyConnection) -> list[str]:
    """Delete packs and large dumps no committed night's index names (a killed or refused run's)."""
    named = {pack for (pack,) in con.execute("SELECT DISTINCT pack FROM archive_index").fetchall()}
    fs, root = filesystem(home.archive, home.s3)
    removed = []
    for folder in ("packs", "large"):
        try:
            # never a cached listing: the workers of a cluster write packs from other processes
            found = fs.ls(f"{root}/{folder}", detail=False, refresh=True)
        except FileNotFoundError:
            continue
        for path in found:
            base = path.rstrip("/").rpartition("/")[2]
            name = base if folder == "packs" else f"large/{base}"
            if base.startswith(".") or name not in named:
                fs.rm_file(path)
                removed.append(path)
    return removed
