"""The `wirehouse` command as a user runs it: a real process, against the session's server."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from tests.conftest import REPO
from warehouse.home import Home
from warehouse.lock import run_lock

WIREHOUSE = [sys.executable, "-m", "flows.cli"]


@pytest.fixture
def api_url(prefect_server: None) -> str:
    """The session server's address, handed to the child process like a deployment would."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    assert url
    return str(url)


def run(*args: str, home: Path, api_url: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `wirehouse ARGS` in a child process with its own environment."""
    env = dict(os.environ, WIREHOUSE_HOME=str(home), WIREHOUSE_BUILD_DOCS="0", COLUMNS="200")
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return subprocess.run(
        [*WIREHOUSE, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )


def one_line_error(result: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    """A user error: the given exit status and one clear line, no traceback."""
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and text in lines[0], result.stderr


def test_ingest_alone_starts_a_temporary_server_and_stops_it(
    sample_inbox: Path, home: Path, tmp_path: Path
) -> None:
    """`make run`'s way: no Prefect API configured, so the command starts Prefect's temporary
    server itself before its imports, the flow uses it (Prefect starts none of its own), and
    it is not left running when the command exits."""
    env = _without_api(home, tmp_path / "prefect")
    log = tmp_path / "output.txt"
    with log.open("w") as out:  # a file, not a pipe: a server left running would hold a pipe
        code = _start_ingest(sample_inbox, env, stdout=out, stderr=subprocess.STDOUT).wait(600)
    output = log.read_text()
    assert code == 0, output[-3000:]
    assert "articles loaded" in output
    started = re.search(r"Using a temporary Prefect server on http://127\.0\.0\.1:(\d+)", output)
    assert started, output[-3000:]
    assert "Starting temporary server" not in output  # Prefect's own: the flow used this one
    assert "View at" not in output  # no links to a UI that is not served
    assert f"Stopping the temporary Prefect server on http://127.0.0.1:{started.group(1)}" in output
    assert not _servers_of(tmp_path / "prefect", port=started.group(1))


def test_ingest_uses_the_api_a_profile_names(
    sample_inbox: Path, home: Path, tmp_path: Path, api_url: str
) -> None:
    """The temporary server starts before Prefect reads its settings: when the active profile
    names an API, the command stops that server and the night is recorded by the profile's."""
    prefect_home = tmp_path / "prefect"
    prefect_home.mkdir()
    profile = f'active = "night"\n\n[profiles.night]\nPREFECT_API_URL = "{api_url}"\n'
    (prefect_home / "profiles.toml").write_text(profile)
    env = _without_api(home, prefect_home)
    child = _start_ingest(sample_inbox, env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = child.communicate(timeout=600)
    assert child.returncode == 0, output[-3000:]
    assert "articles loaded" in output
    assert "Prefect's settings name an API" in output
    assert "Using a temporary Prefect server" not in output
    assert "Starting temporary server" not in output  # nor did Prefect start its own
    assert not _servers_of(prefect_home)
    runs = _flow_runs_of(api_url, home)
    assert runs == ["Completed"], runs


def test_a_server_that_does_not_answer_in_time_is_one_clear_error(
    sample_inbox: Path, home: Path, tmp_path: Path
) -> None:
    env = _without_api(
        home, tmp_path / "prefect", PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="1"
    )
    child = _start_ingest(sample_inbox, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr = child.communicate(timeout=600)
    assert child.returncode == 2, stderr
    assert "Traceback" not in stderr + stdout
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr  # beside Prefect's own log lines
    assert "did not answer within 1 s" in errors[0]
    assert "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS" in errors[0]
    assert not _servers_of(tmp_path / "prefect")
    assert not (home / "catalog.sqlite").exists()  # nothing was started, nothing recorded


def _flow_runs_of(api_url: str, home: Path) -> list[str | None]:
    """The states, on the server at api_url, of the flow runs the warehouse's runs name."""
    from prefect.client.orchestration import get_client

    import warehouse

    with warehouse.connect(home) as con:
        ids = [row[0] for row in con.execute("SELECT flow_run_id FROM runs").fetchall()]
    assert ids and all(ids), ids
    with get_client(sync_client=True) as client:
        assert str(client.api_url).rstrip("/") == api_url.rstrip("/")
        return [client.read_flow_run(UUID(i)).state_name for i in ids]


def test_a_killed_ingest_takes_its_temporary_server_with_it(
    sample_inbox: Path, home: Path, tmp_path: Path
) -> None:
    """SIGKILL runs no exit handler: the server must notice by itself that its command is gone."""
    prefect_home = tmp_path / "prefect"
    env = _without_api(home, prefect_home)
    child = _start_ingest(sample_inbox, env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _eventually(lambda: bool(_servers_of(prefect_home)), 120), "no server started"
    finally:
        child.kill()
        child.wait()
    assert _eventually(lambda: not _servers_of(prefect_home), 30), _servers_of(prefect_home)


def test_a_server_whose_command_died_before_it_started_exits_too(tmp_path: Path) -> None:
    """The command can die before the server runs its first line: by then the server's parent
    is whoever adopted it, so the server must be told which process to outlive no longer."""
    prefect_home = tmp_path / "prefect"
    env = dict(os.environ, PREFECT_HOME=str(prefect_home))
    start_and_die = (
        "import os\n"
        "from flows.server import TemporaryServer\n"
        "TemporaryServer().start()\n"
        "os._exit(0)  # at once: no exit handler stops the server\n"
    )
    subprocess.run([sys.executable, "-c", start_and_die], env=env, cwd=REPO, check=True)
    assert _eventually(lambda: not _servers_of(prefect_home), 30), _servers_of(prefect_home)


def _eventually(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _without_api(home: Path, prefect_home: Path, **extra: str) -> dict[str, str]:
    """The environment of a `wirehouse ingest` with no Prefect API configured, as `make run`'s."""
    env = dict(os.environ, WIREHOUSE_HOME=str(home), PREFECT_HOME=str(prefect_home), COLUMNS="200")
    env.update(extra)
    env.pop("PREFECT_API_URL", None)
    return env


def _start_ingest(inbox: Path, env: dict[str, str], **popen: Any) -> subprocess.Popen[str]:
    """`wirehouse ingest --inbox INBOX` started in a child process."""
    command = [*WIREHOUSE, "ingest", "--inbox", str(inbox)]
    return subprocess.Popen(command, cwd=REPO, env=env, text=True, **popen)


def _servers_of(prefect_home: Path, port: str | None = None) -> list[int]:
    """Prefect API processes started with this PREFECT_HOME, on `port` if given (Linux /proc)."""
    found = []
    home = f"PREFECT_HOME={prefect_home}".encode()
    for entry in Path("/proc").iterdir():
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            b"prefect.server.api.server:create_app" in words
            and home in environ
            and (port is None or port.encode() in words)
        ):
            found.append(int(entry.name))
    return found


def test_ingest_then_query_and_status(sample_inbox: Path, home: Path, api_url: str) -> None:
    result = run("ingest", "--inbox", str(sample_inbox), home=home, api_url=api_url)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "succeeded" in result.stdout and "articles loaded" in result.stdout
    assert "duplicates: same_page" in result.stdout

    counted = run(
        "sql", "SELECT count(*) AS n FROM articles WHERE layout = 'chinaview-2008'", home=home
    )
    assert counted.returncode == 0 and "│ 5 " in counted.stdout

    status = run("status", home=home)
    assert status.returncode == 0 and "succeeded" in status.stdout

    # the run was recorded by the server named in PREFECT_API_URL
    from prefect.client.orchestration import get_client

    async def flow_run_names() -> list[str]:
        async with get_client() as client:
            runs = await client.read_flow_runs()
            flows = {f.id: f.name for f in await client.read_flows()}
            return [flows[r.flow_id] for r in runs]

    assert "nightly-ingest" in asyncio.run(flow_run_names())


def test_sql_and_status_print_for_programs_and_never_cut_a_value(
    sample_inbox: Path,
    home: Path,
    api_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """json and csv carry the rows alone; a table piped (capsys is no terminal) into a narrow
    COLUMNS still shows every value whole."""
    assert run("ingest", "--inbox", str(sample_inbox), home=home, api_url=api_url).returncode == 0
    import warehouse
    from flows.cli import main

    query = "SELECT * FROM runs"
    with warehouse.connect(home) as con:
        result = con.execute(query)
        columns = [d[0] for d in result.description]
        rows = result.fetchall()
    assert len(rows[0][0]) > 20  # a run id, cut to `r…` by an 80-column table before

    def output(*args: str) -> str:
        assert main(["--home", str(home), *args]) == 0
        return capsys.readouterr().out

    as_json = json.loads(output("sql", "--format", "json", query))
    assert len(as_json) == len(rows) and all(list(record) == columns for record in as_json)
    first = dict(zip(columns, rows[0], strict=True))
    assert as_json[0]["run_id"] == first["run_id"] and as_json[0]["articles"] == first["articles"]
    assert as_json[0]["started_at"] == first["started_at"].isoformat()
    as_csv = list(csv.reader(io.StringIO(output("sql", "--format", "csv", query))))
    assert as_csv == [columns, *([("" if v is None else str(v)) for v in row] for row in rows)]
    monkeypatch.setenv("COLUMNS", "40")
    table = output("sql", query)
    for value in rows[0]:
        assert value is None or str(value) in table
    assert "…" not in table
    runs = json.loads(output("status", "--format", "json"))
    assert [run["run_id"] for run in runs] == [rows[0][0]] and "anomalies" in runs[0]
    assert "warehouse:" in output("status")


def test_an_unknown_format_is_argparses_error(capsys: pytest.CaptureFixture[str]) -> None:
    from flows.cli import main

    with pytest.raises(SystemExit) as exit:
        main(["sql", "--format", "xml", "SELECT 1"])
    assert exit.value.code == 2 and "invalid choice: 'xml'" in capsys.readouterr().err


def test_user_errors_are_one_clear_line(home: Path, tmp_path: Path) -> None:
    one_line_error(run("sql", "SELECT 1", home=home), 2, "no warehouse at")
    one_line_error(run("ingest", "--inbox", str(tmp_path / "nope"), home=home), 2, "no such inbox")


def test_sql_is_read_only_and_bad_sql_is_one_line(
    sample_inbox: Path, home: Path, api_url: str
) -> None:
    assert run("ingest", "--inbox", str(sample_inbox), home=home, api_url=api_url).returncode == 0
    one_line_error(run("sql", "DROP VIEW articles", home=home), 2, "only read-only")
    one_line_error(run("sql", "SELEC title FROM articles", home=home), 2, "error")
    one_line_error(run("sql", "SELECT nope FROM articles", home=home), 2, "nope")
    assert run("sql", "SELECT count(*) FROM articles", home=home).returncode == 0


def test_a_second_run_during_a_run_exits_with_a_clear_message(
    sample_inbox: Path, home: Path, api_url: str
) -> None:
    with run_lock(Home.at(home)):
        result = run("ingest", "--inbox", str(sample_inbox), home=home, api_url=api_url)
    one_line_error(result, 2, "another run is in progress")


def test_time_travel_shell_rollback_and_compact_from_the_command_line(
    sample_inbox: Path, home: Path, tmp_path: Path, api_url: str
) -> None:
    first = tmp_path / "night1"
    (first / "2019").mkdir(parents=True)
    for dump in sorted((sample_inbox / "2019").rglob("*.txt"))[:2]:
        (first / "2019" / dump.name).write_bytes(dump.read_bytes())
    assert run("ingest", "--inbox", str(first), home=home, api_url=api_url).returncode == 0
    assert run("ingest", "--inbox", str(sample_inbox), home=home, api_url=api_url).returncode == 0
    import warehouse

    count = "SELECT count(*) FROM articles"
    with warehouse.connect(home) as con:
        night1, night2 = [
            r[0] for r in con.execute("SELECT run_id FROM runs ORDER BY 1").fetchall()
        ]
        total = con.execute(count).fetchall()[0][0]
    with warehouse.connect(home, as_of=night1) as con:
        then = con.execute(count).fetchall()[0][0]
    assert 0 < then < total
    back = run("sql", "--as-of", night1, count, home=home)
    assert back.returncode == 0 and re.search(rf"\b{then}\b", back.stdout), back.stdout
    shell = subprocess.run(
        [*WIREHOUSE, "shell", "--", "-csv", "-c", "SELECT count(*) FROM articles"],
        cwd=REPO,
        env=dict(os.environ, WIREHOUSE_HOME=str(home)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shell.returncode == 0 and str(total) in shell.stdout.split(), shell.stderr
    refused = run("rollback", night1, home=home, api_url=api_url)
    assert refused.returncode == 2 and "--cascade" in refused.stderr  # night 2 copies its articles
    undone = run("rollback", night2, home=home, api_url=api_url)
    assert undone.returncode == 0 and f"rolled back {night2}" in undone.stdout, undone.stderr
    now = run("sql", count, home=home)
    assert re.search(rf"\b{then}\b", now.stdout), now.stdout
    assert run("compact", home=home, api_url=api_url).returncode == 0
    status = run("status", home=home)
    assert "rolled_back" in status.stdout and "rollback" in status.stdout, status.stdout
