"""Dumps already read, decoded and parsed into article rows and signatures: the CPU of a night.

Pure and picklable both ways, so that the nightly flow can run it in worker processes (one per
core) while its own threads read, archive and stage files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from transforms.decode import decode_dump
from transforms.minhash import U32, signatures
from transforms.night import Dump, Lineage, Parsed, article_row, utc_of
from transforms.parse import parse_dump
from transforms.records import ARTICLES_SCHEMA, Article, Rejection, table_of
from transforms.text import fingerprint_of_folded, folded


@dataclass(frozen=True, slots=True)
class StagedArticle:
    """An article whose row waits in a staged Parquet file: the dump it came from."""

    dump: Dump
    encoding: str | None

    def __reduce__(self) -> tuple[type[StagedArticle], tuple[Dump, str | None]]:
        return (StagedArticle, (self.dump, self.encoding))  # a tuple pickles fast: see Dump


@dataclass(frozen=True, slots=True)
class ParsedDumps:
    """Articles as rows (with their MinHash signatures, row-aligned) and the dumps rejected."""

    rows: pa.Table  # ARTICLES_SCHEMA
    articles: list[StagedArticle]  # the dump of each row, in row order
    signatures: U32
    rejected: list[Parsed]

    @staticmethod
    def concat(parts: Sequence[ParsedDumps]) -> ParsedDumps:
        """Several results as one, in order."""
        if not parts:
            return ParsedDumps(ARTICLES_SCHEMA.empty_table(), [], signatures([]), [])
        return ParsedDumps(
            pa.concat_tables([p.rows for p in parts]),
            [a for p in parts for a in p.articles],
            np.concatenate([p.signatures for p in parts]),
            [r for p in parts for r in p.rejected],
        )


def parse_dumps(read: Sequence[tuple[Dump, bytes]], lineage: Lineage) -> ParsedDumps:
    """Decode and parse each dump's bytes; articles become rows, the rest rejections."""
    rows = []
    articles: list[StagedArticle] = []
    rejected: list[Parsed] = []
    bodies: list[str] = []
    texts: list[bytes] = []  # each body folded once, for its fingerprint and its shingles
    for dump, data in read:
        decoded = decode_dump(data)
        if isinstance(decoded, Rejection):
            rejected.append(Parsed(dump, decoded, "read"))
            continue
        captured = utc_of(dump.captured_at)
        parsed = Parsed(dump, parse_dump(decoded.text, captured), "parse", decoded.encoding)
        if isinstance(parsed.result, Article):
            bodies.append(parsed.result.body)
            texts.append(folded(parsed.result.body))
            fingerprint = fingerprint_of_folded(texts[-1])
            rows.append(article_row(parsed, parsed.result, lineage, fingerprint))
            articles.append(StagedArticle(dump, decoded.encoding))
        else:
            rejected.append(parsed)
    sigs = signatures(bodies, texts)
    return ParsedDumps(table_of(rows, ARTICLES_SCHEMA), articles, sigs, rejected)
