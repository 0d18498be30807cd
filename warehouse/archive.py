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

import duckdb
import pyarrow as pa

from warehouse.files import publish, temp_path
from warehouse.home import Home

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
    """Appends one batch's new dumps to one pack file; `entries` says where each one went."""

    def __init__(self, home: Home, run_id: str, batch: int) -> None:
        self.final = home.archive / "packs" / f"{run_id}-{batch:05d}.pack"
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = temp_path(self.final)
        self.handle = self.tmp.open("wb")
        self.entries: list[ArchiveEntry] = []

    def add(self, sha256: str, data: bytes) -> None:
        """Append a dump's bytes."""
        offset = self.handle.tell()
        self.handle.write(data)
        self.entries.append((sha256, self.final.name, offset, len(data)))

    def __enter__(self) -> PackWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.handle.close()
        if kind is None and self.entries:
            publish(self.tmp, self.final)
        else:
            self.tmp.unlink(missing_ok=True)


def keep_large(home: Home, sha256: str, source: Path) -> ArchiveEntry:
    """Copy a dump too large to read into memory, streamed; its index entry."""
    final = home.archive / "large" / sha256
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(final)
    with source.open("rb") as src, tmp.open("wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    publish(tmp, final)
    return (sha256, f"large/{sha256}", 0, final.stat().st_size)


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
    with pack_path(home, pack).open("rb") as handle:
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
        with pack_path(home, pack).open("rb") as handle:
            for sha, _pack, offset, length in entries:
                handle.seek(offset)
                found[sha] = handle.read(length)
    return found


def pack_path(home: Home, pack: str) -> Path:
    """Where the archive keeps a pack (or a large dump) named in the index."""
    return home.archive / pack if pack.startswith("large/") else home.archive / "packs" / pack


def remove_unindexed(home: Home, con: duckdb.DuckDBPyConnection) -> list[Path]:
    """Delete packs and large dumps no committed night's index names (a killed or refused run's)."""
    named = {pack for (pack,) in con.execute("SELECT DISTINCT pack FROM archive_index").fetchall()}
    removed = []
    found = [*(home.archive / "packs").glob("*"), *(home.archive / "large").glob("*")]
    for path in found:
        name = path.name if path.parent.name == "packs" else f"large/{path.name}"
        if path.name.startswith(".") or name not in named:
            path.unlink()
            removed.append(path)
    return removed
