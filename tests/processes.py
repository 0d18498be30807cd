"""Stopping the servers and `serve` processes tests start, as an operator would: Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
from typing import Any


def interrupt(process: subprocess.Popen[Any], seconds: float) -> None:
    """SIGINT, then a kill if it has not stopped within `seconds` (a runner may take its time)."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
