"""Worker processes for the CPU of a night (decoding, parsing, signatures): one per core."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager


@contextmanager
def parse_workers(processes: int, batches: int) -> Iterator[Executor | None]:
    """A pool of `processes` workers for a night of `batches`; None (parse in-process) if small.

    Workers are spawned, not forked: the flow's process runs Prefect's and DuckDB's threads,
    and a fork copies their locks in whatever state they were. Spawning costs each worker its
    imports (about half a second, in parallel), so a one-batch night parses in the flow itself.
    """
    count = min(processes, batches)
    if count < 2:
        yield None
        return
    pool = ProcessPoolExecutor(max_workers=count, mp_context=multiprocessing.get_context("spawn"))
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
