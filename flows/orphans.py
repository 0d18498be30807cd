"""Child processes that end with the process that started them: a killed run leaves none behind.

A child waiting for work (a parse worker) or serving (the temporary Prefect server) does not
notice its parent's death by itself, and a parent killed outright (SIGKILL, an out-of-memory
kill) runs no exit handler to stop it: without this, each such night left its children behind,
holding memory (and the server a port) for good. Imports nothing heavy: the server runs it
before its own imports.
"""

from __future__ import annotations

import os
import threading
import time

# How often a child checks that its parent is still there.
_WATCH_SECONDS = 0.5


def exit_with_parent(parent: int) -> None:
    """In a child: exit as soon as process `parent` is no longer this process's parent."""
    threading.Thread(target=_watch, args=(parent,), name="watch-parent", daemon=True).start()


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_WATCH_SECONDS)
    os._exit(1)
