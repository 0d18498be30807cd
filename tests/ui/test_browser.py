"""The README's path in a real browser: the UI, `wirehouse serve`, a run, its page and summary."""

from __future__ import annotations

import html
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL, temporary_settings

from tests.conftest import REPO
from tests.processes import interrupt

CHROMIUM = next(
    (p for name in ("chromium", "chromium-browser", "google-chrome") if (p := shutil.which(name))),
    None,
)
# CI installs Chromium (.ci/run), so there the test must run; elsewhere it may be missing.
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"), reason="no Chromium (apt-get install chromium)"
)
SHOT_FOR_PEOPLE = Path("/tmp/wirehouse-ui.png")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(url: str, process: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, f"server exited with {process.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer in {seconds} s")


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prefect server and UI on a free loopback port, with its own PREFECT_HOME."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": ""}
    env["PREFECT_UI_API_URL"] = f"http://127.0.0.1:{port}/api"
    log = (home / "server.log").open("wb")
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
    server = subprocess.Popen(
        [*command, "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/api/health", server, 180)
        yield f"http://127.0.0.1:{port}"
    finally:
        interrupt(server, 30)
        log.close()


def _page_text(url: str, profile: Path, screenshot: Path | None = None) -> str:
    """The page as headless Chromium renders it: its DOM's text, tags and styles removed."""
    dom = _page_dom(url, profile, screenshot)
    dom = re.sub(r"<(style|script)\b.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom)))


def _page_dom(url: str, profile: Path, screenshot: Path | None = None) -> str:
    """The page's DOM as headless Chromium renders it (and a screenshot if asked)."""
    assert CHROMIUM is not None
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1100",
        "--virtual-time-budget=15000",
    ]
    shutil.rmtree(profile, ignore_errors=True)
    profile.mkdir(parents=True)
    base = [CHROMIUM, *flags, f"--user-data-dir={profile}"]
    run = {"capture_output": True, "timeout": 120, "check": True}
    dom = subprocess.run([*base, "--dump-dom", url], **run).stdout.decode()  # type: ignore[call-overload]
    if screenshot is not None:
        shutil.rmtree(profile)
        profile.mkdir()
        subprocess.run([*base, f"--screenshot={screenshot}", url], **run)  # type: ignore[call-overload]
    return dom


def test_a_served_night_shows_its_run_and_summary_in_the_ui(
    ui_server: str, tmp_path: Path, sample_inbox: Path
) -> None:
    api = f"{ui_server}/api"
    wirehouse = [str(Path(sys.executable).with_name("wirehouse")), "--home", str(tmp_path / "wh")]
    serve = subprocess.Popen(
        [*wirehouse, "serve", "--inbox", str(sample_inbox)],
        env={**os.environ, "PREFECT_API_URL": api, "PREFECT_RUNNER_POLL_FREQUENCY": "1"},
        cwd=REPO,
        stdout=(tmp_path / "serve.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        with temporary_settings({PREFECT_API_URL: api}):
            # What the UI's "Run" button does: a run of the deployment, picked up by `serve`.
            run = _run_when_served(serve)
            with get_client(sync_client=True) as client:
                artifacts = client.read_artifacts(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))
                )
        assert run.state is not None and run.state.is_completed(), run.state
    finally:
        interrupt(serve, 30)
    summary = next(a for a in artifacts if a.key == "nightly-summary")
    headline = str(summary.description)  # "Run <run_id> succeeded: <n> articles loaded, ..."
    run_id, articles = headline.split()[1], headline.split()[3]

    page = _page_text(f"{ui_server}/runs/flow-run/{run.id}", tmp_path / "c1", tmp_path / "run.png")
    assert run.name in page and "Completed" in page
    # The V1 page opens on its Logs tab whatever the URL says; the V2 page takes ?tab=.
    tab = _page_text(f"{ui_server}/v2/runs/flow-run/{run.id}?tab=Artifacts", tmp_path / "c2")
    assert "nightly-summary" in tab and headline in tab
    shown = _page_text(
        f"{ui_server}/artifacts/artifact/{summary.id}", tmp_path / "c3", tmp_path / "summary.png"
    )
    assert f"Night {run_id}: succeeded" in shown and run.name in shown
    assert f"articles loaded {articles}" in shown and "Quarantined by reason" in shown
    # The night's health: a first night has no baseline; its chart of the last nights is an
    # SVG data URI, which the UI's markdown renders as an image.
    health = next(a for a in artifacts if a.key == "nightly-health")
    assert str(health.description) == f"Night {run_id}: no baseline yet"
    dom = _page_dom(
        f"{ui_server}/artifacts/artifact/{health.id}", tmp_path / "c4", tmp_path / "health.png"
    )
    assert f"Night {run_id}: no baseline yet" in html.unescape(dom) and "Last nights" in dom
    assert re.search(r'<img src="data:image/svg\+xml;base64,[^"]+" alt="new files per night"', dom)
    for shot in ("run.png", "summary.png", "health.png"):
        assert (tmp_path / shot).stat().st_size > 10_000
    shutil.copy(tmp_path / "run.png", SHOT_FOR_PEOPLE)
    shutil.copy(tmp_path / "summary.png", SHOT_FOR_PEOPLE.with_name("wirehouse-ui-summary.png"))
    shutil.copy(tmp_path / "health.png", SHOT_FOR_PEOPLE.with_name("wirehouse-ui-health.png"))


def _run_when_served(serve: subprocess.Popen[bytes]) -> FlowRun:
    """Start a run of the nightly deployment once `serve` registered it; wait for its end."""
    deadline = time.monotonic() + 90
    with get_client(sync_client=True) as client:
        while True:
            assert serve.poll() is None, "wirehouse serve exited"
            try:
                client.read_deployment_by_name("nightly-ingest/nightly")
                break
            except ObjectNotFound:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    run = run_deployment("nightly-ingest/nightly", timeout=150, poll_interval=1)
    assert isinstance(run, FlowRun) and isinstance(run.id, UUID)
    return run
