"""Questions a night asks of what the warehouse already holds, for just the night's keys."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pyarrow as pa

from transforms.dedupe import History


@dataclass(frozen=True, slots=True)
class Seen:
    """What the ledger knows of some bytes: how they ended, and the article they are or copy."""

    dump_file: str
    status: str
    article_id: str | None


@dataclass(frozen=True, slots=True)
class LedgerMatch:
    """The ledger's answer for a night's files."""

    pairs: set[tuple[str, str]]  # (dump_file, sha256) already recorded: nothing to do
    by_sha: dict[str, Seen]  # first recorded fate of each known hash


# Which recorded copy of some bytes speaks for them: a loaded one, then a duplicate.
_STATUS_RANK = "CASE status WHEN 'loaded' THEN 0 WHEN 'duplicate' THEN 1 ELSE 2 END"


def match_ledger(con: duckdb.DuckDBPyConnection, hashes: list[str]) -> LedgerMatch:
    """What the ledger has recorded of the night's hashes, under any name."""
    con.register("night_files", pa.table({"dump_sha256": pa.array(hashes, pa.string())}))
    try:
        rows = con.execute(
            "SELECT f.dump_file, f.dump_sha256, f.status, f.article_id, "
            f"{_STATUS_RANK} AS rank FROM files f "
            "WHERE f.dump_sha256 IN (SELECT dump_sha256 FROM night_files) "
            "ORDER BY f.dump_sha256, rank, f.first_seen_at, f.dump_file"
        ).fetchall()
    finally:
        con.unregister("night_files")
    pairs = {(row[0], row[1]) for row in rows}
    by_sha: dict[str, Seen] = {}
    for dump_file, sha, status, article_id, _rank in rows:
        by_sha.setdefault(sha, Seen(dump_file, status, article_id))
    return LedgerMatch(pairs, by_sha)


def history_for(
    con: duckdb.DuckDBPyConnection, page_codes: pa.Array, fingerprints: pa.Array
) -> History:
    """Kept articles that share a page code or a body fingerprint with the night's articles."""
    con.register("night_codes", pa.table({"page_code": page_codes}))
    con.register("night_prints", pa.table({"body_fingerprint": fingerprints}))
    try:
        by_code = con.execute(
            "SELECT page_code, min(article_id) FROM articles "
            "WHERE page_code IN (SELECT page_code FROM night_codes) GROUP BY page_code"
        ).fetchall()
        by_print = con.execute(
            "SELECT body_fingerprint, min(article_id) FROM articles "
            "WHERE body_fingerprint IN (SELECT body_fingerprint FROM night_prints) "
            "GROUP BY body_fingerprint"
        ).fetchall()
    finally:
        con.unregister("night_codes")
        con.unregister("night_prints")
    return History(dict(by_code), dict(by_print))
