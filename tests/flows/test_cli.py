"""The `wirehouse` command as a user runs it: a real process, against the session's server."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

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
    server itself (importing GX meanwhile) and must not leave it running when it exits."""
    env = dict(os.environ, WIREHOUSE_HOME=str(home), PREFECT_HOME=str(tmp_path / "prefect"))
    env.pop("PREFECT_API_URL", None)
    log = tmp_path / "output.txt"
    with log.open("w") as out:  # a file, not a pipe: a server left running would hold a pipe
        code = subprocess.call(
            [*WIREHOUSE, "ingest", "--inbox", str(sample_inbox)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=600,
        )
    output = log.read_text()
    assert code == 0, output[-3000:]
    assert "articles loaded" in output
    started = re.search(r"Starting temporary server on http://127\.0\.0\.1:(\d+)", output)
    assert started, output[-3000:]
    assert output.count("Starting temporary server") == 1  # the flow used the same server
    assert "Stopping temporary server" in output
    assert not _uvicorn_on(started.group(1))


def _uvicorn_on(port: str) -> list[int]:
    """Processes serving Prefect's API on this port (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"uvicorn" in words and port.encode() in words:
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
    with run_lock(Home.at(home).lock):
        result = run("ingest", "--inbox", str(sample_inbox), home=home, api_url=api_url)
    one_line_error(result, 2, "another run is in progress")
