"""Worker processes for the CPU of a night (decoding, parsing, signatures): one per core."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager

# How often a worker checks that the flow's process is still its parent.
_WATCH_SECONDS = 0.5


@contextmanager
def parse_workers(processes: int, pieces: int) -> Iterator[Executor | None]:
    """A pool of `processes` workers for a night of `pieces` (batches or slices, whichever are
    more); None (parse in-process) if the night is one piece.

    Workers are spawned, not forked: the flow's process runs Prefect's and DuckDB's threads,
    and a fork copies their locks in whatever state they were. Spawning costs each worker its
    imports (about half a second, in parallel), so a night of one piece parses in the flow.
    """
    count = min(processes, pieces)
    if count < 2:
        yield None
        return
    pool = ProcessPoolExecutor(
        max_workers=count,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_exit_with_parent,
        initargs=(os.getpid(),),
    )
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _exit_with_parent(parent: int) -> None:
    """In a worker: exit as soon as the flow's process is gone (killed runs leave no workers).

    A worker waiting for work does not notice its parent's death by itself: without this, each
    SIGKILLed night left its workers behind, idle, holding a hundred megabytes each.
    """
    threading.Thread(target=_watch, args=(parent,), name="watch-parent", daemon=True).start()


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_WATCH_SECONDS)
    os._exit(1)
