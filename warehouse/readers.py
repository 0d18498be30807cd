"""An analysts' read-only role on a PostgreSQL catalog: the grants that let it attach the lake
READ_ONLY and query it, and nothing more (docs/reader-role.sql shows the same statements)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from psycopg import sql

# DuckLake keeps its catalog tables in this schema of the database unless told otherwise.
CATALOG_SCHEMA = "public"


def reader_grants(database: str, reader: str, schema: str = CATALOG_SCHEMA) -> list[sql.Composed]:
    """The statements, run by the role that writes the catalog, that let `reader` read it:
    connect, see the schema, select from its tables, and from the tables DuckLake adds later
    (small inserts of lakes written with DuckLake's inlining on go to new
    `ducklake_inlined_data_*` tables)."""
    from psycopg import sql

    names = {"db": sql.Identifier(database), "s": sql.Identifier(schema)}
    names["r"] = sql.Identifier(reader)
    return [
        sql.SQL(text).format(**names)
        for text in (
            "GRANT CONNECT ON DATABASE {db} TO {r}",
            "GRANT USAGE ON SCHEMA {s} TO {r}",
            "GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {r}",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT SELECT ON TABLES TO {r}",
        )
    ]


def grant_reader(dsn: str, reader: str, schema: str = CATALOG_SCHEMA) -> None:
    """Run `reader_grants` on the catalog database of `dsn`, as the role that writes it (an
    existing role `reader` can then attach the lake READ_ONLY, and change nothing)."""
    import psycopg

    with psycopg.connect(dsn) as con:
        database = con.info.dbname
        for statement in reader_grants(database, reader, schema):
            con.execute(statement)
