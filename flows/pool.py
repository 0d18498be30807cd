"""This machine's workers: a pool of processes, one per core, each working whole batches
(`flows.worker`) as a Dask worker of a cluster does."""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import BrokenExecutor, Executor, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from flows.orphans import exit_with_parent

log = logging.getLogger(__name__)
T = TypeVar("T")


@contextmanager
def local_pool(processes: int, batches: int) -> Iterator[Executor | None]:
    """A pool of `processes` workers for a night of `batches`; None (work in the flow's
    process) for a night of one batch.

    Workers are spawned, not forked: the flow's process runs Prefect's and DuckDB's threads,
    and a fork copies their locks in whatever state they were.
    """
    count = min(processes, batches)
    if count < 2:
        yield None
        return
    pool = ProcessPoolExecutor(
        max_workers=count,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=exit_with_parent,
        initargs=(os.getpid(),),
    )
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_in_pool(pool: Executor | None, function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in a process of the pool (or here, without one); waits for it.

    A worker that dies (killed, out of memory, or a script without the `__main__` guard that
    spawned workers need) breaks the pool: its work, and all after, is done here. What the
    night's functions write is rewritten whole under the same names, so nothing is lost or
    doubled.
    """
    if pool is not None:
        try:
            return pool.submit(function, *args).result()
        except BrokenExecutor:
            log.warning("a worker process died; doing its work in the flow's process")
    return function(*args)
