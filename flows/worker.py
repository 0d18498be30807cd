"""What a worker does with one batch of a night: every step that touches a dump's bytes or an
article's row.

The functions here run where the data is: on a Dask worker of a cluster, in a process of this
machine's pool, or, for a night too small to be worth a pool, in the flow's own process.
`work_batch` reads the batch's dumps from the inbox (folder or S3), keeps their raw bytes in
the archive, decodes, parses and signs them, validates the articles with Great Expectations,
and stages the rows that passed, their signatures and where the raw bytes went. What comes
back is small: key columns of the valid rows, their signatures, one row per dump with its fate
here, and GX's result for the night's Data Docs. Once the night's duplicates are decided,
`split_batch` stages the batch's rows of the lake (the kept articles, their MinHash index, the
archive index) in pieces by table and partition, and `write_file` gathers a partition's pieces
into one of the lake's data files, which the commit registers. The flow's process (the
coordinator: `flows/nightly.py`, its decisions in `flows/stages.py`, the commit in
`warehouse/loader.py`) never holds an article's row.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from expectations.runner import StoredResult, validate_articles
from transforms.minhash import U32
from transforms.night import UNDATED_MONTH, Dump, Lineage, Parsed, utc_of
from transforms.records import ARTICLES_SCHEMA, Rejection, table_of_tuples
from warehouse.archive import ArchiveEntry, PackWriter, index_table, keep_large
from warehouse.catalog import MONTH_COLUMN, install_extensions
from warehouse.faults import checkpoint
from warehouse.home import Home
from warehouse.inbox import read_bytes
from warehouse.nearindex import BANDS_TABLE, SIGNATURES_TABLE, index_rows
from warehouse.search import DOCUMENTS_TABLE, POSTINGS_TABLE, index_tables
from warehouse.storage import filesystem, join, write_whole

if TYPE_CHECKING:  # the parsers load when a batch is worked, not when a night starts
    from transforms.batch import ParsedDumps, StagedArticle

# Bytes of dumps read before they are parsed (about 400 typical dumps): a batch of large dumps
# never sits in memory whole.
SLICE_BYTES = 2 * 1024 * 1024
# What dedupe and the ledger need of each valid article; the rest stays in the staged files.
KEY_COLUMNS = [
    "dump_file",
    "article_id",
    "published_at",
    "page_code",
    "body_fingerprint",
    "title",
    "source",
]


@dataclass(frozen=True, slots=True)
class ToRead:
    """A dump to read this night: its name in the ledger and where its bytes are."""

    dump: Dump
    path: Path | str  # a path on the worker's machine, or the s3:// URL of an object


# The lake's tables whose rows the workers write as data files (`split_batch`, `write_file`).
WRITTEN_TABLES = (
    "articles",
    BANDS_TABLE,
    SIGNATURES_TABLE,
    "archive_index",
    POSTINGS_TABLE,
    DOCUMENTS_TABLE,
)


# Every dump of a batch as the worker saw it: the quarantine's columns where it gave no valid
# article (stage, reason, detail, layout, encoding), NULL there for the valid ones.
DUMPS_SCHEMA = pa.schema(
    [
        ("dump_file", pa.string()),
        ("dump_sha256", pa.string()),
        ("bytes", pa.int64()),
        ("captured_at", pa.timestamp("us", tz="UTC")),
        ("stage", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("layout", pa.string()),
        ("encoding", pa.string()),
    ]
)


@dataclass(frozen=True, slots=True)
class Batch:
    """One batch, worked: where its valid rows are staged, their keys, and every dump's fate."""

    index: int
    # Staged Parquet of the rows that passed validation (ARTICLES_SCHEMA), if any, beside their
    # signatures (`signatures_of`)
    passed: str | None
    keys: pa.Table  # KEY_COLUMNS of those rows, in the same order
    signatures: U32  # MinHash signatures of those rows' bodies, row-aligned with `keys`
    dumps: pa.Table  # DUMPS_SCHEMA: every dump of the batch, and why it gave no valid article
    archived: str | None  # staged Parquet of where its raw bytes were kept (INDEX_SCHEMA), if any
    statistics: dict[str, Any]  # expectation -> rows that failed it
    validation: StoredResult | None  # GX's result, stored by the flow for Data Docs
    worker: str = "this process"  # who worked it, for the task's log


def empty_keys() -> pa.Table:
    """KEY_COLUMNS with no rows."""
    return pa.table({c: pa.array([], ARTICLES_SCHEMA.field(c).type) for c in KEY_COLUMNS})


def _dumps(
    rejected: Sequence[Parsed],
    articles: Sequence[StagedArticle],
    failures: dict[str, list[str]],
) -> pa.Table:
    """The batch's dumps and their fates here (DUMPS_SCHEMA): the rejected ones with their
    reasons, the articles that failed validation with the expectations they failed, and the
    valid ones."""
    rows: list[tuple[Any, ...]] = []
    for item in rejected:
        assert isinstance(item.result, Rejection)
        why = item.result
        rows.append(
            (*_named(item.dump), item.stage, why.reason, why.detail, why.layout, item.encoding)
        )
    for article in articles:
        failed = failures.get(article.dump.dump_file)
        fate: tuple[str | None, ...] = (None,) * 5
        if failed is not None:
            fate = ("validate", "failed_validation", "; ".join(failed), None, article.encoding)
        rows.append((*_named(article.dump), *fate))
    return table_of_tuples(rows, DUMPS_SCHEMA)


def _named(dump: Dump) -> tuple[Any, ...]:
    return (dump.dump_file, dump.sha256, dump.bytes, utc_of(dump.captured_at))


def work_batch(
    index: int,
    batch: Sequence[ToRead],
    home: Home,
    max_bytes: int,
    lineage: Lineage,
    keep_raw: bool = True,
) -> Batch:
    """Read, archive, decode, parse, sign and validate one batch; stage the valid rows.

    `keep_raw=False` reads without archiving: a reprocess reads bytes the archive already
    holds. The staged file and the pack are written whole under names of the night and the
    batch, so a batch worked twice (a cluster that believed a worker lost) leaves one of each.
    """
    parsed, entries, too_large = _read_and_parse(index, batch, home, max_bytes, lineage, keep_raw)
    archived = None
    if entries:
        archived = join(home.staging, lineage.run_id, f"archived-{index:05d}.parquet")
        _stage(index_table(entries), archived, home)
    checkpoint("parse:batch", join(home.staging, lineage.run_id))
    rejected = [*too_large, *parsed.rejected]
    if not parsed.rows.num_rows:
        dumps = _dumps(rejected, [], {})
        return Batch(index, None, empty_keys(), parsed.signatures, dumps, archived, {}, None)
    outcome = validate_articles(
        parsed.rows, None, now=lineage.at, run_name=f"{lineage.run_id}-{index:05d}"
    )
    passed, signatures = None, parsed.signatures
    if outcome.passed.num_rows < parsed.rows.num_rows:
        kept = pc.is_in(parsed.rows["dump_file"], value_set=outcome.passed["dump_file"])
        signatures = signatures[kept.to_numpy(zero_copy_only=False)]
    if outcome.passed.num_rows:
        passed = join(home.staging, lineage.run_id, f"valid-{index:05d}.parquet")
        _stage(outcome.passed, passed, home)
        write_whole(signatures_of(passed), home.s3, lambda handle: np.save(handle, signatures))
    checkpoint("validate:batch")
    return Batch(
        index,
        passed,
        outcome.passed.select(KEY_COLUMNS),
        signatures,
        _dumps(rejected, parsed.articles, outcome.failures),
        archived,
        outcome.statistics,
        outcome.result,
    )


def work_named(
    index: int,
    batch: list[ToRead],
    home: Home,
    max_bytes: int,
    lineage: Lineage,
    keep_raw: bool,
) -> Batch:
    """On a worker: `work_batch`, naming where it ran."""
    worked = work_batch(index, batch, home, max_bytes, lineage, keep_raw)
    return replace(worked, worker=here())


def here() -> str:
    """Where this code runs: a Dask worker's name, a process of the local pool, or the flow's
    own process."""
    if "distributed" in sys.modules:
        from distributed import get_worker

        try:
            get_worker()
        except ValueError:  # not on a worker
            pass
        else:
            return worker_name()
    if multiprocessing.parent_process() is not None:
        return f"worker process {os.getpid()}"
    return "this process"


def worker_name() -> str:
    """This worker's name and address, as the scheduler's dashboard shows them."""
    from distributed import get_worker

    worker = get_worker()
    return f"{worker.name} ({worker.address})" if worker.name != worker.address else worker.address


def _read_and_parse(
    index: int,
    batch: Sequence[ToRead],
    home: Home,
    max_bytes: int,
    lineage: Lineage,
    keep_raw: bool,
) -> tuple[ParsedDumps, list[ArchiveEntry], list[Parsed]]:
    """The batch read and archived, parsed a slice of about `SLICE_BYTES` at a time."""
    from transforms.batch import ParsedDumps, parse_dumps

    too_large: list[Parsed] = []
    archived: list[ArchiveEntry] = []
    parts: list[ParsedDumps] = []
    pending: list[tuple[Dump, bytes]] = []
    held = 0
    with PackWriter(home, lineage.run_id, index) if keep_raw else nullcontext() as pack:
        for item in batch:
            # The size seen at discovery spares reading a huge file; the capped read covers
            # growth since.
            data = (
                None if item.dump.bytes > max_bytes else read_bytes(item.path, max_bytes, home.s3)
            )
            if data is None:
                archived.append(keep_large(home, item.dump.sha256, item.path))
                detail = f"The file is larger than the {max_bytes:,}-byte limit for one dump."
                too_large.append(Parsed(item.dump, Rejection("too_large", detail), "read"))
                continue
            if pack is not None:
                pack.add(item.dump.sha256, data)
            pending.append((item.dump, data))
            held += len(data)
            if held >= SLICE_BYTES:
                parts.append(parse_dumps(pending, lineage))
                pending, held = [], 0
        if pending:
            parts.append(parse_dumps(pending, lineage))
        archived.extend(pack.entries if pack is not None else [])
    return ParsedDumps.concat(parts), archived, too_large


def signatures_of(passed: str) -> str:
    """Where the signatures of a batch's staged valid rows are (NumPy, row-aligned)."""
    return passed.removesuffix(".parquet") + ".signatures.npy"


def _stage(table: pa.Table, location: str, home: Home) -> None:
    """Rows of a batch, kept until the night's write pass reads them once: not compressed
    (several times faster to write and read; the lake's own files are compressed).

    Written whole or not at all: a cluster may run a batch twice at once (a worker it believed
    lost), and the flow must see one whole file."""
    write_whole(
        location,
        home.s3,
        lambda handle: pq.write_table(table, handle, compression="none", use_dictionary=False),
    )


@dataclass(frozen=True, slots=True)
class Piece:
    """A batch's rows of one table's partition, staged for the night's files (`split_batch`)."""

    table: str
    partition: str  # the Hive-style folder under the table's (`published_month=2019-05`), or ""
    path: str  # staged Parquet, not compressed
    bytes: int  # its rows' size in memory: the coordinator groups pieces into files by it


def split_batch(
    index: int,
    passed: str | None,
    archived: str | None,
    kept: pa.Array,
    home: Home,
    lineage: Lineage,
) -> list[Piece]:
    """Once the night's decisions are made: the batch's rows of the lake, staged in pieces by
    table and partition, for `write_file` to gather into the lake's files.

    The kept articles (their dump files `kept`) are split by publication month, the partition
    DuckLake gives them; their MinHash index rows (`minhash_bands`, `minhash_signatures`) and
    where the batch's raw bytes were kept (`archive_index`) are one piece each. A batch split
    twice leaves one whole file of each piece."""
    run_id = lineage.run_id
    pieces: list[Piece] = []
    if passed is not None and len(kept):
        fs, path = filesystem(passed, home.s3)
        rows = pq.read_table(path, schema=ARTICLES_SCHEMA, filesystem=fs)
        chosen = pc.is_in(rows["dump_file"], value_set=kept)
        rows = rows.filter(chosen)
        fs, path = filesystem(signatures_of(passed), home.s3)
        with fs.open(path, "rb") as handle:
            signed = np.load(handle)[chosen.to_numpy(zero_copy_only=False)]
        pieces += stage_articles(rows, index, home, run_id)
        for table, index_part in index_rows(rows["article_id"], signed, run_id).items():
            pieces.append(stage_piece(table, "", index_part, index, home, run_id))
        for table, index_part in search_rows(rows).items():
            pieces.append(stage_piece(table, "", index_part, index, home, run_id))
    if archived is not None:
        fs, path = filesystem(archived, home.s3)
        entries = pq.read_table(path, filesystem=fs)
        runs = pa.repeat(pa.scalar(run_id, pa.string()), entries.num_rows)
        rows = entries.append_column("run_id", runs)
        pieces.append(stage_piece("archive_index", "", rows, index, home, run_id))
    checkpoint("write:batch", join(home.staging, run_id))
    return pieces


def search_rows(rows: pa.Table) -> dict[str, pa.Table]:
    """The search index's rows of kept articles: their postings and documents."""
    columns = rows.select(["article_id", "title", "body", "language", "run_id"])
    with duckdb.connect(config={"threads": 1}) as con:  # a worker process is one core's
        install_extensions(con)
        return index_tables(con, columns)


def stage_articles(rows: pa.Table, index: int, home: Home, run_id: str) -> list[Piece]:
    """Articles (ARTICLES_SCHEMA) staged in pieces by publication month, the partition DuckLake
    gives them, their `published_month` added."""
    month = pc.fill_null(pc.strftime(rows["published_at"], "%Y-%m"), UNDATED_MONTH)
    rows = rows.append_column(MONTH_COLUMN, month)
    return [
        stage_piece(
            "articles", _partition(value), rows.filter(pc.equal(month, value)), index, home, run_id
        )
        for value in sorted(pc.unique(month).to_pylist())
    ]


def stage_piece(
    table: str, partition: str, rows: pa.Table, index: int, home: Home, run_id: str
) -> Piece:
    """Rows of a table's partition staged as batch `index`'s piece of it."""
    name = f"{index:05d}.parquet"
    location = join(home.staging, run_id, "pieces", table, partition or "-", name)
    _stage(rows, location, home)
    return Piece(table, partition, location, rows.nbytes)


def write_file(table: str, pieces: Sequence[str], location: str, home: Home) -> str:
    """Staged pieces of one table's partition gathered into one data file of the lake at
    `location` (in the table's folder), compressed as DuckLake compresses its own (zstd);
    articles by publication time (files prune by day). Where it is.

    The commit registers the file; until then no reader sees it, and the next run deletes it if
    the night never commits. Written whole: a file written twice is one file."""
    parts = []
    for piece in pieces:
        fs, path = filesystem(piece, home.s3)
        parts.append(pq.read_table(path, filesystem=fs))
    rows = pa.concat_tables(parts)
    if table == "articles":
        rows = rows.sort_by([("published_at", "ascending"), ("dump_file", "ascending")])
    elif table == POSTINGS_TABLE and len(pieces) > 1:  # each piece is sorted by term already
        rows = rows.sort_by([("term", "ascending"), ("stemmer", "ascending")])
    write_whole(location, home.s3, lambda handle: pq.write_table(rows, handle, compression="zstd"))
    checkpoint("write:file", location)
    return location


def _partition(month: str) -> str:
    """The Hive-style folder DuckLake gives a publication month (its partition)."""
    return f"{MONTH_COLUMN}={month}"
