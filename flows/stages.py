"""The coordinator's decisions over a night, as plain functions; flows/nightly.py wraps them
as tasks.

The rows never come here: each batch is worked on a worker (`flows.worker.work_batch`), which
stages the valid rows as Parquet and hands back key columns, fates and signatures only. Here
the night is planned against the ledger, deduplicated against history on those keys, and
accounted for, in SQL over them, in the tables that record each dump's fate.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from flows.worker import DUMPS_SCHEMA, Batch, Piece, ToRead, empty_keys
from transforms.dedupe import Candidate, History, Link, dedupe
from transforms.minhash import U32, signatures
from transforms.neardup import Match, dedupe_near, near_involved
from transforms.night import Dump, Ledger, Lineage, utc_of
from transforms.records import SCHEMAS, Rejection, table_of_tuples
from warehouse.archive import ArchiveEntry
from warehouse.home import Home
from warehouse.inbox import Arrivals
from warehouse.inbox.bundles import BundleLimits
from warehouse.inbox.unpack import container_hashes, unpack_arrivals
from warehouse.ledger import LedgerMatch, Seen, history_for, match_ledger
from warehouse.loader import NightRows
from warehouse.nearindex import history_matches
from warehouse.storage import join

log = logging.getLogger(__name__)

_UTC_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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


# A copy that is not kept: what it copies and how it was recognised.
LINKS_SCHEMA = pa.schema(
    [
        ("dump_file", pa.string()),
        ("duplicate_of", pa.string()),
        ("kind", pa.string()),
        ("similarity", pa.float64()),
    ]
)


@dataclass(frozen=True, slots=True)
class Deduped:
    """Dedupe's answer over the night's valid articles: which are kept, and the links of the
    others."""

    keys: pa.Table  # KEY_COLUMNS of every valid article of the night
    kept: npt.NDArray[np.bool_]  # row-aligned with `keys`
    links: pa.Table  # LINKS_SCHEMA
    signatures: U32  # row-aligned with `keys`

    @staticmethod
    def nothing() -> Deduped:
        """The answer for a night with no valid article."""
        no_rows = np.zeros(0, dtype=bool)
        return Deduped(empty_keys(), no_rows, LINKS_SCHEMA.empty_table(), signatures([]))

    @property
    def kept_files(self) -> pa.Array:
        """Dump files of the kept articles."""
        return self.keys["dump_file"].combine_chunks().filter(pa.array(self.kept))

    @property
    def kept_ids(self) -> pa.Array:
        """Article ids of the kept articles."""
        return self.keys["article_id"].combine_chunks().filter(pa.array(self.kept))

    @property
    def kept_signatures(self) -> U32:
        """Signatures of the kept articles, in their order."""
        return self.signatures[self.kept]


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


def dedupe_against_history(
    valid: Sequence[Batch],
    con: duckdb.DuckDBPyConnection,
    near_threshold: float,
) -> Deduped:
    """Which valid articles are kept and which are copies (same page, exact, near), of what.

    The rules (transforms.dedupe, transforms.neardup) visit articles one by one in the night's
    order, but an article shares nothing with any other, tonight or in history, unless its
    page code or body fingerprint repeats, or its signature is near another: found here for
    the whole night at once on key columns. Only those few go through the rules; the others
    are kept as they stand, which is what the rules would decide for them.
    """
    keys = pa.concat_tables([batch.keys for batch in valid]).combine_chunks()
    sigs = np.concatenate([batch.signatures for batch in valid])
    codes, prints = keys["page_code"], keys["body_fingerprint"]
    history = history_for(con, codes, prints)
    contested = np.flatnonzero(_contested(codes, prints, history))
    kept = np.ones(keys.num_rows, dtype=bool)
    kept_contested, links = dedupe(_candidates(keys, contested), history)
    kept[contested] = False
    kept[contested[_positions(keys, contested, kept_contested)]] = True
    # Near copies: kept articles against the MinHash index of the history, and each other.
    kept_rows = np.flatnonzero(kept)
    kept_sigs = sigs[kept_rows]
    matches = history_matches(con, kept_sigs, near_threshold)
    near = near_involved(kept_sigs, matches, near_threshold)
    if near.size:
        at = {int(row): position for position, row in enumerate(near.tolist())}
        nearby = [Match(at[m.night], m.article_id, m.similarity) for m in matches if m.night in at]
        candidates = _candidates(keys, kept_rows[near])
        still, links = dedupe_near(candidates, links, kept_sigs[near], nearby, near_threshold)
        kept[kept_rows[near]] = False
        kept[kept_rows[near][_positions(keys, kept_rows[near], still)]] = True
    return Deduped(keys, kept, _links_table(links), sigs)


def _contested(codes: pa.Array, prints: pa.Array, history: History) -> npt.NDArray[np.bool_]:
    """Rows whose page code or fingerprint is held by another row tonight, or in history."""
    coded = pc.fill_null(pc.not_equal(codes, ""), False)
    code_taken = pc.or_(
        pc.is_in(codes, value_set=pa.array(list(history.by_page_code), pa.string())),
        _repeated(codes),
    )
    print_taken = pc.or_(
        pc.is_in(prints, value_set=pa.array(list(history.by_fingerprint), pa.string())),
        _repeated(prints),
    )
    either = pc.or_(pc.and_(coded, pc.fill_null(code_taken, False)), print_taken)
    return np.asarray(pc.fill_null(either, False))


def _repeated(values: pa.Array) -> pa.Array:
    """Whether each value occurs more than once in `values` (NULL never counts)."""
    counts = pc.value_counts(values)
    twice = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    return pc.is_in(values, value_set=twice)


def _candidates(keys: pa.Table, rows: npt.NDArray[np.intp]) -> list[Candidate]:
    """The rules' view of some rows (Python objects: for the few rows that need them)."""
    some = keys.take(pa.array(rows, pa.int64()))
    columns = ["dump_file", "article_id", "published_at", "page_code", "body_fingerprint"]
    return [
        Candidate(*row) for row in zip(*(_python_values(some[c]) for c in columns), strict=True)
    ]


def _positions(
    keys: pa.Table, rows: npt.NDArray[np.intp], chosen: Sequence[Candidate]
) -> npt.NDArray[np.intp]:
    """Where the chosen candidates are among `rows` (by dump file, unique in a night)."""
    names = keys["dump_file"].take(pa.array(rows, pa.int64()))
    found = pc.is_in(names, value_set=pa.array([c.dump_file for c in chosen], pa.string()))
    return np.flatnonzero(np.asarray(found))


def _links_table(links: Sequence[Link]) -> pa.Table:
    rows = [(k.dump_file, k.duplicate_of, k.kind, k.similarity) for k in links]
    return table_of_tuples(rows, LINKS_SCHEMA)


def _python_values(column: pa.ChunkedArray) -> list[Any]:
    """`column.to_pylist()`; UTC timestamps built from their integers, six times faster than
    pyarrow's own conversion."""
    if column.type != pa.timestamp("us", tz="UTC"):
        values: list[Any] = column.to_pylist()
        return values
    micros = column.cast(pa.int64()).to_pylist()
    return [None if m is None else _UTC_EPOCH + timedelta(microseconds=m) for m in micros]


def account(plan: Plan, batches: Sequence[Batch], deduped: Deduped, lineage: Lineage) -> Ledger:
    """Every dump of the night in exactly one place: articles, duplicates or quarantine.

    Decided for the whole night at once, in SQL over key columns: the workers' fates of the
    dumps they read, dedupe's links, and the plan's copies, links and bundles."""
    with closing(duckdb.connect()) as con:
        for name, table in {
            "read_dumps": _concat([b.dumps for b in batches], DUMPS_SCHEMA),
            "valid_keys": deduped.keys,
            "links": deduped.links,
            "copies": _copies(plan),
            "refused": _refused(plan),
        }.items():
            con.register(name, table)
        at = {"run_id": lineage.run_id, "at": lineage.at}
        con.execute(_FATES_SQL)
        tables = {
            name: con.execute(query, at).to_arrow_table().cast(SCHEMAS[name])
            for name, query in _LEDGER_SQL.items()
        }
        (undated,) = con.execute(_UNDATED_SQL).fetchone() or (0,)
    return Ledger(tables["files"], tables["quarantine"], tables["duplicates"], int(undated))


# Each dump a worker read, and how it ended; then each copy of earlier bytes, which follows the
# fate of its first copy (tonight's, or the ledger's): a copy of an article is a same_file
# duplicate of it, a copy of a quarantined dump is quarantined too.
_FATES_SQL = """
CREATE TEMP TABLE fates AS
SELECT d.*,
       CASE WHEN d.reason IS NOT NULL THEN 'quarantined'
            WHEN l.dump_file IS NOT NULL THEN 'duplicate' ELSE 'loaded' END AS status,
       CASE WHEN d.reason IS NOT NULL THEN NULL
            WHEN l.dump_file IS NOT NULL THEN l.duplicate_of
            ELSE left(d.dump_sha256, 24) END AS article_id,
       l.kind, l.similarity
FROM read_dumps d LEFT JOIN links l USING (dump_file);

CREATE TEMP TABLE copy_fates AS
SELECT c.dump_file, c.dump_sha256, c.bytes, c.captured_at,
       coalesce(c.seen_file, f.dump_file) AS first_file,
       coalesce(c.seen_status, f.status) AS first_status,
       CASE WHEN c.seen_file IS NULL THEN f.article_id ELSE c.seen_article_id END AS first_article
FROM copies c LEFT JOIN fates f ON c.seen_file IS NULL AND f.dump_sha256 = c.dump_sha256;

CREATE TEMP TABLE copy_rows AS
SELECT dump_file, dump_sha256, bytes, captured_at,
       CASE WHEN first_status IN ('loaded', 'duplicate') AND first_article IS NOT NULL
            THEN 'duplicate' ELSE 'quarantined' END AS status,
       CASE WHEN first_status IN ('loaded', 'duplicate') THEN first_article END AS article_id,
       'The same bytes as ' || first_file || ', which is in quarantine.' AS detail
FROM copy_fates;
"""

_LEDGER_SQL = {
    "files": """
        SELECT dump_file, dump_sha256, bytes, status, article_id, $run_id AS run_id,
               $at AS first_seen_at, captured_at
        FROM (
            SELECT dump_file, dump_sha256, bytes, status, article_id, captured_at FROM fates
            UNION ALL
            SELECT dump_file, dump_sha256, bytes, status, article_id, captured_at FROM copy_rows
            UNION ALL
            SELECT dump_file, dump_sha256, bytes,
                   CASE WHEN reason IS NULL THEN 'unpacked' ELSE 'quarantined' END, NULL, NULL
            FROM refused
        )
        ORDER BY dump_file
    """,
    "quarantine": """
        SELECT dump_file, dump_sha256, stage, reason, detail, layout, encoding,
               $run_id AS run_id, $at AS quarantined_at
        FROM (
            SELECT dump_file, dump_sha256, stage, reason, detail, layout, encoding
            FROM fates WHERE status = 'quarantined'
            UNION ALL
            SELECT dump_file, dump_sha256, 'read', 'same_bytes_as_quarantined', detail,
                   NULL, NULL
            FROM copy_rows WHERE status = 'quarantined'
            UNION ALL
            SELECT dump_file, dump_sha256, 'read', reason, detail, layout, NULL
            FROM refused WHERE reason IS NOT NULL
        )
        ORDER BY dump_file
    """,
    "duplicates": """
        SELECT dump_file, dump_sha256, duplicate_of, kind, similarity, title, published_at,
               page_code, $run_id AS run_id, $at AS ingested_at, source
        FROM (
            SELECT f.dump_file, f.dump_sha256, f.article_id AS duplicate_of, f.kind,
                   f.similarity, k.title, k.published_at, k.page_code, k.source
            FROM fates f JOIN valid_keys k USING (dump_file)
            WHERE f.status = 'duplicate'
            UNION ALL
            SELECT dump_file, dump_sha256, article_id, 'same_file', 1.0, NULL, NULL, NULL, NULL
            FROM copy_rows WHERE status = 'duplicate'
        )
        ORDER BY dump_file
    """,
}

_UNDATED_SQL = """
SELECT count(*) FROM fates f JOIN valid_keys k USING (dump_file)
WHERE f.status = 'loaded' AND k.published_at IS NULL
"""

# The plan's copies of bytes already seen: tonight (seen_* NULL: the first copy is among the
# dumps read) or in an earlier night (seen_*: the ledger's first fate of those bytes).
_COPIES_SCHEMA = pa.schema(
    [
        ("dump_file", pa.string()),
        ("dump_sha256", pa.string()),
        ("bytes", pa.int64()),
        ("captured_at", pa.timestamp("us", tz="UTC")),
        ("seen_file", pa.string()),
        ("seen_status", pa.string()),
        ("seen_article_id", pa.string()),
    ]
)
# The plan's files that were never read: symlinks and refused files (with their reasons), and
# the bundles whose members were recorded (reason NULL: `unpacked`).
_REFUSED_SCHEMA = pa.schema(
    [
        ("dump_file", pa.string()),
        ("dump_sha256", pa.string()),
        ("bytes", pa.int64()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("layout", pa.string()),
    ]
)
_SYMLINK = Rejection("symlink", "A symbolic link in the inbox; links are never followed.")


def _copies(plan: Plan) -> pa.Table:
    rows: list[tuple[Any, ...]] = [
        (c.dump_file, c.sha256, c.bytes, utc_of(c.captured_at), None, None, None)
        for copies in plan.night_copies.values()
        for c in copies
    ]
    rows += [
        (c.dump_file, c.sha256, c.bytes, utc_of(c.captured_at), s.dump_file, s.status, s.article_id)
        for c, s in plan.known_copies
    ]
    return table_of_tuples(rows, _COPIES_SCHEMA)


def _refused(plan: Plan) -> pa.Table:
    never_read = [(d, _SYMLINK) for d in plan.symlinks] + list(plan.refused)
    rows: list[tuple[Any, ...]] = [
        (d.dump_file, d.sha256, d.bytes, why.reason, why.detail, why.layout)
        for d, why in never_read
    ]
    rows += [(d.dump_file, d.sha256, d.bytes, None, None, None) for d in plan.unpacked]
    return table_of_tuples(rows, _REFUSED_SCHEMA)


def _concat(tables: Sequence[pa.Table], schema: pa.Schema) -> pa.Table:
    return pa.concat_tables(tables) if tables else schema.empty_table()


def kept_by_batch(batches: Sequence[Batch], deduped: Deduped) -> list[pa.Array]:
    """The dump files of each batch's kept articles (dedupe's keys are the batches' keys, in
    order)."""
    kept = pa.array(deduped.kept)
    names = deduped.keys["dump_file"].combine_chunks()
    out, at = [], 0
    for batch in batches:
        rows = batch.keys.num_rows
        out.append(names.slice(at, rows).filter(kept.slice(at, rows)))
        at += rows
    return out


# A table partition's staged pieces are gathered into data files of about this many bytes at
# most (Arrow's in-memory size, which a worker holds while it writes one; a file is at least one
# piece): a night's month of articles is one file, a few on a large night, not one per batch.
FILE_BYTES = 128 << 20


@dataclass(frozen=True, slots=True)
class LakeFile:
    """A data file for the workers to write: which table's, where, gathered from which pieces."""

    table: str
    location: str
    pieces: list[str]


def plan_files(
    pieces: Sequence[Piece], folders: dict[str, str], run_id: str, most_bytes: int = FILE_BYTES
) -> list[LakeFile]:
    """The night's data files: each table partition's pieces, in batch order, gathered into
    files of at most `most_bytes`, in the table's folder (`folders`), named by the night."""
    by_partition: defaultdict[tuple[str, str], list[Piece]] = defaultdict(list)
    for piece in pieces:
        by_partition[(piece.table, piece.partition)].append(piece)
    planned = []
    for (table, partition), found in sorted(by_partition.items()):
        groups: list[list[Piece]] = [[]]
        held = 0
        for piece in found:
            if groups[-1] and held + piece.bytes > most_bytes:
                groups.append([])
                held = 0
            groups[-1].append(piece)
            held += piece.bytes
        for number, group in enumerate(groups):
            name = f"wirehouse-{run_id}-{number:05d}.parquet"
            location = (
                join(folders[table], partition, name) if partition else join(folders[table], name)
            )
            planned.append(LakeFile(table, location, [p.path for p in group]))
    return planned


def night_rows(
    run_row: dict[str, Any],
    bundles: Sequence[ArchiveEntry],
    ledger: Ledger,
    files: dict[str, list[str]],
) -> NightRows:
    """Everything a succeeded night commits: the data files the workers wrote (its kept
    articles, their MinHash index, where its raw bytes are), the ledger's rows, and where the
    bundles' raw bytes are."""
    night = NightRows(run_row)
    night.files = files
    night.tables = {
        "duplicates": ledger.duplicates,
        "quarantine": ledger.quarantine,
        "files": ledger.files,
    }
    night.archived = list(bundles)
    return night


def summary_counts(plan: Plan, ledger: Ledger) -> dict[str, Any]:
    """The night's counts for the runs row, logs and the report."""
    counts = ledger.counts()
    counts["already_recorded"] = plan.already_recorded
    counts["unsettled"] = len(plan.unsettled)
    return counts
