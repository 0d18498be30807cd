"""Prefect's temporary API server for one `wirehouse ingest`, started before anything imports.

With no Prefect API configured, Prefect starts a temporary server on a flow's first API call:
it imports the server's code into the calling process (3-5 s of CPU) and only then launches
the server process, which spends as long again importing the same code before it answers.
Started first instead, the server boots on one core while this process imports Prefect, the
flow and Great Expectations on the other, and the server's code never loads here. It is the
server Prefect would start: the uvicorn command and environment of Prefect's
`SubprocessASGIServer` (the server reads its settings from the same environment and profile),
on a port of its own, stopped when the command exits or is killed.

Nothing of Prefect is imported until the server is running: it is started on the environment
alone, and `wanted` (after the imports) asks Prefect's settings whether it is needed.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger("prefect.wirehouse.server")

# Runs uvicorn as `python -m uvicorn` would, ended with the command that started it (a killed
# command runs no exit handler to stop it: see flows.orphans). The command's pid is written in:
# a command killed before the server's first line would leave `os.getppid()` naming whoever
# adopted the server. The server's code is imported first with the collector off (see
# flows.collector), and uvicorn finds it imported.
_SERVE_WHILE_PARENT_LIVES = """\
import runpy
from flows.orphans import exit_with_parent
exit_with_parent({parent})
from flows.collector import imports_uncollected
with imports_uncollected():
    import prefect.server.api.server
runpy.run_module("uvicorn", run_name="__main__", alter_sys=True)
"""
# uvicorn's exit status when it cannot start, such as a port taken since it was chosen.
_STARTUP_FAILURE = 3
_ATTEMPTS = 5
_POLL_SECONDS = 0.1
# Health checks go straight to the local port, whatever proxy the environment names.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServerNotReady(RuntimeError):
    """The temporary server exited or did not answer in time; the message says what to do."""


class TemporaryServer:
    """One temporary Prefect API server process on a free local port."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ  # the server's, as given
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.attempts = 0

    @property
    def api_url(self) -> str:
        """The address a Prefect client is given (`PREFECT_API_URL`)."""
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> TemporaryServer:
        """Launch the server process and return at once; it is stopped at exit."""
        self.port = _free_port()
        self.attempts += 1
        self.process = subprocess.Popen(_command(self.port), env=_environment(self.environ))
        # Registered before Prefect's log and event workers register theirs: exit handlers run
        # last in first, so those drain to the server before it stops.
        atexit.register(self.stop)
        return self

    def wanted(self) -> bool:
        """Whether Prefect's settings leave the API to a temporary server; if not (a profile or
        a prefect.toml names an API), the server is stopped."""
        from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

        if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
            log.info("Prefect's settings name an API or turn temporary servers off: none used")
            self.stop()
            return False
        return True

    def use_when_ready(self) -> None:
        """Point this process's Prefect client at the server once it answers."""
        from prefect.context import refresh_global_settings_context
        from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

        log.info("Using a temporary Prefect server on http://127.0.0.1:%d", self.port)
        self.wait_until_ready(float(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()))
        os.environ["PREFECT_API_URL"] = self.api_url
        # No UI is served, and the server goes with the command: no "View at" links to it.
        os.environ.setdefault("PREFECT_UI_URL", "")
        refresh_global_settings_context()  # so every thread's client sees the address

    def wait_until_ready(self, timeout: float) -> None:
        """Return once the server answers (on another port if its own was taken meanwhile);
        ServerNotReady if it exits first or is silent for `timeout` seconds (then stopped)."""
        deadline = time.monotonic() + timeout
        while not self.answers():
            process = self.process
            assert process is not None
            if process.poll() == _STARTUP_FAILURE and self.attempts < _ATTEMPTS:
                self.start()  # another port
                log.info("Port taken: using http://127.0.0.1:%d instead", self.port)
            elif process.poll() is not None:
                raise ServerNotReady(
                    f"the temporary Prefect server exited with status {process.returncode} "
                    "before it answered (its error is above)"
                )
            elif time.monotonic() > deadline:
                self.stop()
                raise ServerNotReady(
                    f"the temporary Prefect server did not answer within {timeout:g} s "
                    "(raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS on a busy machine)"
                )
            time.sleep(_POLL_SECONDS)

    def stop(self) -> None:
        """Stop the server process (a no-op once stopped)."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            log.info("Stopping the temporary Prefect server on http://127.0.0.1:%d", self.port)
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def answers(self) -> bool:
        """Whether the server answers its health check now."""
        try:
            with _DIRECT.open(f"{self.api_url}/health", timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False


def _command(port: int) -> list[str]:
    """Prefect's own command for its temporary server (UI off), run while this process lives."""
    spec = importlib.util.find_spec("prefect")  # where Prefect is, without importing it
    assert spec is not None and spec.origin is not None
    return [
        sys.executable,
        "-c",
        _SERVE_WHILE_PARENT_LIVES.format(parent=os.getpid()),
        "--app-dir",
        str(Path(spec.origin).parent.parent),
        "--factory",
        "prefect.server.api.server:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "error",
        "--lifespan",
        "on",
    ]


def _environment(environ: Mapping[str, str]) -> dict[str, str]:
    """Prefect's environment for its temporary server, the UI off.

    Prefect also passes the settings changed inside its process; a command that has not
    imported Prefect has none, and the server reads the profile and prefect.toml itself.
    """
    return {
        **environ,
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
    }


def _free_port() -> int:
    """A local port nobody listens on now (the server may still lose it: see `_ATTEMPTS`)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
