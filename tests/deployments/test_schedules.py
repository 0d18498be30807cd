"""The `nightly` deployment, from prefect.yaml and from `wirehouse serve`, on a real server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.responses import DeploymentResponse
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL

from deployments.serve import nightly_deployment
from flows.settings import DEFAULT_SCHEDULE, DEFAULT_TIMEZONE, NightSchedule, Settings
from tests.conftest import REPO
from tests.processes import interrupt

PREFECT_YAML = REPO / "deployments" / "prefect.yaml"
NAME = "nightly-ingest/nightly"


def _env(**extra: str) -> dict[str, str]:
    """The environment of a child process that talks to the test's server."""
    return {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), **extra}


def _deployment() -> DeploymentResponse | None:
    with get_client(sync_client=True) as client:
        try:
            return client.read_deployment_by_name(NAME)
        except ObjectNotFound:
            return None


def _delete_deployment() -> None:
    if (found := _deployment()) is not None:
        with get_client(sync_client=True) as client:
            client.delete_deployment(found.id)


def _cron_of(deployment: DeploymentResponse) -> list[tuple[Any, Any, bool]]:
    return [
        (getattr(s.schedule, "cron", None), getattr(s.schedule, "timezone", None), s.active)
        for s in deployment.schedules
    ]


def test_prefect_yaml_declares_the_nightly_schedule() -> None:
    spec, cluster = yaml.safe_load(PREFECT_YAML.read_text())["deployments"]
    assert spec["name"] == "nightly"
    assert spec["schedules"][0]["cron"] == DEFAULT_SCHEDULE
    assert spec["concurrency_limit"]["limit"] == 1
    assert spec["work_pool"]["name"] == "wirehouse"
    # the cluster's variant: the same night, its schedule off until an operator switches
    assert cluster["name"] == "nightly-cluster"
    assert cluster["entrypoint"] == spec["entrypoint"]
    assert cluster["concurrency_limit"] == spec["concurrency_limit"]
    assert [s["active"] for s in cluster["schedules"]] == [False]
    assert "WIREHOUSE_DASK_SCHEDULER" in cluster["work_pool"]["job_variables"]["env"]


@pytest.mark.usefixtures("prefect_server")
def test_prefect_deploy_registers_the_cron_schedule() -> None:
    _delete_deployment()
    prefect = [sys.executable, "-m", "prefect"]
    subprocess.run(
        [*prefect, "work-pool", "create", "wirehouse", "--type", "process", "--overwrite"],
        env=_env(),
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=120,
    )
    deploy = [*prefect, "--no-prompt", "deploy", "--prefect-file", str(PREFECT_YAML), "--all"]
    done = subprocess.run(deploy, env=_env(), cwd=REPO, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    deployment = _deployment()
    assert deployment is not None
    assert _cron_of(deployment) == [(DEFAULT_SCHEDULE, DEFAULT_TIMEZONE, True)]
    assert deployment.work_pool_name == "wirehouse"
    assert deployment.global_concurrency_limit is not None
    assert deployment.global_concurrency_limit.limit == 1
    assert deployment.entrypoint == "flows/nightly.py:nightly_ingest"


@pytest.mark.usefixtures("prefect_server")
def test_wirehouse_serve_registers_the_schedule_and_resumes_it(tmp_path: Path) -> None:
    _delete_deployment()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    # As a stopped `serve` leaves it: registered, paused.
    before = nightly_deployment(Settings.from_env(home=tmp_path, inbox=inbox), NightSchedule())
    with get_client(sync_client=True) as client:
        client.pause_deployment(cast(UUID, before.apply()))
    command = [str(Path(sys.executable).with_name("wirehouse")), "--home", str(tmp_path)]
    serve = subprocess.Popen(
        [*command, "serve", "--inbox", str(inbox), "--timezone", "Europe/Zurich"],
        # its shutdown logged, so that a failure below shows how it stopped
        env=_env(PREFECT_LOGGING_LEVEL="INFO", PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL="INFO"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # A test run started in the background (`make test &`) inherits SIGINT ignored, and so
        # would serve: it could not be stopped the way the test stops it, by an interrupt.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(serve.stdout or []), daemon=True)
    reader.start()
    try:
        deployment, serving_since = _deployment(), None
        deadline = time.monotonic() + 90
        while serve.poll() is None and time.monotonic() < deadline:
            deployment = _deployment()
            if serving_since is None and any("being served" in line for line in output):
                serving_since = datetime.now(UTC)  # registered; its runner starts to poll
            polled = deployment.last_polled if deployment is not None else None
            if serving_since is not None and polled is not None and polled > serving_since:
                break  # the runner's loop is running: an interrupt now is a real stop
            time.sleep(0.5)
        assert deployment is not None and not deployment.paused, "serve did not resume it"
        assert _cron_of(deployment) == [(DEFAULT_SCHEDULE, "Europe/Zurich", True)]
        assert deployment.work_pool_name is None  # served from the process: no work pool
        assert deployment.global_concurrency_limit is not None
        assert deployment.global_concurrency_limit.limit == 1
        assert deployment.parameters == {"home": str(tmp_path), "inbox": str(inbox)}
    finally:
        interrupt(serve, 60)
    reader.join(timeout=10)
    stopped = _deployment()
    # no nights while nobody serves them
    assert stopped is not None and stopped.paused, "".join(output)
    _delete_deployment()


@pytest.mark.usefixtures("prefect_server")
def test_serve_refuses_a_bad_schedule(tmp_path: Path) -> None:
    command = [str(Path(sys.executable).with_name("wirehouse")), "--home", str(tmp_path)]
    done = subprocess.run(
        [*command, "serve", "--inbox", str(tmp_path), "--cron", "every night"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "bad schedule" in done.stderr
