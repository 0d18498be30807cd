"""The near-duplicate index as two DuckLake tables, committed and rolled back with the night.

- `minhash_bands` (key UBIGINT, article_id, run_id): one row per LSH band of each kept article;
  a night's lookup is one semi-join of its own keys against it, which DuckDB streams.
- `minhash_signatures` (article_id, signature BLOB, run_id): the article's MinHash signature
  (NUM_PERM little-endian uint32), read only for the candidates the bands found.
Only kept articles go in: a near duplicate always links to a row of `articles`. The parameters a
signature depends on are `FORMAT`; another set needs the index rebuilt (`wirehouse reprocess`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

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

FORMAT = f"v1-k{SHINGLE_WORDS}c{SHINGLE_CHARS}-p{NUM_PERM}-b{BANDS}x{ROWS}"
BANDS_TABLE = "minhash_bands"
SIGNATURES_TABLE = "minhash_signatures"


def index_rows(
    article_ids: Sequence[str] | pa.Array, sigs: U32, run_id: str
) -> dict[str, pa.Table]:
    """The index rows of a night's kept articles (bodies without shingles are left out)."""
    if len(article_ids) == 0:
        return {}
    present = has_shingles(sigs)
    given = article_ids if isinstance(article_ids, pa.Array) else pa.array(article_ids, pa.string())
    ids = given.filter(pa.array(present))
    if not len(ids):
        return {}
    sigs = np.ascontiguousarray(sigs[present], dtype="<u4")
    # Built without Python objects per row (a night has half a million band rows): ids by
    # dictionary, signatures as one buffer of fixed-size blobs. Keys stay in article order: a
    # night's lookup scans every band key anyway (they are random), so sorting bought nothing.
    id_array = ids
    owners = pa.array(np.repeat(np.arange(len(ids), dtype=np.int32), BANDS))
    bands = pa.table(
        {
            "key": pa.array(band_keys(sigs).reshape(-1), pa.uint64()),
            "article_id": pa.DictionaryArray.from_arrays(owners, id_array),
            "run_id": pa.repeat(pa.scalar(run_id, pa.string()), len(owners)),
        }
    )
    blob = pa.binary(NUM_PERM * 4)
    blobs = pa.FixedSizeBinaryArray.from_buffers(blob, len(ids), [None, pa.py_buffer(sigs)])
    signatures = pa.table(
        {
            "article_id": id_array,
            "signature": blobs,
            "run_id": pa.repeat(pa.scalar(run_id, pa.string()), len(ids)),
        }
    )
    return {BANDS_TABLE: bands, SIGNATURES_TABLE: signatures}


def history_matches(
    con: duckdb.DuckDBPyConnection, night_sigs: U32, threshold: float = THRESHOLD
) -> list[Match]:
    """Stored articles near each of the night's signatures: LSH candidates, verified.

    Two queries: in one, DuckDB cannot know how few the candidates are and builds the final
    join on every stored signature (measured: 600 MB and a second more at a million).
    """
    present = np.flatnonzero(has_shingles(night_sigs))
    if present.size == 0:
        return []
    keys = band_keys(night_sigs[present])  # (rows, BANDS)
    night = pa.table(
        {
            "key": pa.array(keys.reshape(-1), pa.uint64()),
            "night_row": pa.array(np.repeat(present, BANDS), pa.int64()),
        }
    )
    hits = _rows(
        con,
        "night_keys",
        night,
        f"SELECT DISTINCT n.night_row, b.article_id FROM {BANDS_TABLE} b "
        "JOIN night_keys n USING (key) WHERE b.key IN (SELECT key FROM night_keys) "
        "ORDER BY n.night_row, b.article_id",
    )
    if not hits:
        return []
    wanted = pa.table({"article_id": pa.array(sorted({h[1] for h in hits}), pa.string())})
    stored = dict(
        _rows(
            con,
            "candidate_ids",
            wanted,
            f"SELECT article_id, signature FROM {SIGNATURES_TABLE} "
            "WHERE article_id IN (SELECT article_id FROM candidate_ids)",
        )
    )
    found = [h for h in hits if h[1] in stored]
    if not found:
        return []
    rows = np.array([h[0] for h in found], dtype=np.int64)
    sigs = np.frombuffer(b"".join(stored[h[1]] for h in found), "<u4").reshape(-1, NUM_PERM)
    sims = pair_similarities(night_sigs[rows], sigs.astype(np.uint32))
    return [
        Match(int(n), str(h[1]), float(s))
        for n, h, s in zip(rows.tolist(), found, sims.tolist(), strict=True)
        if s >= threshold
    ]


def _rows(
    con: duckdb.DuckDBPyConnection, name: str, table: pa.Table, query: str
) -> list[tuple[Any, ...]]:
    """A query's rows with an Arrow table registered under a name for its length."""
    con.register(name, table)
    try:
        return con.execute(query).fetchall()
    finally:
        con.unregister(name)
