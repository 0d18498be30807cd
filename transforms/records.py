"""The records that flow between stages, and their one declared Arrow schema each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa

# Bumped whenever a parser change can alter the fields it extracts; stored on every article.
PARSER_VERSION = "2.5.0"


@dataclass(frozen=True, slots=True)
class Article:
    """One article as a parser extracted it from one dump (lineage is added by the flow)."""

    title: str
    # Timezone-aware, UTC: shifted by the zone the page states ("EST", "+02:00"); a time the page
    # gives without a zone is stored as written, read as UTC (no guess from the outlet or the
    # language), a date without a time as its midnight UTC.
    published_at: datetime | None
    body: str  # paragraphs joined by a blank line, each once, no page chrome
    layout: str  # which parser produced it: xinhua-2019, chinaview-2008, generic, ...
    # Where published_at came from: "page" (written there in full), "inferred" (a relative
    # time against the capture time, or a year completed from elsewhere on the page), "none".
    published_at_source: str = "page"
    source: str = "Xinhua"
    editor: str | None = None
    # The byline's names as the page prints them (no "By", outlet or date), several joined by
    # "; " in the page's order; None where the page names none.
    author: str | None = None
    dateline: str | None = None
    page_code: str | None = None
    language: str = "en"
    captions: tuple[str, ...] = field(default_factory=tuple)

    @property
    def paragraphs(self) -> list[str]:
        """The body's paragraphs, in order."""
        return self.body.split("\n\n") if self.body else []


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a dump or record is not an article: a short stable reason and a human detail."""

    reason: str  # snake_case, stable: grouped on in reports ("not_an_article", ...)
    detail: str  # one sentence a person understands
    layout: str | None = None  # the layout recognised before the parser gave up, if any


ParseResult = Article | Rejection

_TS = pa.timestamp("us", tz="UTC")

# Columns of `articles` as a night stages them; the lake adds `published_month` (warehouse/catalog).
ARTICLES_SCHEMA = pa.schema(
    [
        ("article_id", pa.string()),
        ("source", pa.string()),
        ("title", pa.string()),
        ("published_at", _TS),
        ("published_at_source", pa.string()),  # page | inferred | none
        ("editor", pa.string()),
        ("author", pa.string()),  # the byline's names, "; " between them
        ("dateline", pa.string()),
        ("body", pa.string()),
        ("captions", pa.list_(pa.string())),
        ("word_count", pa.int32()),
        ("language", pa.string()),
        ("page_code", pa.string()),
        ("body_fingerprint", pa.string()),
        ("dump_file", pa.string()),
        ("dump_sha256", pa.string()),
        ("encoding", pa.string()),
        ("layout", pa.string()),
        ("parser_version", pa.string()),
        ("run_id", pa.string()),
        ("ingested_at", _TS),
    ]
)

DUPLICATES_SCHEMA = pa.schema(
    [
        ("dump_file", pa.string()),
        ("dump_sha256", pa.string()),
        ("duplicate_of", pa.string()),
        ("kind", pa.string()),  # same_file | same_page | exact | near
        ("similarity", pa.float64()),
        ("title", pa.string()),
        ("published_at", _TS),
        ("page_code", pa.string()),
        ("run_id", pa.string()),
        ("ingested_at", _TS),
        ("source", pa.string()),  # the copy's outlet (NULL for a same_file copy: not parsed)
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [
        ("dump_file", pa.string()),
        ("dump_sha256", pa.string()),
        ("stage", pa.string()),  # read | parse | validate
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("layout", pa.string()),
        ("encoding", pa.string()),
        ("run_id", pa.string()),
        ("quarantined_at", _TS),
    ]
)

FILES_SCHEMA = pa.schema(
    [
        ("dump_file", pa.string()),
        ("dump_sha256", pa.string()),
        ("bytes", pa.int64()),
        ("status", pa.string()),  # loaded | duplicate | quarantined | unpacked
        ("article_id", pa.string()),  # the article it is (loaded) or copies (duplicate)
        ("run_id", pa.string()),
        ("first_seen_at", _TS),
        ("captured_at", _TS),  # the file's time: what relative times on the page count from
    ]
)

RUNS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("flow_run_id", pa.string()),
        ("kind", pa.string()),  # nightly | backfill | rollback | reprocess | migrate | reindex
        ("started_at", _TS),
        ("finished_at", _TS),
        ("status", pa.string()),  # succeeded | failed | rolled_back
        ("message", pa.string()),
        ("inbox", pa.string()),
        ("files_seen", pa.int64()),
        ("files_new", pa.int64()),
        ("articles", pa.int64()),
        ("duplicates", pa.int64()),
        ("quarantined", pa.int64()),
        ("failure_ratio", pa.float64()),
        ("max_failure_ratio", pa.float64()),
        ("parser_version", pa.string()),
    ]
)


def table_of(rows: list[dict[str, object]], schema: pa.Schema) -> pa.Table:
    """Rows (dicts) as an Arrow table, built column by column (far faster than from_pylist)."""
    return pa.Table.from_pydict(
        {name: [row[name] for row in rows] for name in schema.names}, schema=schema
    )


def table_of_tuples(rows: Sequence[tuple[object, ...]], schema: pa.Schema) -> pa.Table:
    """Rows (tuples in the schema's column order) as an Arrow table, column by column."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(schema)
    return pa.Table.from_arrays(
        [pa.array(c, f.type) for c, f in zip(columns, schema, strict=True)], schema=schema
    )


SCHEMAS: dict[str, pa.Schema] = {
    "articles": ARTICLES_SCHEMA,
    "duplicates": DUPLICATES_SCHEMA,
    "quarantine": QUARANTINE_SCHEMA,
    "files": FILES_SCHEMA,
    "runs": RUNS_SCHEMA,
}
