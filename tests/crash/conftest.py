"""Fixtures of the crash and concurrency tests: a zygote that forks real nightly runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CASES, REPO, SAMPLES
from tests.state import snapshot


class Zygote:
    """A child process that forks one nightly run per request."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.crash.zygote"],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert json.loads(self._line()) == {"ready": True}

    def run(
        self,
        inbox: Path,
        home: Path,
        env: dict[str, str] | None = None,
        kill_after: float | None = None,
        *,
        op: str = "run",
        stderr: Path | None = None,
    ) -> dict[str, Any]:
        """One nightly run in a forked child; how it ended (or, with op="start", its pid)."""
        return self._ask(
            {
                "op": op,
                "args": {"inbox": str(inbox), "home": str(home)},
                "env": env or {},
                "kill_after": kill_after,
                "stderr": str(stderr) if stderr else None,
            }
        )

    def wait(self, pid: int) -> dict[str, Any]:
        """How a run started with op="start" ended."""
        return self._ask({"op": "wait", "pid": pid})

    def _ask(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        answer: dict[str, Any] = json.loads(self._line())
        return answer

    def close(self) -> None:
        """Stop the zygote."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)

    def _line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, "the zygote died"
        return line


@pytest.fixture(scope="module")
def zygote(prefect_server: None) -> Iterator[Zygote]:
    """A zygote pointed at the session's Prefect server, with small batches (more points)."""
    from prefect.settings import PREFECT_API_URL

    env = dict(
        os.environ,
        PREFECT_API_URL=str(PREFECT_API_URL.value()),
        WIREHOUSE_BUILD_DOCS="0",
        WIREHOUSE_BATCH_SIZE="4",
        WIREHOUSE_SETTLE_SECONDS="0",
        PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL="ERROR",
    )
    zygote = Zygote(env)
    yield zygote
    zygote.close()


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small night of real dumps: every Xinhua layout, copies, and a few other outlets."""
    inbox = tmp_path_factory.mktemp("crash") / "inbox"
    for folder in ("2019", "redelivered", "xinhua-2008", "xinhua-web", "xinhua-zh"):
        shutil.copytree(SAMPLES / folder, inbox / folder)
    (inbox / "web-pages").mkdir()
    for page in sorted((SAMPLES / "web-pages").iterdir())[:10]:
        shutil.copy2(page, inbox / "web-pages" / page.name)
    shutil.copytree(CASES / "web", inbox / "cases")  # an empty page and pages with no article
    return inbox


@pytest.fixture(scope="module")
def reference(zygote: Zygote, inbox: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """What a clean run builds, and how many checkpoints it passes."""
    home = tmp_path_factory.mktemp("reference")
    log = tmp_path_factory.mktemp("checkpoints") / "passed.log"
    answer = zygote.run(inbox, home, env={"WIREHOUSE_CHECKPOINT_LOG": str(log)})
    assert answer["exit"] == 0
    state = snapshot(home)
    assert state["articles"] and state["duplicates"] and state["quarantine"]
    return state, log.read_text().split(), answer["seconds"]
