"""A night's bookkeeping: each dump's fate, and the rows of every table that record it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from transforms.records import PARSER_VERSION, Article, Rejection
from transforms.text import word_count

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Dump:
    """One file of the night to account for: its inbox name, size, content hash and file time."""

    dump_file: str
    sha256: str
    bytes: int
    # When the dump was captured: its file's modification time (POSIX seconds), the reference
    # for relative times on the page ("3 hours ago"). None when unknown.
    captured_at: float | None = None

    def __reduce__(self) -> tuple[type[Dump], tuple[str, str, int, float | None]]:
        # Pickled by the tens of thousands to and from the parse workers: its fields as a
        # tuple cost a quarter of what a dataclass's default pickling does.
        return (Dump, (self.dump_file, self.sha256, self.bytes, self.captured_at))


@dataclass(frozen=True, slots=True)
class Parsed:
    """What reading and parsing one dump gave: an article, or a rejection at a stage."""

    dump: Dump
    result: Article | Rejection
    stage: str  # where a rejection happened: read | parse
    encoding: str | None = None

    def __reduce__(self) -> tuple[type[Parsed], tuple[Any, ...]]:
        return (Parsed, (self.dump, self.result, self.stage, self.encoding))  # as Dump's


@dataclass(frozen=True, slots=True)
class Lineage:
    """Columns every row of one run carries."""

    run_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Ledger:
    """The rows a night adds to the tables that record each dump's fate, as Arrow tables in
    `dump_file` order (FILES_SCHEMA, QUARANTINE_SCHEMA, DUPLICATES_SCHEMA)."""

    files: pa.Table
    quarantine: pa.Table
    duplicates: pa.Table
    undated: int = 0  # kept articles without a publication time (counted apart, not failures)

    def counts(self) -> dict[str, Any]:
        """How many rows of each kind, with duplicates by kind and quarantine by reason."""
        status = self.files["status"]
        return {
            "articles": _count(status, "loaded"),
            "duplicates": self.duplicates.num_rows,
            "quarantined": self.quarantine.num_rows,
            "undated": self.undated,
            "files": self.files.num_rows,
            "unpacked": _count(status, "unpacked"),
            "duplicates_by_kind": _by_value(self.duplicates["kind"]),
            "quarantined_by_reason": _by_value(self.quarantine["reason"]),
        }


def _count(column: pa.ChunkedArray, value: str) -> int:
    return int(pc.sum(pc.equal(column, value)).as_py() or 0)


def _by_value(column: pa.ChunkedArray) -> dict[str, int]:
    """Rows per value, in value order."""
    counted = pc.value_counts(column).to_pylist()
    return {c["values"]: c["counts"] for c in sorted(counted, key=lambda c: c["values"])}


def article_id_of(sha256: str) -> str:
    """The stable id of the article a dump holds: derived from its bytes, so re-runs agree."""
    return sha256[:24]


def article_row(parsed: Parsed, article: Article, lineage: Lineage, fingerprint: str) -> Row:
    """The `articles` row of one parsed article (its body's fingerprint given), lineage
    included."""
    return {
        "article_id": article_id_of(parsed.dump.sha256),
        "source": article.source,
        "title": article.title,
        "published_at": article.published_at,
        "published_at_source": article.published_at_source,
        "editor": article.editor,
        "author": article.author,
        "dateline": article.dateline,
        "body": article.body,
        "captions": list(article.captions),
        "word_count": word_count(article.body),
        "language": article.language,
        "page_code": article.page_code,
        "body_fingerprint": fingerprint,
        "dump_file": parsed.dump.dump_file,
        "dump_sha256": parsed.dump.sha256,
        "encoding": parsed.encoding,
        "layout": article.layout,
        "parser_version": PARSER_VERSION,
        "run_id": lineage.run_id,
        "ingested_at": lineage.at,
    }


# The partition of articles that state no publication time (a page of another outlet).
UNDATED_MONTH = "undated"


def published_month(published_at: datetime | None) -> str:
    """The partition an article lands in: its UTC publication month, or `undated`."""
    return published_at.strftime("%Y-%m") if published_at is not None else UNDATED_MONTH


def utc_of(seconds: float | None) -> datetime | None:
    """POSIX seconds (a file time) as an aware UTC datetime."""
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)
