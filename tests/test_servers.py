"""The real-server fixtures work: PostgreSQL via psycopg, S3 via boto3, DuckLake on both."""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import psycopg

if TYPE_CHECKING:
    from tests.servers import PostgresServer, S3Server


DUCKDB_VERSION = "v1.5.5"


def extension_file(name: str) -> Path:
    """The signed .duckdb_extension that the `duckdb-extension-<name>` wheel ships."""
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    assert spec is not None and spec.submodule_search_locations, f"no duckdb_extension_{name}"
    package = Path(next(iter(spec.submodule_search_locations)))
    return package / "extensions" / DUCKDB_VERSION / f"{name}.duckdb_extension"


def test_postgres_table_round_trip(postgres_dsn: str) -> None:
    """A table created in the fresh database holds what was inserted."""
    with psycopg.connect(postgres_dsn) as con:
        con.execute("CREATE TABLE t (id int PRIMARY KEY, name text)")
        con.execute("INSERT INTO t VALUES (1, 'one'), (2, 'two')")
        rows = con.execute("SELECT id, name FROM t ORDER BY id").fetchall()
        server = con.execute("SELECT inet_server_addr()::text, current_setting('server_version')")
        address, version = server.fetchone() or ("", "")
    assert rows == [(1, "one"), (2, "two")]
    assert address.startswith("127.0.0.1")
    assert version.startswith("15")


def test_postgres_databases_are_fresh(postgres_server: PostgresServer, postgres_dsn: str) -> None:
    """Each test gets its own empty database, on the session's one server."""
    assert f"port={postgres_server.port}" in postgres_dsn
    with psycopg.connect(postgres_dsn) as con:
        tables = con.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert tables.fetchone() == (0,)


def test_s3_object_round_trip(s3_server: S3Server, s3_bucket: str) -> None:
    """An object put into the fresh bucket reads back the same."""
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="a/b.txt", Body=b"hello")
    body = client.get_object(Bucket=s3_bucket, Key="a/b.txt")["Body"].read()
    assert body == b"hello"
    assert s3_server.endpoint_url.startswith("http://127.0.0.1:")
    assert s3_server.env()["AWS_ENDPOINT_URL"] == s3_server.endpoint_url


def test_ducklake_on_postgres_and_s3(
    tmp_path: Path, postgres_dsn: str, s3_server: S3Server, s3_bucket: str
) -> None:
    """DuckDB keeps a DuckLake catalog in PostgreSQL and writes its Parquet files to S3."""
    con = duckdb.connect()
    try:
        con.execute(f"SET extension_directory = '{tmp_path / 'extensions'}'")
        for name in ("ducklake", "postgres", "httpfs"):
            con.execute(f"INSTALL '{extension_file(name)}'")
        con.execute(
            f"""CREATE SECRET (TYPE s3, KEY_ID '{s3_server.access_key}',
                SECRET '{s3_server.secret_key}', REGION '{s3_server.region}',
                ENDPOINT '{s3_server.endpoint}', URL_STYLE 'path', USE_SSL false)"""
        )
        con.execute(
            f"ATTACH 'ducklake:postgres:{postgres_dsn}' AS wh (DATA_PATH 's3://{s3_bucket}/lake/')"
        )
        # More rows than DuckLake inlines into the catalog (10), so they land as Parquet.
        con.execute("CREATE TABLE wh.t (id INTEGER, name VARCHAR)")
        con.execute("INSERT INTO wh.t SELECT i, 'row ' || i FROM range(100) AS r(i)")
        count, total = con.execute("SELECT count(*), sum(id) FROM wh.t").fetchone() or (0, 0)
        files = con.execute("SELECT data_file FROM ducklake_list_files('wh', 't')").fetchall()
        con.execute("DETACH wh")
    finally:
        con.close()
    assert (count, total) == (100, sum(range(100)))
    assert files and all(str(path).startswith(f"s3://{s3_bucket}/lake/") for (path,) in files)
    listed = s3_server.client().list_objects_v2(Bucket=s3_bucket, Prefix="lake/")
    keys = [item["Key"] for item in listed.get("Contents", [])]
    assert keys and all(key.endswith(".parquet") for key in keys), keys
    # The catalog is real PostgreSQL tables, in the test's own database.
    with psycopg.connect(postgres_dsn) as pg:
        tables = pg.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'ducklake_%'")
        assert (tables.fetchone() or (0,))[0] > 0


def test_bucket_names_are_unique(s3_server: S3Server) -> None:
    """create_bucket makes what it is asked for, and fixtures' buckets do not collide."""
    name = f"test-{uuid.uuid4().hex[:16]}"
    assert s3_server.create_bucket(name) == name
    buckets = {bucket["Name"] for bucket in s3_server.client().list_buckets()["Buckets"]}
    assert name in buckets
