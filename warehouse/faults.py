"""Fault injection for the crash tests: die or fail at named points, as a real fault would.

Production never sets these variables; the checks cost one dictionary lookup per checkpoint.
This is the one place outside flows/settings.py that reads the environment, on purpose: the
points sit in the storage layer, which takes no settings object, and a test must be able to
arm them in a child process it does not otherwise control.

- `WIREHOUSE_CRASH_AT=N`: at the N-th checkpoint this process passes, send itself SIGKILL
  (no cleanup, no `finally`, exactly like `kill -9`); `WIREHOUSE_CRASH_AT=NAME`: the first time
  it passes checkpoint NAME (a worker of a cluster, whose count depends on what it is sent).
- `WIREHOUSE_FAIL_AT=NAME:K[:ERRNO]`: the first K times checkpoint NAME is passed, raise an
  OSError: by default ENOSPC (the disk full, which no retry mends: `warehouse/outage.py`),
  or the errno named (`EAGAIN`: a hiccup, which the I/O tasks retry). It names the file or
  folder the checkpoint gives, as the real error would.
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


def checkpoint(name: str, path: str | None = None) -> None:
    """A point where a crash or an I/O failure can be injected; `path`: what it writes."""
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
    point, times, number = _failure(env.get("WIREHOUSE_FAIL_AT", ""))
    if point == name and _passed[name] <= times:
        words = os.strerror(number).lower()
        raise OSError(number, f"injected fault at {name}: {words}", path)


def _failure(fail_at: str) -> tuple[str, int, int]:
    """`NAME:K[:ERRNO]` as the checkpoint's name, how many times, and the errno to raise."""
    point, _, last = fail_at.rpartition(":")
    number = errno.ENOSPC
    if last and not last.isdecimal():
        number = getattr(errno, last)
        point, _, last = point.rpartition(":")
    return point, int(last or 1), number
