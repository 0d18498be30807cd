"""The warehouse's invariants as SQL: each check names the rows that break it."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

# name -> (what it promises, a query returning the offending rows; empty when it holds)
CHECKS: dict[str, tuple[str, str]] = {
    "one_place_per_dump": (
        "every loaded, duplicate or quarantined file is in exactly one of articles, duplicates, "
        "quarantine, and in the one its status names",
        """
        WITH placed AS (
            SELECT dump_file, 'loaded' AS status FROM articles
            UNION ALL SELECT dump_file, 'duplicate' FROM duplicates
            UNION ALL SELECT dump_file, 'quarantined' FROM quarantine
        )
        SELECT coalesce(f.dump_file, p.dump_file) AS dump_file, f.status AS ledger_status,
               list(p.status) AS placed_in
        FROM files f FULL OUTER JOIN placed p USING (dump_file)
        WHERE coalesce(f.status, '') <> 'unpacked'
        GROUP BY ALL
        HAVING count(p.status) <> 1 OR any_value(p.status) IS DISTINCT FROM any_value(f.status)
        """,
    ),
    "one_ledger_row_per_name_and_bytes": (
        "the ledger records each (dump_file, dump_sha256) once",
        "SELECT dump_file, dump_sha256, count(*) AS n FROM files GROUP BY ALL HAVING n > 1",
    ),
    "unique_article_ids": (
        "article_id is unique in articles",
        "SELECT article_id, count(*) AS n FROM articles GROUP BY ALL HAVING n > 1",
    ),
    "duplicates_point_at_articles": (
        "every duplicate points at a row of articles",
        "SELECT d.dump_file, d.duplicate_of FROM duplicates d "
        "ANTI JOIN articles a ON a.article_id = d.duplicate_of",
    ),
    "quarantine_has_reasons": (
        "every quarantined dump says why",
        "SELECT dump_file FROM quarantine WHERE coalesce(reason, '') = '' "
        "OR coalesce(detail, '') = ''",
    ),
}


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken invariant and a sample of the rows that break it."""

    check: str
    promise: str
    count: int
    sample: list[tuple[object, ...]]


def violations(con: duckdb.DuckDBPyConnection, sample: int = 5) -> list[Violation]:
    """Run every check over the committed views; an empty list means the warehouse is sound."""
    found: list[Violation] = []
    for name, (promise, query) in CHECKS.items():
        rows = con.execute(query).fetchall()
        if rows:
            found.append(Violation(name, promise, len(rows), rows[:sample]))
    return found
