"""The near-duplicate index beside the lake: LSH band keys and MinHash signatures, one run a file.

Layout under the index folder (one per parameter set, see `index_dir`):
- `postings/<run_id>.parquet`: (key UBIGINT, row UINTEGER), one row per band of each article,
  sorted by key; a night's lookup is one DuckDB hash join of its own keys against these files,
  which streams them (only the two columns, nothing held but the night's keys);
- `signatures/<run_id>.npy`: the run's signatures, (articles, NUM_PERM) uint32, row-aligned;
  read memory-mapped, so verifying a candidate reads its 512 bytes and not the file;
- `ids/<run_id>.parquet`: the run's article_id per row.
A run's files are named by its run_id, written atomically, and count only once the run has
committed (`committed` arguments): like the lake, a run is rolled back by deleting its files.
Only kept articles go in: a near duplicate always links to a row of `articles`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from transforms.minhash import (
    BANDS,
    NUM_PERM,
    ROWS,
    SHINGLE_CHARS,
    SHINGLE_WORDS,
    THRESHOLD,
    U32,
    band_keys,
    has_shingles,
    pair_similarities,
)
from transforms.neardup import Match
from warehouse.lake import publish, temp_path, write_parquet_atomically

# The parameters a stored signature depends on: another set starts another index folder.
FORMAT = f"v1-k{SHINGLE_WORDS}c{SHINGLE_CHARS}-p{NUM_PERM}-b{BANDS}x{ROWS}"
_PARTS = ("postings", "signatures", "ids")
_SUFFIX = {"postings": ".parquet", "signatures": ".npy", "ids": ".parquet"}
_POSTINGS_SCHEMA = pa.schema([("key", pa.uint64()), ("row", pa.uint32())])


def index_dir(lake: Path) -> Path:
    """The index folder of the current parameters, beside the lake's tables."""
    return lake / "_minhash" / FORMAT


def append(folder: Path, run_id: str, article_ids: Sequence[str], sigs: U32) -> int:
    """Add one run's kept articles to the index (bodies without shingles are left out)."""
    present = has_shingles(sigs)
    ids = [a for a, p in zip(article_ids, present.tolist(), strict=True) if p]
    sigs = np.ascontiguousarray(sigs[present], dtype=np.uint32)
    if not ids:
        return 0
    keys = band_keys(sigs).reshape(-1)
    rows = np.repeat(np.arange(len(ids), dtype=np.uint32), BANDS)
    order = np.argsort(keys, kind="stable")
    # Postings go last: a run's postings never point at rows that are not on disk yet.
    _save_npy(_path(folder, "signatures", run_id), sigs)
    write_parquet_atomically(pa.table({"article_id": ids}), _path(folder, "ids", run_id))
    postings = pa.table({"key": keys[order], "row": rows[order]}, schema=_POSTINGS_SCHEMA)
    _save_parquet(postings, _path(folder, "postings", run_id))
    return len(ids)


def candidates(
    folder: Path, keys: np.ndarray, committed: Collection[str]
) -> list[tuple[int, str, int]]:
    """(night row, run_id, row in that run) sharing a band key, each pair once, sorted."""
    files = [str(p) for p in _files(folder, "postings", committed)]
    if not files or keys.size == 0:
        return []
    night = pa.table({"key": keys.reshape(-1)})
    with duckdb.connect() as con:
        con.register("night", night)
        # A semi-join (IN) lets DuckDB build a set of the night's keys and stream the postings
        # past it: about a third cheaper than a join that carries the night's row numbers.
        found = con.execute(
            "SELECT p.filename, p.key, p.row FROM read_parquet($files, filename = true) p "
            "WHERE p.key IN (SELECT key FROM night)",
            {"files": files},
        ).fetchall()
    if not found:
        return []
    # The few matched keys back to the night's rows, in numpy rather than in the join.
    flat = keys.reshape(-1)
    hit = np.flatnonzero(np.isin(flat, np.array([f[1] for f in found], dtype=np.uint64)))
    by_key: defaultdict[int, list[int]] = defaultdict(list)
    for position, key in zip(hit.tolist(), flat[hit].tolist(), strict=True):
        by_key[key].append(position // keys.shape[1])
    run_of = {name: Path(name).stem for name in {f[0] for f in found}}
    pairs = {(i, run_of[name], int(row)) for name, key, row in found for i in by_key[int(key)]}
    return sorted(pairs)


def signatures_of(folder: Path, refs: Sequence[tuple[str, int]]) -> tuple[list[str], U32]:
    """Article ids and signatures of (run_id, row) references, in the order given."""
    sigs = np.empty((len(refs), NUM_PERM), dtype=np.uint32)
    ids: list[str] = [""] * len(refs)
    by_run: defaultdict[str, list[int]] = defaultdict(list)
    for position, (run_id, _row) in enumerate(refs):
        by_run[run_id].append(position)
    for run_id, positions in by_run.items():
        rows = np.array([refs[p][1] for p in positions], dtype=np.int64)
        stored = np.load(_path(folder, "signatures", run_id), mmap_mode="r")
        sigs[positions] = stored[rows]
        del stored  # unmaps: pages read for these rows leave the resident set
        column = _read_ids(_path(folder, "ids", run_id))
        for p, article_id in zip(positions, column.take(pa.array(rows)).to_pylist(), strict=True):
            ids[p] = str(article_id)
    return ids, sigs


def history_matches(
    folder: Path, night_sigs: U32, committed: Collection[str], threshold: float = THRESHOLD
) -> list[Match]:
    """Stored articles near each of the night's signatures: LSH candidates, verified."""
    present = np.flatnonzero(has_shingles(night_sigs))
    if present.size == 0:
        return []
    found = candidates(folder, band_keys(night_sigs[present]), committed)
    if not found:
        return []
    ids, stored = signatures_of(folder, [(run, row) for _i, run, row in found])
    night_rows = present[np.array([i for i, _run, _row in found], dtype=np.int64)]
    sims = pair_similarities(night_sigs[night_rows], stored)
    return [
        Match(int(n), article_id, float(s))
        for n, article_id, s in zip(night_rows.tolist(), ids, sims.tolist(), strict=True)
        if s >= threshold
    ]


def run_ids(folder: Path) -> set[str]:
    """Runs with at least one file in the index, committed or not."""
    return {p.stem for part in _PARTS for p in _glob(folder, part)}


def remove_runs(folder: Path, keep: Collection[str]) -> list[Path]:
    """Delete the files of runs not in keep (uncommitted or rolled back) and temp leftovers."""
    removed: list[Path] = []
    for part in _PARTS:
        directory = folder / part
        if not directory.is_dir():
            continue
        for path in directory.iterdir():
            if path.is_file() and (path.name.startswith(".") or path.stem not in keep):
                path.unlink()
                removed.append(path)
    return removed


def _path(folder: Path, part: str, run_id: str) -> Path:
    return folder / part / f"{run_id}{_SUFFIX[part]}"


def _glob(folder: Path, part: str) -> list[Path]:
    directory = folder / part
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob(f"*{_SUFFIX[part]}") if not p.name.startswith("."))


def _files(folder: Path, part: str, committed: Collection[str]) -> list[Path]:
    return [p for p in _glob(folder, part) if p.stem in committed]


def _save_npy(path: Path, array: np.ndarray) -> None:
    """np.save under a temporary name, then published atomically like the lake's Parquet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    with open(tmp, "wb") as handle:
        np.save(handle, array)
    publish(tmp, path)


def _save_parquet(table: pa.Table, path: Path) -> None:
    """The lake's atomic write, uncompressed: a night reads every posting, keys are random."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    pq.write_table(table, tmp, compression="none")
    publish(tmp, path)


def _read_ids(path: Path) -> pa.ChunkedArray:
    return pq.read_table(path, columns=["article_id"]).column("article_id")
