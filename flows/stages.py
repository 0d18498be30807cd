"""The stages of a night as plain functions over batches; flows/nightly.py wraps them as tasks."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from transforms.decode import Decoded, decode_dump
from transforms.dedupe import Candidate, Link, dedupe
from transforms.night import Dump, Ledger, Lineage, Parsed, Row, article_row
from transforms.parse import parse_dump
from transforms.records import ARTICLES_SCHEMA, Article, Rejection
from warehouse.archive import keep_raw
from warehouse.home import Home
from warehouse.inbox import Arrivals, read_bytes
from warehouse.ledger import LedgerMatch, Seen, history_for


@dataclass(frozen=True, slots=True)
class ToRead:
    """A dump to read this night: its name in the ledger and where its bytes are."""

    dump: Dump
    path: Path


@dataclass(slots=True)
class Plan:
    """What discovery decided before anything was read."""

    to_read: list[ToRead] = field(default_factory=list)  # one per new content hash
    night_copies: dict[str, list[Dump]] = field(default_factory=dict)  # sha -> later copies
    known_copies: list[tuple[Dump, Seen]] = field(default_factory=list)  # bytes seen before
    symlinks: list[Dump] = field(default_factory=list)
    unsettled: list[str] = field(default_factory=list)
    already_recorded: int = 0


def plan_night(arrivals: Arrivals, match: LedgerMatch) -> Plan:
    """Sort the night's files: new bytes to read, copies of bytes seen, files seen already."""
    plan = Plan(unsettled=arrivals.unsettled)
    for link in arrivals.symlinks:
        if (link.dump_file, link.sha256) in match.pairs:
            plan.already_recorded += 1
        else:
            plan.symlinks.append(Dump(link.dump_file, link.sha256, link.bytes))
    first_by_sha: dict[str, ToRead] = {}
    copies: dict[str, list[Dump]] = defaultdict(list)
    for found in arrivals.files:  # path order, so the first path of some bytes is kept
        dump = Dump(found.dump_file, found.sha256, found.bytes)
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


def read_and_parse(batch: Sequence[ToRead], home: Home, max_bytes: int) -> list[Parsed]:
    """Read, archive, decode and parse a batch of dumps; bad input becomes a rejection."""
    out: list[Parsed] = []
    for item in batch:
        data = read_bytes(item.path, max_bytes)
        if data is None:
            rejection = Rejection(
                "too_large",
                f"The file is larger than the {max_bytes:,}-byte limit for one dump.",
            )
            out.append(Parsed(item.dump, rejection, "read"))
            continue
        keep_raw(home, item.dump.sha256, data)
        decoded = decode_dump(data)
        if isinstance(decoded, Rejection):
            out.append(Parsed(item.dump, decoded, "read"))
            continue
        out.append(Parsed(item.dump, parse_dump(decoded.text), "parse", _encoding(decoded)))
    return out


def articles_table(parsed: Sequence[Parsed], lineage: Lineage) -> pa.Table:
    """All parsed articles of the night as one Arrow table, ready for validation."""
    rows = [article_row(p, p.result, lineage) for p in parsed if isinstance(p.result, Article)]
    return pa.Table.from_pylist(rows, schema=ARTICLES_SCHEMA)


def dedupe_against_history(
    passed: pa.Table, con: duckdb.DuckDBPyConnection
) -> tuple[set[str], list[Link]]:
    """Which valid articles are kept (their dump files) and which are copies, and of what."""
    columns = passed.select(
        ["dump_file", "article_id", "published_at", "page_code", "body_fingerprint"]
    ).to_pylist()
    candidates = [
        Candidate(
            c["dump_file"],
            c["article_id"],
            c["published_at"],
            c["page_code"],
            c["body_fingerprint"],
        )
        for c in columns
    ]
    codes = sorted({c.page_code for c in candidates if c.page_code})
    history = history_for(con, codes, sorted({c.fingerprint for c in candidates}))
    kept, links = dedupe(candidates, history)
    return {c.dump_file for c in kept}, links


def account(
    plan: Plan,
    parsed: Sequence[Parsed],
    rows: dict[str, Row],
    failures: dict[str, list[str]],
    kept: set[str],
    links: Sequence[Link],
    lineage: Lineage,
) -> Ledger:
    """Every dump of the night in exactly one place: articles, duplicates or quarantine."""
    ledger = Ledger()
    link_of = {link.dump_file: link for link in links}
    fate: dict[str, Seen] = {}  # sha -> how the night's first copy ended
    for item in parsed:
        dump = item.dump
        row = rows.get(dump.dump_file)
        if isinstance(item.result, Rejection):
            ledger.quarantined(dump, item.stage, item.result, lineage, item.encoding)
            fate[dump.sha256] = Seen(dump.dump_file, "quarantined", None)
        elif dump.dump_file in failures:
            rejection = Rejection(
                "failed_validation", "; ".join(failures[dump.dump_file]), item.result.layout
            )
            ledger.quarantined(dump, "validate", rejection, lineage, item.encoding)
            fate[dump.sha256] = Seen(dump.dump_file, "quarantined", None)
        elif dump.dump_file in link_of:
            link = link_of[dump.dump_file]
            ledger.duplicate(dump, link.duplicate_of, link.kind, link.similarity, row, lineage)
            fate[dump.sha256] = Seen(dump.dump_file, "duplicate", link.duplicate_of)
        else:
            assert row is not None and dump.dump_file in kept
            ledger.loaded(dump, row)
            fate[dump.sha256] = Seen(dump.dump_file, "loaded", row["article_id"])
    for sha, copies in plan.night_copies.items():
        for copy in copies:
            _copy_of(ledger, copy, fate[sha], lineage)
    for copy, seen in plan.known_copies:
        _copy_of(ledger, copy, seen, lineage)
    for link_dump in plan.symlinks:
        ledger.quarantined(
            link_dump,
            "read",
            Rejection("symlink", "A symbolic link in the inbox; links are never followed."),
            lineage,
        )
    return ledger


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


def _encoding(decoded: Decoded) -> str:
    return decoded.encoding


def summary_counts(plan: Plan, ledger: Ledger) -> dict[str, Any]:
    """The night's counts for the runs row, logs and the report."""
    counts = ledger.counts()
    counts["files_new"] = len(ledger.files)
    counts["already_recorded"] = plan.already_recorded
    counts["unsettled"] = len(plan.unsettled)
    return counts
