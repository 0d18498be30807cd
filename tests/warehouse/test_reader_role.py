"""An analysts' role on a PostgreSQL catalog, given `reader_grants` only: it attaches the lake
READ_ONLY and queries it (tables DuckLake adds later too), through `wirehouse sql` as well, and
every change through it fails and changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import duckdb
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from flows.cli import main
from tests.servers import PostgresServer
from warehouse.catalog import attach_statements, install_extensions, lake_connection, open_lake
from warehouse.home import Home
from warehouse.readers import grant_reader

CATALOG_TABLES = (
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
    "AND table_name LIKE 'ducklake%' ORDER BY 1"
)


@pytest.fixture
def reader(postgres_server: PostgresServer, postgres_dsn: str) -> Iterator[str]:
    """A login role with no rights of its own; yields its name."""
    name = f"analyst_{uuid.uuid4().hex[:8]}"
    role = sql.Identifier(name)
    with psycopg.connect(postgres_server.dsn("postgres"), autocommit=True) as con:
        con.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'x'").format(role))
    yield name
    for dsn in (postgres_dsn, postgres_server.dsn("postgres")):  # its grants in each database
        with psycopg.connect(dsn, autocommit=True) as con:
            con.execute(sql.SQL("DROP OWNED BY {}").format(role))
    with psycopg.connect(postgres_server.dsn("postgres"), autocommit=True) as con:
        con.execute(sql.SQL("DROP ROLE {}").format(role))


def as_role(dsn: str, role: str) -> str:
    """The same connection string, logging in as `role`."""
    return make_conninfo(dsn, user=role, password="x")


def catalog_state(dsn: str) -> dict[str, object]:
    """Every catalog table's rows, as the writer sees them."""
    with psycopg.connect(dsn) as con:
        tables = [name for (name,) in con.execute(CATALOG_TABLES).fetchall()]
        return {
            t: sorted(map(repr, con.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(t)))))
            for t in tables
        }


def test_a_reader_role_queries_the_lake_and_can_change_nothing(
    tmp_path: Path,
    postgres_dsn: str,
    reader: str,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = str(tmp_path / "lake") + "/"
    writer = Home.at(tmp_path / "writer", catalog=f"postgres:{postgres_dsn}", data_path=data)
    with open_lake(writer) as con:
        con.execute(
            "INSERT INTO runs (run_id, status) SELECT 'night-' || i, 'succeeded' "
            "FROM range(20) t(i)"
        )  # into a Parquet file
    grant_reader(postgres_dsn, reader)
    granted = set(catalog_state(postgres_dsn))
    # A table made after the grants, its few rows inlined (as DuckLake does by default, and
    # did in lakes written before Wirehouse turned it off): into catalog tables new too.
    with closing(duckdb.connect()) as con:
        install_extensions(con)
        for statement in attach_statements(writer):
            con.execute(statement.replace("INLINING_ROW_LIMIT 0", "INLINING_ROW_LIMIT 10"))
        con.execute("CREATE TABLE extra AS SELECT 'late' AS word")
    assert set(catalog_state(postgres_dsn)) - granted, "no new table: default privileges untested"
    analyst_dsn = as_role(postgres_dsn, reader)
    analyst = Home.at(tmp_path / "analyst", catalog=f"postgres:{analyst_dsn}", data_path=data)
    with lake_connection(analyst) as con:
        assert con.execute("SELECT count(*) FROM runs").fetchall() == [(20,)]
        assert con.execute("SELECT word FROM extra").fetchall() == [("late",)]
        assert con.execute("SELECT count(*) FROM runs AT (VERSION => 1)").fetchall() == [(0,)]
    monkeypatch.setenv("WIREHOUSE_CATALOG", f"postgres:{analyst_dsn}")
    monkeypatch.setenv("WIREHOUSE_DATA_PATH", data)
    home = ["--home", str(tmp_path / "analyst")]
    assert main([*home, "sql", "--format", "csv", "SELECT count(*) AS n FROM runs"]) == 0
    assert capfd.readouterr().out.splitlines() == ["n", "20"]

    before = catalog_state(postgres_dsn)
    with psycopg.connect(analyst_dsn, autocommit=True) as con:
        for statement in (
            "DELETE FROM ducklake_snapshot",
            "INSERT INTO ducklake_metadata (key, value) VALUES ('x', 'y')",
            "UPDATE ducklake_table SET table_name = 'x'",
            "DROP TABLE ducklake_snapshot",
            "CREATE TABLE public.mine (x int)",
            "TRUNCATE ducklake_data_file",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                con.execute(statement)
    # a read-write attachment through the role: its first change fails
    for statement in (
        "INSERT INTO runs (run_id) VALUES ('x')",
        "DELETE FROM runs",
        "DROP TABLE runs",
        "CREATE TABLE mine (x INTEGER)",
    ):
        with (
            pytest.raises(duckdb.Error, match="permission denied"),
            lake_connection(analyst, read_only=False) as con,
        ):
            con.execute(statement)
    assert catalog_state(postgres_dsn) == before
    assert conninfo_to_dict(analyst_dsn)["user"] == reader
