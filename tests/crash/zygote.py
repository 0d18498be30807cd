"""A warmed-up parent for crash tests: imports the flow once, then forks one child per run.

Each line on stdin is a JSON command {"args": {...}, "env": {...}, "kill_after": seconds|null,
"stderr": path|null}; each answer on stdout is {"pid", "exit", "killed", "seconds"}. With
"op": "start" the child is left running (answer {"pid"}) and {"op": "wait", "pid": ...} collects
it later, so that two runs can overlap. A child runs the real
`nightly_ingest` against the Prefect server named by PREFECT_API_URL and may be killed with
SIGKILL, by the parent after `kill_after` seconds or by itself at an armed checkpoint
(warehouse/faults.py). Forking skips the seconds of imports a fresh process would pay.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any


def main() -> None:
    """Serve fork requests until stdin closes."""
    from expectations.runner import import_gx
    from flows.nightly import nightly_ingest

    import_gx()
    print(json.dumps({"ready": True}), flush=True)
    started: dict[int, float] = {}
    for line in sys.stdin:
        command = json.loads(line)
        op = command.get("op", "run")
        if op == "wait":
            pid = command["pid"]
        else:
            pid = _fork(command, nightly_ingest)
            started[pid] = time.monotonic()
            if op == "start":
                print(json.dumps({"pid": pid}), flush=True)
                continue
        status, killed = _wait(pid, command.get("kill_after"))
        answer = {
            "pid": pid,
            "exit": os.waitstatus_to_exitcode(status),
            "killed": killed,
            "seconds": round(time.monotonic() - started.pop(pid), 3),
        }
        print(json.dumps(answer), flush=True)


def _fork(command: dict[str, Any], nightly_ingest: Callable[..., Any]) -> int:
    """Start one run in a child process; returns its pid."""
    pid = os.fork()
    if pid:
        return pid
    os.environ.update(command.get("env", {}))
    if command.get("stderr"):
        fd = os.open(command["stderr"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 2)
    code = 0
    try:
        nightly_ingest(**command["args"])
    except BaseException as error:  # the child reports and exits like the CLI would
        sys.stderr.write(f"child failed: {type(error).__name__}: {error}\n")
        code = 1
    sys.stderr.flush()
    os._exit(code)


def _wait(pid: int, kill_after: float | None) -> tuple[int, bool]:
    """Wait for the child; SIGKILL it if it outlives `kill_after` seconds."""
    if kill_after is None:
        return os.waitpid(pid, 0)[1], False
    deadline = time.monotonic() + kill_after
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status, False
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    return os.waitpid(pid, 0)[1], True


if __name__ == "__main__":
    main()
