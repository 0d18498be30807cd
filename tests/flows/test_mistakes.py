"""A user's mistakes and hostile strings at the `wirehouse` command: one line, exit 2, no change.

The command runs in this process (`flows.cli.main`), its output read from the file descriptors.
"""

from __future__ import annotations

import logging
import shutil
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from flows.cli import main
from flows.nightly import nightly_ingest
from tests.conftest import SAMPLES
from warehouse.catalog import lake_connection
from warehouse.home import TABLES, Home
from warehouse.lock import run_lock

pytestmark = pytest.mark.usefixtures("prefect_server")

# Sent where a run id, a layout or a file name goes: a quote, a statement, a newline, a control.
INJECTIONS = ("x' OR '1'='1", "x'; DROP TABLE articles; --", "it's\nnew\x01line")


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, prefect_server: None) -> Iterator[Path]:
    """A warehouse of the sample inbox, shared by the tests that leave it unchanged."""
    root = tmp_path_factory.mktemp("mistakes")
    shutil.copytree(SAMPLES, root / "inbox")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WIREHOUSE_BUILD_DOCS", "0")
        nightly_ingest(inbox=str(root / "inbox"), home=str(root / "home"))
        yield root / "home"


@pytest.fixture
def api_url(monkeypatch: pytest.MonkeyPatch) -> str:
    """The session server, named as a deployment would, so the command starts none of its own."""
    from prefect.settings import PREFECT_API_URL

    url = str(PREFECT_API_URL.value())
    monkeypatch.setenv("PREFECT_API_URL", url)
    return url


def state(home: Path) -> dict[str, int]:
    """Each table's row count and the latest snapshot: what a refused command must not move."""
    with lake_connection(Home.from_env(home)) as con:
        found = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in TABLES}
        found["snapshot"] = con.execute("SELECT max(snapshot_id) FROM wh.snapshots()").fetchall()[
            0
        ][0]
    return found


def refused(capfd: pytest.CaptureFixture[str], argv: Sequence[str], text: str) -> None:
    """`wirehouse ARGV` exits 2 with one line `error: ...` holding `text`, no traceback, no flow."""
    logged = _Records()
    flow_runs = logging.getLogger("prefect.flow_runs")
    flow_runs.addHandler(logged)
    try:
        code = main(list(argv))
    finally:
        flow_runs.removeHandler(logged)
    out, err = capfd.readouterr()
    assert code == 2, err
    assert not logged.records, "refused only once a flow had started"
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], err


def run_id(home: Path) -> str:
    with lake_connection(Home.at(home)) as con:
        return str(con.execute("SELECT min(run_id) FROM runs").fetchall()[0][0])


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["rollback", "nope"], "no run nope in this warehouse"),
        (["rollback", "[/]"], "no run [/] in"),
        (["reprocess", "--layout", "nope"], "no dump of layout 'nope'"),
        (["reprocess", "--since", "2020-01-02", "--until", "2020-01-01"], "is after --until"),
        (["backfill", str(SAMPLES), "--since", "2020-01-02", "--until", "2020-01-01"], "is after"),
        (["sql", "--as-of", "nope", "SELECT 1"], "no snapshot of run nope"),
        (["ingest", "--inbox", "/nonexistent/inbox"], "no such inbox"),
        (["backfill", "/nonexistent/inbox"], "no such inbox"),
        (["verify", "--inbox", "/nonexistent/inbox"], "no such inbox"),
    ],
)
def test_a_mistake_is_one_line_before_any_flow_starts(
    lake: Path, capfd: pytest.CaptureFixture[str], argv: list[str], text: str
) -> None:
    before = state(lake)
    refused(capfd, ["--home", str(lake), *argv], text)
    assert state(lake) == before


def test_without_a_warehouse_every_command_says_so(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    home = ["--home", str(tmp_path / "empty")]
    for argv in (["status"], ["verify"], ["compact"], ["reprocess"], ["rollback", "x"], ["shell"]):
        refused(capfd, [*home, *argv], "no warehouse at")
    refused(capfd, [*home, "sql", "SELECT 1"], "no warehouse at")


def test_a_postgres_catalog_no_night_made_a_warehouse_in_says_so(
    postgres_dsn: str,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WIREHOUSE_CATALOG", f"postgres:{postgres_dsn}")
    home = ["--home", str(tmp_path / "empty")]
    for argv in (["status"], ["sql", "SELECT 1"], ["search", "china"]):
        refused(capfd, [*home, *argv], "no warehouse at postgres:")


def test_a_home_that_is_a_file_or_is_locked(
    lake: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("not a home")
    refused(capfd, ["--home", str(tmp_path / "file"), "ingest", "--inbox", str(SAMPLES)], "a file")
    before = state(lake)
    with run_lock(Home.at(lake)):
        for argv in (["rollback", run_id(lake)], ["compact"], ["reprocess"]):
            refused(capfd, ["--home", str(lake), *argv], "another run is in progress")
    assert state(lake) == before


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "--limit", "-1"],
        ["ingest", "--max-failure-ratio", "2"],
        ["backfill", "x", "--max-failure-ratio", "nan"],
        ["reprocess", "--since", "notadate"],
    ],
)
def test_a_bad_option_value_is_argparse_s_usage_error(
    capfd: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capfd.readouterr()
    assert exited.value.code == 2
    assert "Traceback" not in out + err and "error: argument" in err.splitlines()[-1], err


def test_a_malformed_scheduler_address_is_refused_without_a_traceback(
    lake: Path, api_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    before = state(lake)
    logged = _Records()
    flow_runs = logging.getLogger("prefect.flow_runs")
    flow_runs.addHandler(logged)
    try:
        code = main(["--home", str(lake), "reprocess", "--dask-scheduler", "garbage"])
    finally:
        flow_runs.removeHandler(logged)
    out, err = capfd.readouterr()
    assert code == 1 and "reprocess refused: cannot reach the Dask scheduler at garbage" in err
    assert "Traceback" not in out + err
    # Prefect still says the run failed, and why, but without the traceback.
    failed = [r for r in logged.records if "ClusterRefused" in r.getMessage()]
    assert failed and not any(r.exc_info for r in logged.records)
    assert state(lake) == before


class _Records(logging.Handler):
    """Keeps the records a logger handles."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_injection_strings_are_refused_and_change_nothing(
    lake: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    before = state(lake)
    home = ["--home", str(lake)]
    for text in INJECTIONS:
        shown = text.replace("\n", "\\n").replace("\x01", "\\x01")  # one line, escaped
        refused(capfd, [*home, "rollback", text], f"no run {shown} in")
        refused(capfd, [*home, "reprocess", "--layout", text], f"no dump of layout {text!r}")
        refused(capfd, [*home, "sql", "--as-of", text, "SELECT 1"], f"no snapshot of run {shown}")
    assert state(lake) == before


def test_dump_names_with_quotes_and_control_characters_are_kept(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WIREHOUSE_BUILD_DOCS", "0")
    inbox, home = tmp_path / "inbox", tmp_path / "home"
    inbox.mkdir()
    dumps = sorted(SAMPLES.rglob("*.txt"))[: 2 * len(INJECTIONS)]
    names = [f"{text}.txt" for text in INJECTIONS]
    for dump, name in zip(dumps, names, strict=False):
        (inbox / name).write_bytes(dump.read_bytes())
    bundle = f"{INJECTIONS[0]}.zip"
    with zipfile.ZipFile(inbox / bundle, "w") as archive:
        for dump, name in zip(dumps[len(INJECTIONS) :], names, strict=True):
            archive.writestr(name, dump.read_bytes())
    names += [bundle, *(f"{bundle}!{name}" for name in names)]
    nightly_ingest(inbox=str(inbox), home=str(home))
    with lake_connection(Home.at(home)) as con:
        fates = dict(con.execute("SELECT dump_file, status FROM files").fetchall())
    assert sorted(fates) == sorted(names)
    assert set(fates.values()) <= {"loaded", "quarantined", "duplicate", "unpacked"}
    assert state(home)["articles"] > 0
    assert main(["--home", str(home), "verify", "--inbox", str(inbox)]) == 0, capfd.readouterr()
    assert "Traceback" not in "".join(capfd.readouterr())


def test_sql_cannot_change_the_warehouse(
    lake: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    before = state(lake)
    files = sorted((lake / "lake").rglob("*"))
    out = tmp_path / "out"
    home = ["--home", str(lake), "sql"]
    for query, text in (
        ("DELETE FROM articles", "not DELETE"),
        ("INSERT INTO runs (run_id) VALUES ('x')", "not INSERT"),
        ("UPDATE articles SET title = 'x'", "not UPDATE"),
        ("DROP TABLE articles", "not DROP"),
        ("CREATE TABLE t AS SELECT 1", "not CREATE"),
        (f"ATTACH '{tmp_path / 'other.db'}' AS other", "not ATTACH"),
        (f"COPY articles TO '{out}.csv'", "not COPY"),
        (f"EXPLAIN ANALYZE COPY (SELECT 1) TO '{out}.csv'", "only a SELECT can be explained"),
        ("EXPLAIN ANALYZE DELETE FROM articles", "only a SELECT can be explained"),
        ("SELECT * FROM ducklake_expire_snapshots('wh', versions => [1])", "read-only"),
        ("SELECT * FROM wh.set_option('parquet_compression', 'gzip')", "read-only"),
        ("SELECT 1; DELETE FROM articles", "exactly one SQL statement"),
    ):
        refused(capfd, [*home, query], text)
    assert state(lake) == before
    assert not list(tmp_path.iterdir())
    assert sorted((lake / "lake").rglob("*")) == files


def test_shell_cannot_change_the_warehouse(lake: Path, capfd: pytest.CaptureFixture[str]) -> None:
    before = state(lake)
    code = main(["--home", str(lake), "shell", "--", "-c", "DELETE FROM articles"])
    _, err = capfd.readouterr()
    assert code != 0 and "read-only" in err, err
    assert state(lake) == before


def test_a_home_catalog_and_data_path_with_quotes_work(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """They reach ATTACH as quoted literals (it takes no parameters), never as SQL."""
    monkeypatch.setenv("WIREHOUSE_BUILD_DOCS", "0")
    home = tmp_path / INJECTIONS[1]
    monkeypatch.setenv("WIREHOUSE_CATALOG", f"sqlite:{tmp_path / INJECTIONS[0]}.sqlite")
    monkeypatch.setenv("WIREHOUSE_DATA_PATH", str(tmp_path / "it's data") + "/")
    inbox = tmp_path / "inbox"
    shutil.copytree(SAMPLES, inbox)
    nightly_ingest(inbox=str(inbox), home=str(home))
    assert (tmp_path / f"{INJECTIONS[0]}.sqlite").is_file()
    assert list((tmp_path / "it's data").rglob("*.parquet"))
    assert main(["--home", str(home), "verify"]) == 0, capfd.readouterr()
    assert main(["--home", str(home), "sql", "SELECT count(*) FROM articles"]) == 0
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err and "(1 row)" in out
    assert state(home)["articles"] > 0
