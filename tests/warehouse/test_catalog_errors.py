"""What a reader is told when the catalog broke off its query: the words DuckDB used when the
soak's readers met a PostgreSQL restart (`bench.soak`) become the one sentence to run again,
for a PostgreSQL catalog only."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from warehouse.catalog import catalog_errors
from warehouse.home import Home
from warehouse.outage import ServiceUnavailable

# Met by the soak's readers while the catalog restarted under their queries.
BROKEN_OFF = [
    duckdb.TransactionException(
        "TransactionContext Error: Failed to get data file list from DuckLake: Current "
        "transaction is aborted (please ROLLBACK)"
    ),
    duckdb.InvalidInputException(
        "Invalid Input Error: Attempting to fetch from an unsuccessful query result"
    ),
]


def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, catalog: str | None) -> Home:
    if catalog is None:
        monkeypatch.delenv("WIREHOUSE_CATALOG", raising=False)
    else:
        monkeypatch.setenv("WIREHOUSE_CATALOG", catalog)
    return Home.from_env(tmp_path / "home")


@pytest.mark.parametrize("error", BROKEN_OFF, ids=lambda e: type(e).__name__)
def test_a_query_broken_off_by_a_postgres_catalog_says_run_again(
    error: duckdb.Error, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    where = home(tmp_path, monkeypatch, "postgres:host=db.example port=6543 dbname=lake")
    with pytest.raises(ServiceUnavailable) as told, catalog_errors(where, "the query"):
        raise error
    assert str(told.value).startswith(
        "the catalog (PostgreSQL at db.example:6543) is unavailable, the query stopped"
    )
    assert str(told.value).endswith("then run again.")


@pytest.mark.parametrize("error", BROKEN_OFF, ids=lambda e: type(e).__name__)
def test_the_same_words_from_an_embedded_catalog_are_not_an_outage(
    error: duckdb.Error, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    where = home(tmp_path, monkeypatch, None)
    with pytest.raises(type(error)), catalog_errors(where, "the query"):
        raise error


def test_an_analysts_own_error_is_left_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    where = home(tmp_path, monkeypatch, "postgres:host=db.example dbname=lake")
    with pytest.raises(duckdb.BinderException), catalog_errors(where, "the query"):
        duckdb.connect().execute("SELECT nope FROM range(1)")
