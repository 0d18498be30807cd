"""This machine's workers: a pool of processes, one per core, each working whole batches
(`flows.worker.work_batch`) as a Dask worker of a cluster does."""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import BrokenExecutor, Executor, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import replace

from flows.orphans import exit_with_parent
from flows.worker import Batch, ToRead, work_batch
from transforms.night import Lineage
from warehouse.home import Home

log = logging.getLogger(__name__)


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


def work_in_pool(
    pool: Executor | None,
    index: int,
    batch: Sequence[ToRead],
    home: Home,
    max_bytes: int,
    lineage: Lineage,
    keep_raw: bool = True,
) -> Batch:
    """One batch worked by a process of the pool (or here, without one); waits for it.

    A worker that dies (killed, out of memory, or a script without the `__main__` guard that
    spawned workers need) breaks the pool: its batches, and those after, are worked here.
    The batch's files are rewritten whole under the same names, so nothing is lost or doubled.
    """
    if pool is not None:
        try:
            future = pool.submit(_work, index, list(batch), home, max_bytes, lineage, keep_raw)
            return future.result()
        except BrokenExecutor:
            log.warning("a worker process died; working batch %d in the flow's process", index)
    return work_batch(index, batch, home, max_bytes, lineage, keep_raw)


def _work(
    index: int,
    batch: list[ToRead],
    home: Home,
    max_bytes: int,
    lineage: Lineage,
    keep_raw: bool,
) -> Batch:
    """In a worker process: `work_batch`, naming this process."""
    worked = work_batch(index, batch, home, max_bytes, lineage, keep_raw)
    return replace(worked, worker=f"worker process {os.getpid()}")
