"""The stages of a night as plain functions over batches; flows/nightly.py wraps them as tasks.

Article rows never travel between stages as Python objects: each parse batch stages its rows as
a Parquet file, validation writes the passing ones beside it, and only small key columns come
back for deduplication. Memory stays flat in the size of the night.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import Executor
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from expectations.runner import validate_articles
from flows.workers import SLICE_BYTES, Slices
from transforms.batch import ParsedDumps, StagedArticle
from transforms.dedupe import Candidate, Link, dedupe
from transforms.minhash import U32
from transforms.neardup import dedupe_near
from transforms.night import Dump, Ledger, Lineage, Parsed, article_id_of
from transforms.records import ARTICLES_SCHEMA, Rejection
from warehouse.archive import ArchiveEntry, PackWriter, keep_large
from warehouse.bundles import BundleLimits
from warehouse.faults import checkpoint
from warehouse.home import Home
from warehouse.inbox import Arrivals, read_bytes
from warehouse.ledger import LedgerMatch, Seen, history_for, match_ledger
from warehouse.loader import NightRows
from warehouse.nearindex import history_matches
from warehouse.storage import filesystem, join, write_whole
from warehouse.unpack import container_hashes, unpack_arrivals

log = logging.getLogger(__name__)

_UTC_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
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
    path: Path | str  # a path on this machine, or the s3:// URL of an object


@dataclass(slots=True)
class Plan:
    """What discovery decided before anything was read."""

    to_read: list[ToRead] = field(default_factory=list)  # one per new content hash
    night_copies: dict[str, list[Dump]] = field(default_factory=dict)  # sha -> later copies
    known_copies: list[tuple[Dump, Seen]] = field(default_factory=list)  # bytes seen before
    symlinks: list[Dump] = field(default_factory=list)
    unpacked: list[Dump] = field(default_factory=list)  # bundles whose members are dumps
    refused: list[tuple[Dump, Rejection]] = field(default_factory=list)  # never read
    archived: list[ArchiveEntry] = field(default_factory=list)  # bundles' raw bytes
    unsettled: list[str] = field(default_factory=list)
    already_recorded: int = 0

    @property
    def new_dumps(self) -> int:
        """Distinct new dumps the night accounts for, copies of earlier bytes aside."""
        return len(self.to_read) + len(self.symlinks) + len(self.refused)


@dataclass(frozen=True, slots=True)
class ParsedBatch:
    """One parse batch: its staged articles, and the dumps that gave no article."""

    index: int
    staged: str | None  # Parquet of the batch's articles (ARTICLES_SCHEMA), if any
    articles: list[StagedArticle]  # in `staged`, in the same order
    rejected: list[Parsed]
    archived: list[ArchiveEntry]  # where the batch's raw bytes were kept
    signatures: U32  # MinHash signatures of the staged articles' bodies, row-aligned


@dataclass(frozen=True, slots=True)
class ValidBatch:
    """One validated batch: passing rows staged, failures named, keys for dedupe."""

    index: int
    passed: str | None
    keys: pa.Table  # KEY_COLUMNS of the passing rows
    failures: dict[str, list[str]]
    statistics: dict[str, Any]
    signatures: U32  # MinHash signatures of the passing rows' bodies, aligned with `keys`


@dataclass(frozen=True, slots=True)
class Deduped:
    """Dedupe's answer: kept dump files and links, and the kept ones' signatures for the index."""

    kept: set[str]
    links: list[Link]
    kept_ids: list[str]
    kept_signatures: U32


def discover_plan(
    arrivals: Arrivals,
    con: duckdb.DuckDBPyConnection,
    home: Home,
    lineage: Lineage,
    limits: BundleLimits,
) -> Plan:
    """Open the new bundles and .gz dumps, then plan the night against the ledger."""
    recorded = match_ledger(con, container_hashes(arrivals)).pairs
    unpacked = unpack_arrivals(arrivals, recorded, home, lineage.run_id, limits)
    opened = unpacked.arrivals
    hashes = [f.sha256 for f in (*opened.files, *opened.symlinks, *opened.bundles)]
    hashes += [f.sha256 for f, _ in opened.refused]
    plan = plan_night(opened, match_ledger(con, hashes))
    plan.archived = unpacked.archived
    return plan


def plan_night(arrivals: Arrivals, match: LedgerMatch) -> Plan:
    """Sort the night's files: new bytes to read, copies of bytes seen, files seen already."""
    plan = Plan(unsettled=arrivals.unsettled)
    for link in arrivals.symlinks:
        if (link.dump_file, link.sha256) in match.pairs:
            plan.already_recorded += 1
        else:
            plan.symlinks.append(Dump(link.dump_file, link.sha256, link.bytes))
    for bundle in arrivals.bundles:
        if (bundle.dump_file, bundle.sha256) not in match.pairs:
            plan.unpacked.append(Dump(bundle.dump_file, bundle.sha256, bundle.bytes))
    for found, rejection in arrivals.refused:
        if (found.dump_file, found.sha256) in match.pairs:
            plan.already_recorded += 1
        else:
            plan.refused.append((Dump(found.dump_file, found.sha256, found.bytes), rejection))
    first_by_sha: dict[str, ToRead] = {}
    copies: dict[str, list[Dump]] = defaultdict(list)
    for found in arrivals.files:  # path order, so the first path of some bytes is kept
        dump = Dump(found.dump_file, found.sha256, found.bytes, found.mtime)
        if (found.dump_file, found.sha256) in match.pairs:
            plan.already_recorded += 1
        elif found.sha256 in match.by_sha:
            plan.known_copies.append((dump, match.by_sha[found.sha256]))
        elif found.sha256 in first_by_sha:
            copies[found.sha256].append(dump)
        else:
            first_by_sha[found.sha256] = ToRead(dump, found.path)
    plan.to_read = list(first_by_sha.values())
    plan.night_copies = dict(copies)
    return plan


def slices_in(items: Sequence[ToRead]) -> int:
    """About how many slices parsing these dumps sends to the workers."""
    return -(-sum(item.dump.bytes for item in items) // SLICE_BYTES)


def parse_batch(
    index: int,
    batch: Sequence[ToRead],
    home: Home,
    max_bytes: int,
    lineage: Lineage,
    workers: Executor | None = None,
    keep_raw: bool = True,
) -> ParsedBatch:
    """Read and archive a batch, parse it (in `workers` if given); stage its articles as Parquet.

    `keep_raw=False` reads without archiving: a reprocess reads bytes the archive already holds.

    Reading and archiving stay in this process, with the crash checkpoints; decoding, parsing
    and signatures, the CPU of a night, go to the workers in slices of about `SLICE_BYTES`,
    each sent as soon as it is read, so the workers parse while this thread reads on (see
    `flows.workers.Slices`): a batch of large dumps never sits in memory whole.
    """
    too_large: list[Parsed] = []
    archived: list[ArchiveEntry] = []
    slices = Slices(lineage, workers)
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
                slices.send(pending, held)
                pending, held = [], 0
        archived.extend(pack.entries if pack is not None else [])
    if pending:
        slices.send(pending, held)
    parsed = ParsedDumps.concat(slices.results())
    staged = None
    if parsed.rows.num_rows:
        staged = join(home.staging, lineage.run_id, f"parsed-{index:05d}.parquet")
        _stage(parsed.rows, staged, home)
    checkpoint("parse:batch")
    rejected = [*too_large, *parsed.rejected]
    return ParsedBatch(index, staged, parsed.articles, rejected, archived, parsed.signatures)


def validate_batch(batch: ParsedBatch, home: Home, lineage: Lineage) -> ValidBatch:
    """Great Expectations over one staged batch; passing rows staged beside it."""
    empty = pa.table({c: pa.array([], ARTICLES_SCHEMA.field(c).type) for c in KEY_COLUMNS})
    if batch.staged is None:
        return ValidBatch(batch.index, None, empty, {}, {}, batch.signatures)
    fs, path = filesystem(batch.staged, home.s3)
    table = pq.read_table(path, schema=ARTICLES_SCHEMA, filesystem=fs)
    outcome = validate_articles(
        table,
        home.gx,
        now=lineage.at,
        build_docs=False,
        run_name=f"{lineage.run_id}-{batch.index:05d}",
    )
    passed = batch.staged  # every row passed: the staged file is the valid one
    signatures = batch.signatures  # shared with the parsed batch while every row passes
    if outcome.passed.num_rows < table.num_rows:
        passed = join(home.staging, lineage.run_id, f"valid-{batch.index:05d}.parquet")
        _stage(outcome.passed, passed, home)
        fs.rm_file(path)
        kept = pc.is_in(table.column("dump_file"), value_set=outcome.passed.column("dump_file"))
        signatures = signatures[kept.to_numpy(zero_copy_only=False)]
    checkpoint("validate:batch")
    return ValidBatch(
        batch.index,
        passed,
        outcome.passed.select(KEY_COLUMNS),
        outcome.failures,
        outcome.statistics,
        signatures,
    )


def _stage(table: pa.Table, location: str, home: Home) -> None:
    """A batch's rows kept between stages: read back once in this night, so not compressed
    (several times faster to write and read; the lake's own files are compressed).

    Written whole or not at all: a cluster may run a batch twice at once (a worker it believed
    lost), and the flow must see one whole file."""
    write_whole(
        location,
        home.s3,
        lambda handle: pq.write_table(table, handle, compression="none", use_dictionary=False),
    )


def dedupe_against_history(
    valid: Sequence[ValidBatch],
    con: duckdb.DuckDBPyConnection,
    near_threshold: float,
) -> Deduped:
    """Which valid articles are kept and which are copies (same page, exact, near), of what."""
    keys = pa.concat_tables([batch.keys for batch in valid])
    sigs = np.concatenate([batch.signatures for batch in valid])
    columns = ["dump_file", "article_id", "published_at", "page_code", "body_fingerprint"]
    rows = zip(*(_python_values(keys[c]) for c in columns), strict=True)
    candidates = [Candidate(*row) for row in rows]
    codes = sorted({c.page_code for c in candidates if c.page_code})
    history = history_for(con, codes, sorted({c.fingerprint for c in candidates}))
    kept, links = dedupe(candidates, history)
    # Near copies: kept articles against the MinHash index of the history, and each other.
    row_of = {c.dump_file: i for i, c in enumerate(candidates)}
    kept_sigs = sigs[[row_of[c.dump_file] for c in kept]] if kept else sigs[:0]
    matches = history_matches(con, kept_sigs, near_threshold)
    kept, links = dedupe_near(kept, links, kept_sigs, matches, near_threshold)
    final_sigs = sigs[[row_of[c.dump_file] for c in kept]] if kept else sigs[:0]
    return Deduped({c.dump_file for c in kept}, links, [c.article_id for c in kept], final_sigs)


def _python_values(column: pa.ChunkedArray) -> list[Any]:
    """`column.to_pylist()`; UTC timestamps built from their integers, six times faster than
    pyarrow's own conversion (about 0.15 s a night of 17,000 articles)."""
    if column.type != pa.timestamp("us", tz="UTC"):
        values: list[Any] = column.to_pylist()
        return values
    micros = column.cast(pa.int64()).to_pylist()
    return [None if m is None else _UTC_EPOCH + timedelta(microseconds=m) for m in micros]


def account(
    plan: Plan,
    parsed: Sequence[ParsedBatch],
    valid: Sequence[ValidBatch],
    kept: set[str],
    links: Sequence[Link],
    lineage: Lineage,
) -> Ledger:
    """Every dump of the night in exactly one place: articles, duplicates or quarantine."""
    ledger = Ledger()
    link_of = {link.dump_file: link for link in links}
    failures = {k: v for batch in valid for k, v in batch.failures.items()}
    keys = _keys_of(valid, pa.array(list(link_of), pa.string()))
    fate: dict[str, Seen] = {}  # sha -> how the night's first copy ended
    for item in (p for b in parsed for p in b.rejected):
        assert isinstance(item.result, Rejection)
        ledger.quarantined(item.dump, item.stage, item.result, lineage, item.encoding)
        fate[item.dump.sha256] = Seen(item.dump.dump_file, "quarantined", None)
    for staged in (a for b in parsed for a in b.articles):
        fate[staged.dump.sha256] = _article_fate(
            ledger, staged, failures, link_of, keys, kept, lineage
        )
    for sha, copies in plan.night_copies.items():
        for copy in copies:
            _copy_of(ledger, copy, fate[sha], lineage)
    for copy, seen in plan.known_copies:
        _copy_of(ledger, copy, seen, lineage)
    undated = _undated(valid)
    ledger.undated = sum(1 for name in ledger.articles if name in undated)
    symlink = Rejection("symlink", "A symbolic link in the inbox; links are never followed.")
    for link_dump in plan.symlinks:
        ledger.quarantined(link_dump, "read", symlink, lineage)
    for bundle in plan.unpacked:
        ledger.unpacked(bundle, lineage)
    for refused, rejection in plan.refused:
        ledger.quarantined(refused, "read", rejection, lineage)
    return ledger


def night_rows(
    run_row: dict[str, Any],
    bundles: Sequence[ArchiveEntry],
    parsed: Sequence[ParsedBatch],
    valid: Sequence[ValidBatch],
    deduped: Deduped,
    ledger: Ledger,
) -> NightRows:
    """Everything a succeeded night commits: its staged articles, the kept ones, the ledger's
    rows, where its raw bytes are, and the kept articles' signatures."""
    night = NightRows(run_row)
    night.staged = [batch.passed for batch in valid if batch.passed is not None]
    night.kept = deduped.kept
    night.tables = {
        "duplicates": ledger.duplicates,
        "quarantine": ledger.quarantine,
        "files": ledger.files,
    }
    night.archived = [*bundles, *(e for batch in parsed for e in batch.archived)]
    night.kept_ids, night.kept_signatures = deduped.kept_ids, deduped.kept_signatures
    return night


def summary_counts(plan: Plan, ledger: Ledger) -> dict[str, Any]:
    """The night's counts for the runs row, logs and the report."""
    counts = ledger.counts()
    counts["already_recorded"] = plan.already_recorded
    counts["unsettled"] = len(plan.unsettled)
    return counts


def _undated(valid: Sequence[ValidBatch]) -> set[str]:
    """Dump files of valid articles that state no publication time."""
    return {
        name
        for batch in valid
        for name in batch.keys.filter(pc.is_null(batch.keys["published_at"]))[
            "dump_file"
        ].to_pylist()
    }


def _keys_of(valid: Sequence[ValidBatch], names: pa.Array) -> dict[str, dict[str, Any]]:
    """The key columns of these dump files' rows, by dump file (rows to Python objects cost:
    only the copies' keys are recorded, in their `duplicates` rows)."""
    out: dict[str, dict[str, Any]] = {}
    for batch in valid:
        rows = batch.keys.filter(pc.is_in(batch.keys["dump_file"], value_set=names))
        out.update((row["dump_file"], row) for row in rows.to_pylist())
    return out


def _article_fate(
    ledger: Ledger,
    staged: StagedArticle,
    failures: dict[str, list[str]],
    link_of: dict[str, Link],
    keys: dict[str, dict[str, Any]],
    kept: set[str],
    lineage: Lineage,
) -> Seen:
    """Record a parsed article as failing, a copy, or kept; return how it ended."""
    dump = staged.dump
    name = dump.dump_file
    if name in failures:
        rejection = Rejection("failed_validation", "; ".join(failures[name]))
        ledger.quarantined(dump, "validate", rejection, lineage, staged.encoding)
        return Seen(name, "quarantined", None)
    if name in link_of:
        link = link_of[name]
        ledger.duplicate(dump, link.duplicate_of, link.kind, link.similarity, keys[name], lineage)
        return Seen(name, "duplicate", link.duplicate_of)
    assert name in kept, name
    ledger.loaded(dump, article_id_of(dump.sha256), lineage)
    return Seen(name, "loaded", article_id_of(dump.sha256))


def _copy_of(ledger: Ledger, copy: Dump, seen: Seen, lineage: Lineage) -> None:
    """A file whose bytes were seen before follows the fate of the first copy."""
    if seen.status in {"loaded", "duplicate"} and seen.article_id is not None:
        ledger.duplicate(copy, seen.article_id, "same_file", 1.0, None, lineage)
        return
    rejection = Rejection(
        "same_bytes_as_quarantined",
        f"The same bytes as {seen.dump_file}, which is in quarantine.",
    )
    ledger.quarantined(copy, "read", rejection, lineage)
