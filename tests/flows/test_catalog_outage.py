"""The catalog's PostgreSQL stopped and started again under a night, and for readers: a short
outage is waited for and the night equals a clean one; a lasting one fails the night in one
clear sentence, changing nothing, and the next night converges. Each test stops a server of
its own (bench/pg_local.py), never the session's."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bench.pg_local import PostgresServer, StopMode
from flows.cli import main
from flows.nightly import nightly_ingest
from tests.prefect_records import prefect_records
from tests.servers import own_postgres
from tests.state import empty_snapshot, snapshot
from warehouse.catalog import lake_connection
from warehouse.home import Home
from warehouse.outage import ServiceUnavailable
from warehouse.verify import verify

pytestmark = pytest.mark.usefixtures("prefect_server")
# Sent with every connection and ignored by the trust-auth server: it must show nowhere.
CANARY = "canary-pw-8d1f"


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[Any, ...]]]:
    """What a clean night builds from the sample inbox (on the embedded catalog)."""
    import shutil

    from tests.conftest import SAMPLES

    folder = tmp_path_factory.mktemp("reference")
    shutil.copytree(SAMPLES, folder / "inbox")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WIREHOUSE_BUILD_DOCS", "0")
        nightly_ingest(inbox=str(folder / "inbox"), home=str(folder / "home"))
    return snapshot(folder / "home")


@pytest.fixture
def catalog(monkeypatch: pytest.MonkeyPatch) -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test's own, its database the catalog of the homes made here;
    retries quick, so that an outage outlasting them is found in seconds."""
    with own_postgres() as server:
        dsn = server.create_database("catalog") + f" password={CANARY}"
        monkeypatch.setenv("WIREHOUSE_CATALOG", f"postgres:{dsn}")
        monkeypatch.setenv("WIREHOUSE_BUILD_DOCS", "0")
        monkeypatch.setenv("WIREHOUSE_RETRY_SECONDS", "0.5")  # 0.5 + 1 + 2 + 4 + 8 s at most
        monkeypatch.setenv("WIREHOUSE_RETRIES", "5")
        yield server


@contextmanager
def outage(
    server: PostgresServer,
    log: Path,
    point: str,
    down_seconds: float | None,
    mode: StopMode = "fast",
) -> Iterator[threading.Event]:
    """Stop the server once the night in this process passes checkpoint `point` (held there
    by WIREHOUSE_PAUSE_AT), start it again `down_seconds` later (None: after the block).
    The event yielded is set once the server was stopped."""
    stopped, finished = threading.Event(), threading.Event()

    def disturb() -> None:
        while not finished.wait(0.05):
            if log.exists() and point in log.read_text().split():
                server.stop(mode)
                stopped.set()
                break
        if stopped.is_set() and down_seconds is not None:
            finished.wait(down_seconds)
            server.start()

    thread = threading.Thread(target=disturb, daemon=True)
    thread.start()
    try:
        yield stopped
    finally:
        finished.set()
        thread.join()
        if not server.running:
            server.start()


def held_at(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, point: str, seconds: float) -> Path:
    """Arm the night to pause at `point`; the checkpoint log it writes."""
    log = tmp_path / "checkpoints.log"
    monkeypatch.setenv("WIREHOUSE_PAUSE_AT", f"{point}:{seconds}")
    monkeypatch.setenv("WIREHOUSE_CHECKPOINT_LOG", str(log))
    return log


def runs(home: Path) -> list[tuple[Any, ...]]:
    """The runs rows' outcomes."""
    with lake_connection(Home.from_env(home)) as con:
        return con.execute("SELECT status, files_new, articles FROM runs").fetchall()


def assert_clean(summary: dict[str, Any], home: Path, reference: Any) -> None:
    """The night succeeded, and the warehouse is what a clean night builds, invariants held."""
    assert summary["status"] == "succeeded" and summary["violations"] == []
    assert snapshot(Home.from_env(home)) == reference
    assert verify(Home.from_env(home)) == []


def test_a_catalog_restarted_mid_night_is_waited_for(
    catalog: PostgresServer,
    sample_inbox: Path,
    tmp_path: Path,
    reference: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = tmp_path / "home"
    log = held_at(monkeypatch, tmp_path, "parse:batch", 1)
    # Down past the pause: the dedupe's reading of the catalog meets it down, and is retried.
    with outage(catalog, log, "parse:batch", down_seconds=4) as stopped:
        summary = nightly_ingest(inbox=str(sample_inbox), home=str(home))
    assert stopped.is_set()
    assert_clean(summary, home, reference)
    assert len(runs(home)) == 1


# Inside the commit's transaction, its rows inserted; and just before its COMMIT, which then
# meets a broken connection.
@pytest.mark.parametrize("point", ["load:rows", "load:commit"])
def test_a_catalog_restarted_mid_commit_commits_the_night_once(
    point: str,
    catalog: PostgresServer,
    sample_inbox: Path,
    tmp_path: Path,
    reference: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = tmp_path / "home"
    log = held_at(monkeypatch, tmp_path, point, 1)
    # the server dies as in a crash, and is back 2 s later
    with outage(catalog, log, point, down_seconds=2, mode="immediate") as stopped:
        summary = nightly_ingest(inbox=str(sample_inbox), home=str(home))
    assert stopped.is_set()
    # the commit was tried again: each file registered, each row inserted, once
    assert log.read_text().split().count(point) == 2
    assert_clean(summary, home, reference)
    assert runs(home) == [("succeeded", 78, 69)]


def test_a_lasting_outage_fails_the_night_clearly_and_the_next_converges(
    catalog: PostgresServer,
    sample_inbox: Path,
    tmp_path: Path,
    reference: Any,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from prefect.settings import PREFECT_API_URL

    home = tmp_path / "home"
    started = datetime.now(UTC)
    # the command uses the session's Prefect server rather than start one of its own
    monkeypatch.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))
    monkeypatch.setenv("WIREHOUSE_RETRY_SECONDS", "0.2")
    monkeypatch.setenv("WIREHOUSE_RETRIES", "2")
    # held inside the commit's transaction until the server is down: the commit is never sent
    log = held_at(monkeypatch, tmp_path, "load:rows", 2)
    with outage(catalog, log, "load:rows", down_seconds=None) as stopped:
        code = main(["--home", str(home), "ingest", "--inbox", str(sample_inbox)])
    assert stopped.is_set()
    told = capfd.readouterr().err
    assert code == 1
    failed = [line for line in told.splitlines() if line.startswith("night failed:")]
    assert len(failed) == 1, told
    assert f"the catalog (PostgreSQL at 127.0.0.1:{catalog.port}) is unavailable" in failed[0]
    assert "nothing was changed" in failed[0] and "then run again" in failed[0]
    assert "Traceback" not in told and CANARY not in failed[0]
    # Nor anywhere Prefect keeps the failed tries: their log lines, the task runs' states
    # (DuckDB quotes the whole connection string when it cannot reach the catalog).
    assert CANARY not in told
    kept = prefect_records(started)
    assert "load" in kept["Prefect task runs"], "the night's task runs were not found"
    assert [where for where, text in kept.items() if CANARY in text] == []
    # the server is back (the block ended): nothing of the night is in the warehouse
    assert snapshot(Home.from_env(home)) == empty_snapshot()
    assert runs(home) == []
    monkeypatch.delenv("WIREHOUSE_PAUSE_AT")
    summary = nightly_ingest(inbox=str(sample_inbox), home=str(home))
    assert summary["status"] == "succeeded"
    assert snapshot(Home.from_env(home)) == reference
    assert verify(Home.from_env(home)) == []


def test_a_night_that_cannot_reach_the_catalog_at_all_changes_nothing(
    catalog: PostgresServer,
    sample_inbox: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from prefect.settings import PREFECT_API_URL

    monkeypatch.setenv("WIREHOUSE_RETRY_SECONDS", "0.1")
    monkeypatch.setenv("WIREHOUSE_RETRIES", "1")
    catalog.stop()
    with pytest.raises(ServiceUnavailable, match="nothing was changed") as failed:
        nightly_ingest(inbox=str(sample_inbox), home=str(tmp_path / "home"))
    assert failed.value.service == f"the catalog (PostgreSQL at 127.0.0.1:{catalog.port})"
    assert CANARY not in str(failed.value)
    # The command too, whose check of the run lock before the flow meets the catalog down first
    monkeypatch.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))
    capfd.readouterr()
    code = main(["--home", str(tmp_path / "home"), "ingest", "--inbox", str(sample_inbox)])
    told = capfd.readouterr().err
    assert code == 1
    assert [line for line in told.splitlines() if line.startswith("night failed:")] == [
        f"night failed: {failed.value}"
    ], told
    assert "Traceback" not in told and CANARY not in told
    catalog.start()
    with psycopg.connect(catalog.dsn("catalog")) as con:
        made = con.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'ducklake%'")
        assert made.fetchall() == [(0,)]  # not even the lake's tables were made


READERS = (["sql", "SELECT count(*) FROM articles"], ["status"], ["search", "china"])


def test_a_reader_during_an_outage_is_told_to_retry(
    catalog: PostgresServer,
    sample_inbox: Path,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    home = tmp_path / "home"
    nightly_ingest(inbox=str(sample_inbox), home=str(home))
    catalog.stop("immediate")
    for command in READERS:
        capfd.readouterr()
        code = main(["--home", str(home), *command])
        out = capfd.readouterr()
        assert code == 1, command
        lines = out.err.strip().splitlines()
        assert len(lines) == 1, out.err
        assert lines[0].startswith(
            f"unavailable: the catalog (PostgreSQL at 127.0.0.1:{catalog.port})"
        )
        assert "then run again" in lines[0] and CANARY not in out.err + out.out
        assert out.out == ""
    catalog.start()  # once it is back, the same commands answer
    for command in READERS:
        assert main(["--home", str(home), *command]) == 0, command


def night_run_id(home: Path) -> str:
    """The run id of the home's one night."""
    with lake_connection(Home.from_env(home)) as con:
        return str(con.execute("SELECT run_id FROM runs WHERE kind = 'nightly'").fetchone()[0])


def operation(name: str, home: Path) -> list[str]:
    """The command of operation `name` on the home."""
    return {
        "rollback": ["rollback", night_run_id(home)],
        "compact": ["compact"],
        "reprocess": ["reprocess"],
    }[name]


# What each operation leaves in `runs`: (kind, status) of every row.
OPERATED = {
    "rollback": [("nightly", "rolled_back"), ("rollback", "succeeded")],
    "compact": [("nightly", "succeeded")],
    "reprocess": [("nightly", "succeeded"), ("reprocess", "succeeded")],
}


DOING = {"rollback": "the rollback", "compact": "the compaction", "reprocess": "the reprocess"}


def operated(
    name: str, inbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, Any, list[str]]:
    """A home one night made, its rows, and the command of operation `name` on it (run with
    `main`, on the session's Prefect server)."""
    from prefect.settings import PREFECT_API_URL

    home = tmp_path / "home"
    nightly_ingest(inbox=str(inbox), home=str(home))
    monkeypatch.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))
    return home, snapshot(Home.from_env(home)), operation(name, home)


def kinds(home: Path) -> list[tuple[Any, ...]]:
    with lake_connection(Home.from_env(home)) as con:
        return con.execute("SELECT kind, status FROM runs ORDER BY started_at").fetchall()


@pytest.mark.parametrize("name", sorted(OPERATED))
def test_an_operation_waits_for_a_restarted_catalog(
    name: str,
    catalog: PostgresServer,
    sample_inbox: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    home, before, command = operated(name, sample_inbox, tmp_path, monkeypatch)
    # held once the lake is open: the work then meets the catalog gone, and is tried again
    log = held_at(monkeypatch, tmp_path, "recovered", 1)
    with outage(catalog, log, "recovered", down_seconds=2, mode="immediate") as stopped:
        code = main(["--home", str(home), *command])
    told = capfd.readouterr().err
    assert stopped.is_set()
    assert code == 0, told
    assert "Traceback" not in told and CANARY not in told
    assert log.read_text().split().count("recovered") >= 2  # opened again after the outage
    assert kinds(home) == OPERATED[name]
    assert verify(Home.from_env(home)) == []
    if name != "rollback":  # compaction and an unchanged parser's replay change no row
        assert snapshot(Home.from_env(home)) == before


@pytest.mark.parametrize("name", sorted(OPERATED))
def test_an_operation_in_a_lasting_outage_fails_clearly_and_changes_nothing(
    name: str,
    catalog: PostgresServer,
    sample_inbox: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    home, before, command = operated(name, sample_inbox, tmp_path, monkeypatch)
    monkeypatch.setenv("WIREHOUSE_RETRY_SECONDS", "0.2")
    monkeypatch.setenv("WIREHOUSE_RETRIES", "2")
    log = held_at(monkeypatch, tmp_path, "recovered", 1)
    capfd.readouterr()
    with outage(catalog, log, "recovered", down_seconds=None) as stopped:
        code = main(["--home", str(home), *command])
    told = capfd.readouterr().err
    assert stopped.is_set()
    assert code == 1, told
    lines = told.strip().splitlines()
    said = [line for line in lines if line.startswith("unavailable:")]
    assert said == [
        f"unavailable: the catalog (PostgreSQL at 127.0.0.1:{catalog.port}) is unavailable, "
        f"{DOING[name]} stopped: nothing was changed. Start it or check it (the server, the "
        "network, its address in WIREHOUSE_CATALOG), then run again."
    ], told
    assert "Traceback" not in told and CANARY not in told
    monkeypatch.delenv("WIREHOUSE_PAUSE_AT")
    assert snapshot(Home.from_env(home)) == before  # the server is back: nothing changed
    assert kinds(home) == [("nightly", "succeeded")]


def test_a_run_lock_taken_by_another_run_during_a_restart_stops_the_commit(
    catalog: PostgresServer,
    sample_inbox: Path,
    tmp_path: Path,
    reference: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A restart ends the session that held the night's advisory lock: a run on another
    machine may take it then. The night takes it again before it commits, or stops there."""
    from warehouse.lock import ADVISORY_KEY, RunLocked

    home = tmp_path / "home"
    log = held_at(monkeypatch, tmp_path, "load:rows", 4)
    other = None
    with outage(catalog, log, "load:rows", down_seconds=1, mode="immediate") as stopped:

        def take_it_when_back() -> None:
            nonlocal other
            stopped.wait(60)
            for _ in range(100):
                try:
                    other = psycopg.connect(catalog.dsn("catalog"), autocommit=True)
                    break
                except psycopg.OperationalError:
                    threading.Event().wait(0.1)
            assert other is not None
            other.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_KEY])

        intruder = threading.Thread(target=take_it_when_back, daemon=True)
        intruder.start()
        with pytest.raises(RunLocked, match="another run is in progress"):
            nightly_ingest(inbox=str(sample_inbox), home=str(home))
        intruder.join()
    assert stopped.is_set() and other is not None
    assert runs(home) == []  # nothing of the night was committed
    assert snapshot(Home.from_env(home)) == empty_snapshot()
    other.close()  # the other run ends: the next night converges
    monkeypatch.delenv("WIREHOUSE_PAUSE_AT")
    assert_clean(nightly_ingest(inbox=str(sample_inbox), home=str(home)), home, reference)
