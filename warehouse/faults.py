"""Fault injection for the crash tests: die or fail at named points, as a real fault would.

Production never sets these variables; the checks cost one dictionary lookup per checkpoint.
This is the one place outside flows/settings.py that reads the environment, on purpose: the
points sit in the storage layer, which takes no settings object, and a test must be able to
arm them in a child process it does not otherwise control.

- `WIREHOUSE_CRASH_AT=N`: at the N-th checkpoint this process passes, send itself SIGKILL
  (no cleanup, no `finally`, exactly like `kill -9`); `WIREHOUSE_CRASH_AT=NAME`: the first time
  it passes checkpoint NAME (a worker of a cluster, whose count depends on what it is sent).
- `WIREHOUSE_FAIL_AT=NAME:K`: the first K times checkpoint NAME is passed, raise an OSError
  (disk full), which the I/O tasks treat as transient.
- `WIREHOUSE_PAUSE_AT=NAME:SECONDS[,NAME:SECONDS...]`: sleep there (to hold a run mid-way).
- `WIREHOUSE_CHECKPOINT_LOG=PATH`: append each checkpoint's name to PATH (to enumerate them).
"""

from __future__ import annotations

import errno
import os
import signal
import time
from collections import Counter

_ARMING = (
    "WIREHOUSE_CRASH_AT",
    "WIREHOUSE_FAIL_AT",
    "WIREHOUSE_PAUSE_AT",
    "WIREHOUSE_CHECKPOINT_LOG",
)
# Per-process counts of checkpoints passed: the state a "crash at the N-th point" needs.
_passed: Counter[str] = Counter()


def checkpoint(name: str) -> None:
    """A point where a crash or an I/O failure can be injected."""
    env = os.environ
    if not any(key in env for key in _ARMING):
        return
    _passed[name] += 1
    _passed["*"] += 1
    if log := env.get("WIREHOUSE_CHECKPOINT_LOG"):
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(name + "\n")
    for pause in filter(None, env.get("WIREHOUSE_PAUSE_AT", "").split(",")):
        point, _, seconds = pause.rpartition(":")
        if point == name:
            time.sleep(float(seconds))
    if env.get("WIREHOUSE_CRASH_AT") in (str(_passed["*"]), name):
        os.kill(os.getpid(), signal.SIGKILL)
    fail_at = env.get("WIREHOUSE_FAIL_AT", "")
    point, _, times = fail_at.rpartition(":")
    if point == name and _passed[name] <= int(times or 1):
        raise OSError(errno.ENOSPC, f"injected fault at {name}: no space left on device")
