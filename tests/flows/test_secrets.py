"""Canary secrets (S3 keys, the catalog's PostgreSQL password, the alert webhook's URL) planted in
the environment never appear in anything the warehouse writes or shows: the command's output,
Prefect's flow runs, logs, artifacts, events and blocks, the `runs` rows and snapshots, the
files under the home and in the bucket, error messages."""

from __future__ import annotations

import shutil
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flows.cli import main
from tests.conftest import SAMPLES
from tests.prefect_records import prefect_records
from tests.servers import PostgresServer, S3Server
from warehouse.catalog import lake_connection
from warehouse.home import Home

pytestmark = pytest.mark.usefixtures("prefect_server")


class Canaries:
    """Secret values unique to one test, and where each was planted."""

    def __init__(self) -> None:
        """Fresh values: letters and digits only, so no encoding can hide one."""
        tag = uuid.uuid4().hex[:12]
        self.values = {
            "AWS_ACCESS_KEY_ID": f"AKIACANARY{tag.upper()}",
            "AWS_SECRET_ACCESS_KEY": f"canarysecret{tag}",
            "PostgreSQL password": f"canarypassword{tag}",
            "WIREHOUSE_ALERT_URL": f"http://127.0.0.1:9/hooks/canarytoken{tag}",
        }
        # the webhook's path is its secret (as a Slack hook's is): found alone, it leaked too
        self.values["webhook token"] = f"canarytoken{tag}"

    def found_in(self, text: str) -> list[str]:
        """The canaries the text holds, by name."""
        return [name for name, value in self.values.items() if value in text]


@pytest.fixture
def canaries() -> Canaries:
    """This test's canary secrets."""
    return Canaries()


@pytest.fixture
def catalog_role(postgres_server: PostgresServer, canaries: Canaries) -> Iterator[str]:
    """A database owned by a role whose password is a canary; yields its connection string."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    role, name = f"canary_{uuid.uuid4().hex[:8]}", f"canary_{uuid.uuid4().hex[:8]}"
    password = canaries.values["PostgreSQL password"]
    with psycopg.connect(postgres_server.dsn("postgres"), autocommit=True) as con:
        con.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
        con.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(role)
            )
        )
    yield make_conninfo(
        host=postgres_server.host,
        port=postgres_server.port,
        user=role,
        password=password,
        dbname=name,
    )
    postgres_server.drop_database(name)
    with psycopg.connect(postgres_server.dsn("postgres"), autocommit=True) as con:
        con.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_canary_secrets_appear_in_no_output(
    tmp_path: Path,
    canaries: Canaries,
    catalog_role: str,
    s3_server: S3Server,
    s3_bucket: str,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefect.settings import PREFECT_API_URL

    started = datetime.now(UTC)
    home = tmp_path / "home"
    monkeypatch.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))
    monkeypatch.setenv("WIREHOUSE_BUILD_DOCS", "1")  # Data Docs are searched too
    monkeypatch.setenv("WIREHOUSE_HOME", str(home))
    monkeypatch.setenv("WIREHOUSE_CATALOG", f"postgres:{catalog_role}")
    monkeypatch.setenv("WIREHOUSE_DATA_PATH", f"s3://{s3_bucket}/lake/")
    monkeypatch.setenv("WIREHOUSE_ALERT_URL", canaries.values["WIREHOUSE_ALERT_URL"])
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_REGION", s3_server.region)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, canaries.values[name])  # moto takes any keys
    shutil.copytree(SAMPLES, tmp_path / "inbox")
    junk = tmp_path / "junk"
    junk.mkdir()
    for n in range(3):
        (junk / f"junk-{n}.txt").write_text(f"not a page {n}\n")
    monkeypatch.setenv("WIREHOUSE_MIN_DUMPS_FOR_RATIO", "1")

    outputs: dict[str, str] = {}

    def command(*argv: str) -> int:
        """Run `wirehouse ARGV` here and keep what it printed."""
        shown = ""
        try:
            code = main(list(argv))
        except SystemExit as exited:  # argparse
            code = int(exited.code or 0)
        except Exception:  # what the console script would print: the traceback, its messages
            code, shown = 1, traceback.format_exc()
        out, err = capfd.readouterr()
        outputs[" ".join(["wirehouse", *argv])] = out + err + shown
        return code

    assert command("ingest", "--inbox", str(tmp_path / "inbox")) == 0, outputs
    assert command("ingest", "--inbox", str(junk), "--max-failure-ratio", "0.1") == 1, outputs
    with lake_connection(Home.from_env()) as con:
        night = str(con.execute("SELECT min(run_id) FROM runs").fetchall()[0][0])
    assert command("status") == 0
    assert command("verify") == 0, outputs
    assert command("sql", "SELECT no_such_column FROM articles") == 2
    assert command("sql", "SELECT count(*) FROM runs") == 0
    # an object that is not there: httpfs's error names the request
    missing = f"SELECT * FROM read_parquet('s3://{s3_bucket}/lake/none.parquet')"
    assert command("sql", missing) == 2
    assert command("sql", "SELECT * FROM duckdb_secrets()") == 2
    assert command("search", "china") == 0
    assert command("rollback", night) == 0, outputs
    assert command("status", "--format", "json") == 0
    # the catalog unreachable: its connection string, password and all, in no message
    closed = catalog_role.replace(f"port={_port(catalog_role)}", "port=9")
    monkeypatch.setenv("WIREHOUSE_CATALOG", f"postgres:{closed}")
    assert command("status") != 0
    assert command("ingest", "--inbox", str(tmp_path / "inbox")) != 0
    monkeypatch.setenv("WIREHOUSE_CATALOG", f"postgres:{catalog_role}")
    with _alerts_installed(capfd) as printed:
        outputs["python -m deployments.alerts"] = printed
        places = {
            **{f"output of `{k}`": v for k, v in outputs.items()},
            **prefect_records(started),
            **_warehouse_records(Home.from_env()),
            **_files_under(home),
            **_objects_in(s3_server, s3_bucket),
        }
    leaks = {place: found for place, text in places.items() if (found := canaries.found_in(text))}
    assert not leaks, leaks
    # the places searched hold what they should: the test would see a leak there
    assert "committed run" in places["Prefect logs"] and night in places["runs rows"]
    assert (
        "nothing was loaded" in outputs[f"wirehouse ingest --inbox {junk} --max-failure-ratio 0.1"]
    )


def _port(dsn: str) -> str:
    """The port of a libpq connection string."""
    from psycopg.conninfo import conninfo_to_dict

    return str(conninfo_to_dict(dsn)["port"])


@contextmanager
def _alerts_installed(capfd: pytest.CaptureFixture[str]) -> Iterator[str]:
    """`python -m deployments.alerts` with WIREHOUSE_ALERT_URL set, for a block: what it printed.
    Its automations are deleted after (later tests' nights alert nobody)."""
    from prefect.client.orchestration import get_client

    from deployments.alerts import automation_specs
    from deployments.alerts import main as alerts

    assert alerts([]) == 0
    out, err = capfd.readouterr()
    try:
        yield out + err
    finally:
        with get_client(sync_client=True) as client:
            for spec in automation_specs(uuid.uuid4()):
                for automation in client.read_automations_by_name(spec["name"]):
                    client.delete_automation(automation.id)


def _warehouse_records(home: Home) -> dict[str, str]:
    """The lake's `runs` rows, its snapshots (their commit messages) and its DuckLake options."""
    with lake_connection(home) as con:
        runs = con.execute("SELECT * FROM runs").fetchall()
        snapshots = con.execute("SELECT * FROM wh.snapshots()").fetchall()
        metadata = con.execute("FROM __ducklake_metadata_wh.ducklake_metadata").fetchall()
    return {"runs rows": str(runs), "snapshots": str(snapshots), "catalog metadata": str(metadata)}


def _files_under(root: Path) -> dict[str, str]:
    """Each file under the home, its bytes read as text (Parquet's strings are kept as bytes)."""
    files = [path for path in root.rglob("*") if path.is_file()]
    assert files, "no file under the home: nothing searched"
    return {str(path): path.read_bytes().decode("latin-1") for path in files}


def _objects_in(s3: S3Server, bucket: str) -> dict[str, str]:
    """Each object of the bucket, its bytes read as text."""
    client = s3.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {
        f"s3://{bucket}/{key}": client.get_object(Bucket=bucket, Key=key)["Body"]
        .read()
        .decode("latin-1")
        for key in keys
    }
