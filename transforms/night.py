"""A night's bookkeeping: each dump's fate, and the rows of every table that record it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

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


@dataclass(slots=True)
class Ledger:
    """The rows a night adds to each table, filled stage by stage."""

    articles: list[str] = field(default_factory=list)  # dump files of the kept articles
    duplicates: list[Row] = field(default_factory=list)
    quarantine: list[Row] = field(default_factory=list)
    files: list[Row] = field(default_factory=list)
    undated: int = 0  # kept articles without a publication time (counted apart, not failures)

    def file(self, dump: Dump, status: str, article_id: str | None, lineage: Lineage) -> None:
        """Record a file's fate in the `files` ledger."""
        self.files.append(
            {
                "dump_file": dump.dump_file,
                "dump_sha256": dump.sha256,
                "bytes": dump.bytes,
                "status": status,
                "article_id": article_id,
                "run_id": lineage.run_id,
                "first_seen_at": lineage.at,
                "captured_at": _utc(dump.captured_at),
            }
        )

    def quarantined(
        self,
        dump: Dump,
        stage: str,
        rejection: Rejection,
        lineage: Lineage,
        encoding: str | None = None,
    ) -> None:
        """Record a dump that is not loaded, and why."""
        self.quarantine.append(
            {
                "dump_file": dump.dump_file,
                "dump_sha256": dump.sha256,
                "stage": stage,
                "reason": rejection.reason,
                "detail": rejection.detail,
                "layout": rejection.layout,
                "encoding": encoding,
                "run_id": lineage.run_id,
                "quarantined_at": lineage.at,
            }
        )
        self.file(dump, "quarantined", None, lineage)

    def duplicate(
        self,
        dump: Dump,
        of: str,
        kind: str,
        similarity: float,
        article: Row | None,
        lineage: Lineage,
    ) -> None:
        """Record a copy of a kept article."""
        self.duplicates.append(
            {
                "dump_file": dump.dump_file,
                "dump_sha256": dump.sha256,
                "duplicate_of": of,
                "kind": kind,
                "similarity": similarity,
                "title": article["title"] if article else None,
                "published_at": article["published_at"] if article else None,
                "page_code": article["page_code"] if article else None,
                "run_id": lineage.run_id,
                "ingested_at": lineage.at,
                "source": article.get("source") if article else None,
            }
        )
        self.file(dump, "duplicate", of, lineage)

    def unpacked(self, dump: Dump, lineage: Lineage) -> None:
        """Record a bundle whose members were recorded as dumps of their own."""
        self.file(dump, "unpacked", None, lineage)

    def loaded(self, dump: Dump, article_id: str, lineage: Lineage) -> None:
        """Record a kept article (its row is already staged as Parquet)."""
        self.articles.append(dump.dump_file)
        self.file(dump, "loaded", article_id, lineage)

    def counts(self) -> dict[str, Any]:
        """How many rows of each kind, with duplicates by kind and quarantine by reason."""
        return {
            "articles": len(self.articles),
            "duplicates": len(self.duplicates),
            "quarantined": len(self.quarantine),
            "undated": self.undated,
            "files": len(self.files),
            "unpacked": sum(1 for row in self.files if row["status"] == "unpacked"),
            "duplicates_by_kind": dict(sorted(Counter(r["kind"] for r in self.duplicates).items())),
            "quarantined_by_reason": dict(
                sorted(Counter(r["reason"] for r in self.quarantine).items())
            ),
        }


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
        "dateline": article.dateline,
        "body": article.body,
        "captions": list(article.captions),
        "word_count": word_count(article.body, article.language),
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


def _utc(seconds: float | None) -> datetime | None:
    """POSIX seconds as an aware UTC datetime."""
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)
