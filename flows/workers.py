"""Worker processes for the CPU of a night (decoding, parsing, signatures): one per core, fed
slices of dumps as they are read."""

from __future__ import annotations

import importlib.abc
import logging
import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Iterator
from concurrent.futures import BrokenExecutor, Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

from flows.orphans import exit_with_parent
from transforms.batch import ParsedDumps, parse_dumps
from transforms.night import Dump, Lineage

log = logging.getLogger(__name__)

# Bytes of dumps sent to a worker at once (about 400 typical dumps): small enough that every
# worker has slices queued while the flow's process reads, large enough that sending costs little.
SLICE_BYTES = 2 * 1024 * 1024
# Bytes read but not yet parsed, per batch: bounds memory when dumps are large.
IN_FLIGHT_BYTES = 64 * 1024 * 1024


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
        initializer=_worker_started,
        initargs=(os.getpid(),),
    )
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _worker_started(parent: int) -> None:
    """In a new worker: exit with the flow's process, and keep pandas out."""
    exit_with_parent(parent)
    sys.meta_path.insert(0, _NoPandas())


class _NoPandas(importlib.abc.MetaPathFinder):
    """Refuses to import pandas, as if it were not installed.

    pyarrow imports pandas on its first conversion of a Python list, only to ask whether the
    list is a pandas object: 0.3 s of CPU per worker per night, for rows that never are.
    """

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.partition(".")[0] == "pandas":
            raise ModuleNotFoundError("parse workers do not use pandas", name=name)
        return None


class Slices:
    """A batch's slices of read dumps, parsed in the workers (or here), results in order."""

    def __init__(self, lineage: Lineage, workers: Executor | None) -> None:
        self.lineage = lineage
        self.workers = workers
        self.done: list[ParsedDumps] = []
        self.waiting: deque[tuple[Future[ParsedDumps], list[tuple[Dump, bytes]], int]] = deque()
        self.held = 0

    def send(self, read: list[tuple[Dump, bytes]], size: int) -> None:
        """Start parsing a slice; wait for earlier ones while too many bytes are unparsed."""
        if self.workers is None:
            self.done.append(parse_dumps(read, self.lineage))
            return
        self.waiting.append((self._submit(read), read, size))
        self.held += size
        while self.held > IN_FLIGHT_BYTES and len(self.waiting) > 1:
            self._collect()

    def results(self) -> list[ParsedDumps]:
        """Every slice's result, in the order the slices were sent."""
        while self.waiting:
            self._collect()
        return self.done

    def _submit(self, read: list[tuple[Dump, bytes]]) -> Future[ParsedDumps]:
        assert self.workers is not None
        try:
            return self.workers.submit(parse_dumps, read, self.lineage)
        except BrokenExecutor:
            return _failed_future()

    def _collect(self) -> None:
        future, read, size = self.waiting.popleft()
        self.held -= size
        try:
            self.done.append(future.result())
        except BrokenExecutor:
            # A worker died (killed, out of memory, or a script without the `__main__` guard
            # that spawned workers need): parsing is pure, so this process does the slice.
            log.warning("a parse worker process died; parsing its slice in-process")
            self.done.append(parse_dumps(read, self.lineage))


def _failed_future() -> Future[ParsedDumps]:
    future: Future[ParsedDumps] = Future()
    future.set_exception(BrokenExecutor("the parse workers are gone"))
    return future
