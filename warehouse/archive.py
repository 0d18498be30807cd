"""Raw dump bytes kept forever, content-addressed: append-only packs and an index by SHA-256.

One small file per dump costs about half a millisecond to create on a typical disk, more than
parsing the dump; a pack per parse batch costs microseconds per dump. The index (sha256, pack,
offset, length) is one Parquet file per run, written with the run's other files before its
commit marker, so the archive holds exactly the committed runs' bytes. Dumps too large to read
are copied whole under `large/`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import TracebackType

import pyarrow as pa
import pyarrow.parquet as pq

from warehouse.home import Home
from warehouse.lake import publish, temp_path, write_parquet_atomically

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


def write_index(home: Home, run_id: str, entries: list[ArchiveEntry]) -> None:
    """Record where a run's raw bytes are; part of the run, written before its marker."""
    if entries:
        write_parquet_atomically(index_table(entries), index_path(home, run_id))


def index_path(home: Home, run_id: str) -> Path:
    """The archive index file of one run."""
    return home.archive / "index" / f"{run_id}.parquet"


def read_archived(home: Home, sha256: str) -> bytes | None:
    """The raw bytes kept for a hash, or None if the archive does not hold them."""
    folder = home.archive / "index"
    if not folder.is_dir() or not any(folder.glob("*.parquet")):
        return None
    index = pq.read_table(folder, filters=[("dump_sha256", "=", sha256)], schema=INDEX_SCHEMA)
    if index.num_rows == 0:
        return None
    pack, offset, length = (index.column(c)[0].as_py() for c in ("pack", "offset", "length"))
    assert isinstance(pack, str) and isinstance(offset, int) and isinstance(length, int)
    path = home.archive / pack if pack.startswith("large/") else home.archive / "packs" / pack
    with path.open("rb") as handle:
        handle.seek(offset)
        return handle.read(length)


def run_of_pack(name: str) -> str:
    """The run that wrote a pack file (its name is `<run_id>-<batch>.pack`)."""
    return name.rsplit("-", 1)[0]


def remove_pack_files(home: Home, keep_runs: set[str]) -> list[Path]:
    """Delete packs and indexes of runs not in `keep_runs` (a killed or refused run's)."""
    removed = []
    for path in [*(home.archive / "packs").glob("*"), *(home.archive / "index").glob("*")]:
        run = run_of_pack(path.name) if path.parent.name == "packs" else path.stem
        if path.name.startswith(".") or run not in keep_runs:
            path.unlink()
            removed.append(path)
    return removed
