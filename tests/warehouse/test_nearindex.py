"""The near-duplicate index in DuckLake tables: round trip, empty bodies, rolled back with a run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from transforms.minhash import U32, signatures
from warehouse import nearindex
from warehouse.catalog import open_lake
from warehouse.home import Home
from warehouse.loader import insert_arrow

STORIES = [
    "LONDON, May 1 (Xinhua) -- " + " ".join(f"word{i}x{j}" for j in range(80)) for i in range(6)
]


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh lake, read-write."""
    con = open_lake(Home.at(tmp_path))
    yield con
    con.close()


def index(con: duckdb.DuckDBPyConnection, run_id: str, ids: list[str], sigs: U32) -> int:
    """Commit a run's index rows; how many articles went in."""
    rows = nearindex.index_rows(ids, sigs, run_id)
    con.execute("BEGIN")
    for table, arrow in rows.items():
        insert_arrow(con, table, arrow)
    con.execute("COMMIT")
    return rows[nearindex.SIGNATURES_TABLE].num_rows if rows else 0


def test_round_trip_finds_stored_articles_with_their_signatures(
    lake: duckdb.DuckDBPyConnection,
) -> None:
    sigs = signatures(STORIES)
    assert index(lake, "run-a", [f"a{i}" for i in range(3)], sigs[:3]) == 3
    matches = nearindex.history_matches(lake, sigs)
    assert [(m.night, m.article_id, m.similarity) for m in matches] == [
        (0, "a0", 1.0),
        (1, "a1", 1.0),
        (2, "a2", 1.0),
    ]


def test_a_run_deleted_from_the_index_is_no_longer_found(lake: duckdb.DuckDBPyConnection) -> None:
    sigs = signatures(STORIES)
    index(lake, "run-a", ["a0"], sigs[:1])
    index(lake, "run-b", ["b1"], sigs[1:2])
    assert {m.article_id for m in nearindex.history_matches(lake, sigs)} == {"a0", "b1"}
    for table in (nearindex.BANDS_TABLE, nearindex.SIGNATURES_TABLE):
        lake.execute(f"DELETE FROM {table} WHERE run_id = 'run-b'")
    assert {m.article_id for m in nearindex.history_matches(lake, sigs)} == {"a0"}


def test_empty_bodies_are_not_indexed(lake: duckdb.DuckDBPyConnection) -> None:
    sigs = signatures(["", "  ", STORIES[0]])
    assert index(lake, "run-a", ["e0", "e1", "s0"], sigs) == 1
    assert nearindex.history_matches(lake, signatures([""])) == []


def test_an_uncommitted_night_is_not_in_the_history(tmp_path: Path) -> None:
    sigs = signatures(STORIES)
    writer = open_lake(Home.at(tmp_path))
    writer.execute("BEGIN")
    for table, arrow in nearindex.index_rows(["a0"], sigs[:1], "run-a").items():
        insert_arrow(writer, table, arrow)
    reader = open_lake(Home.at(tmp_path))
    assert nearindex.history_matches(reader, sigs) == []
    writer.execute("ROLLBACK")
    writer.close()
    reader.close()
