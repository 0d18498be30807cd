"""Where a night's batches are worked: a Dask cluster (WIREHOUSE_DASK_SCHEDULER), or this
machine's pool of processes (`flows.pool`).

The flow's process keeps what must see the whole night (discovery against the ledger, dedupe
against history, the one commit, the Data Docs) and sends each batch, whole, to a worker: it
reads the batch's dumps from the inbox itself, archives them, decodes, parses, signs and
validates them, and stages the valid rows; once the night's duplicates are decided, it writes
the batch's rows of the lake (kept articles, their MinHash index, the archive index) as the
lake's data files. Only small results (keys, fates, signatures, file
names) come back. The functions a worker runs are `flows.worker`'s, the same on a cluster, in
the local pool, and in the flow's process.
"""

from __future__ import annotations

import contextvars
import importlib.metadata
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa
from prefect import get_run_logger
from prefect.exceptions import MissingContextError

from flows.pool import local_pool, run_in_pool
from flows.settings import Settings
from flows.worker import Batch, Piece, ToRead, split_batch, work_named, write_file
from transforms.night import Lineage
from transforms.records import PARSER_VERSION
from warehouse.home import Home, S3Access
from warehouse.inbox import Hasher, hash_locations

if TYPE_CHECKING:  # distributed takes 2-3 s to import: only a night on a cluster pays it
    from distributed import Client

log = logging.getLogger(__name__)
T = TypeVar("T")
Item = TypeVar("Item")

# How long the flow waits for the scheduler to answer, and for at least one worker to join.
CONNECT_SECONDS = 10
WORKERS_SECONDS = 30
# How long a night waits for the tasks a killed night left running on the workers.
DRAIN_SECONDS = 60
# Files or objects of the inbox hashed per task on a worker (each GET of an S3 inbox is a round
# trip: a worker hashes its chunk several objects at a time).
HASH_CHUNK = 500
# Batches in flight at once, each waited for by a thread of the flow's task runner.
MOST_IN_FLIGHT = 64


class ClusterRefused(RuntimeError):
    """The cluster cannot take the night: unreachable, no workers, or other package versions."""


@dataclass(frozen=True, slots=True)
class Engine:
    """Where a night's batches are worked: a Dask cluster, this machine's pool, or (neither)
    the flow's own process."""

    pool: Executor | None = None
    client: Client | None = None
    ahead: int = 1  # batches sent at once: every worker busy, and one more waiting

    def run(self, key: str, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` on a worker of this engine, under a key naming the night and the
        batch; waits for it."""
        if self.client is not None:
            return on_cluster(self.client, key, function, *args)
        return run_in_pool(self.pool, function, *args)

    def work(
        self,
        index: int,
        batch: Sequence[ToRead],
        home: Home,
        max_bytes: int,
        lineage: Lineage,
        keep_raw: bool = True,
    ) -> Batch:
        """One batch worked (read, parsed, validated, staged) by this engine."""
        args = (index, list(batch), home, max_bytes, lineage, keep_raw)
        return self.run(f"batch-{lineage.run_id}-{index:05d}", work_named, *args)

    def split(self, batch: Batch, kept: pa.Array, home: Home, lineage: Lineage) -> list[Piece]:
        """A worked batch's rows of the lake (its kept articles, their index, its archive
        index) staged in pieces by table and partition, by this engine."""
        args = (batch.index, batch.passed, batch.archived, kept, home, lineage)
        return self.run(f"split-{lineage.run_id}-{batch.index:05d}", split_batch, *args)

    def write_file(self, table: str, pieces: list[str], location: str, home: Home) -> str:
        """Pieces gathered into one data file of the lake, by this engine."""
        return self.run(f"file-{location}", write_file, table, pieces, location, home)

    def each(self, function: Callable[[Item], T], items: Sequence[Item]) -> list[T]:
        """`function(item)` for every item, `ahead` at a time (each waits on its worker from a
        thread of this process), results in order. Each thread runs in a copy of the caller's
        context, so what it logs reaches the caller's task or flow run."""
        with ThreadPoolExecutor(self.ahead, thread_name_prefix="engine") as waiting:
            running = [
                waiting.submit(contextvars.copy_context().run, function, item) for item in items
            ]
            return [future.result() for future in running]

    def work_all(
        self,
        batches: Sequence[Sequence[ToRead]],
        home: Home,
        max_bytes: int,
        lineage: Lineage,
        keep_raw: bool = True,
    ) -> list[Batch]:
        """Every batch worked, in order (no task runs: for operations such as a reprocess,
        inside one open transaction)."""
        return self.each(
            lambda i: self.work(i, batches[i], home, max_bytes, lineage, keep_raw),
            range(len(batches)),
        )


@contextmanager
def connected(settings: Settings) -> Iterator[Client | None]:
    """The night's Dask client when a scheduler is set (checked first), else None."""
    if settings.dask_scheduler is None:
        yield None
        return
    with cluster(settings.dask_scheduler) as client:
        yield client


@contextmanager
def night_engine(
    settings: Settings, client: Client | None, to_read: Sequence[ToRead]
) -> Iterator[tuple[Engine, list[list[ToRead]]]]:
    """The engine for a night that reads `to_read`, and its batches.

    A batch is worked whole by one worker (a thread of a Dask worker, a process of the local
    pool), so a night has at least as many batches as there are workers, each of at most
    WIREHOUSE_BATCH_SIZE dumps. A night of fewer bytes than WIREHOUSE_POOL_MIN_BYTES is worked
    a batch at a time in the flow's process: a pool's start-up would cost it more than its work.
    """
    if client is not None:
        slots = threads(client)
        yield (
            Engine(client=client, ahead=min(slots + 1, MOST_IN_FLIGHT)),
            _batches(to_read, settings.batch_size, slots),
        )
        return
    small = sum(item.dump.bytes for item in to_read) < settings.pool_min_bytes
    slots = 1 if small else settings.parse_processes
    batches = _batches(to_read, settings.batch_size, slots)
    with local_pool(slots, len(batches)) as pool:
        ahead = 1 if pool is None else min(slots, len(batches)) + 1
        yield Engine(pool=pool, ahead=ahead), batches


def _batches(items: Sequence[ToRead], most: int, slots: int) -> list[list[ToRead]]:
    """`items` cut into batches of at most `most`, and into at least `slots` when there are
    that many (every worker gets one)."""
    size = max(1, min(most, -(-len(items) // slots)))
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


@contextmanager
def cluster(address: str) -> Iterator[Client]:
    """A client of the scheduler at `address`, checked before any work is sent."""
    from distributed import Client

    try:
        client = Client(address, timeout=CONNECT_SECONDS, set_as_default=False)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError, ValueError) as error:  # ValueError: a malformed address
        raise ClusterRefused(
            f"cannot reach the Dask scheduler at {address} ({error}). Start it "
            f"(`dask scheduler`) and its workers (`dask worker {address}`) from the project's "
            "environment, or unset WIREHOUSE_DASK_SCHEDULER (--dask-scheduler) to parse on "
            "this machine."
        ) from error
    try:
        _check(client, address)
        yield client
    finally:
        client.close()  # type: ignore[no-untyped-call]


def _check(client: Client, address: str) -> None:
    try:
        client.wait_for_workers(1, timeout=WORKERS_SECONDS)
    except TimeoutError:
        raise ClusterRefused(
            f"the Dask scheduler at {address} has no workers after {WORKERS_SECONDS} s: "
            f"start some with `dask worker {address}`"
        ) from None
    ours = environment()
    # Each worker's answer, or its error: a worker that went away while asked (killed,
    # restarted) is left out, as the work it would have had goes to the others.
    found: dict[str, Any] = client.run(environment, on_error="return")
    theirs: dict[str, dict[str, str]] = {}
    for worker, answer in found.items():
        if isinstance(answer, ModuleNotFoundError):
            raise ClusterRefused(
                f"the workers of {address} cannot import this project ({answer}): start them "
                "from the project's environment (`.venv/bin/dask worker ...` in a checkout of "
                "the same commit)"
            ) from answer
        if isinstance(answer, BaseException) and not isinstance(answer, OSError):
            raise answer
        if not isinstance(answer, BaseException):
            theirs[worker] = answer
    if not theirs:
        raise ClusterRefused(
            f"no worker of the Dask scheduler at {address} answered (they went away while "
            f"asked): check them (`dask worker {address}`), then run again"
        )
    _drained(client)
    names = workers(client)
    differences = [
        f"{names.get(address, address)} ({address}): {name} {found} "
        f"(here {ours.get(name, 'not installed')})"
        for address, env in sorted(theirs.items())
        for name, found in sorted(env.items())
        if ours.get(name) != found
    ]
    if differences:
        raise ClusterRefused(
            f"the workers of {address} run other versions than this flow, so they could "
            "parse the same dumps into other rows; nothing was sent. Install the same "
            "environment on them (`uv sync --frozen` of this commit) and restart them. "
            "Differences: " + "; ".join(differences)
        )


def _drained(client: Client) -> None:
    """Wait until no worker runs a task. A night killed mid-way leaves its running tasks behind
    (a worker cannot stop one): a data file one writes after this night's recovery would stay
    unreferenced until the next night. After DRAIN_SECONDS, go on (the next recovery clears)."""
    deadline = time.monotonic() + DRAIN_SECONDS
    while busy := sum(
        n for n in client.run(_running, on_error="return").values() if isinstance(n, int)
    ):
        if time.monotonic() >= deadline:
            _run_log().warning("the workers still run %d tasks of an earlier night", busy)
            return
        time.sleep(0.2)


def _running(dask_worker: Any) -> int:
    """How many tasks this worker runs now (a night's that ended without them too)."""
    state = dask_worker.state
    return len(state.executing) + len(state.long_running)


def environment() -> dict[str, str]:
    """What must be equal on the flow's machine and on every worker for the rows to be equal:
    Python, the parser's version, and the installed versions of this project and of every
    package it requires."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    found = {
        "python": ".".join(map(str, sys.version_info[:3])),
        "parser": PARSER_VERSION,
        "wirehouse": importlib.metadata.version("wirehouse"),
    }
    for text in importlib.metadata.requires("wirehouse") or []:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue  # an extra's, or another platform's
        name = canonicalize_name(requirement.name)
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def on_cluster(client: Client, key: str, function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` on the cluster; waits for it.

    A worker that dies mid-way (killed, out of memory) loses nothing: the scheduler runs the
    work again on another worker (what a batch writes is rewritten whole under the same
    names), and the task's log says which worker left. Work that kills every worker it meets
    fails the task with Dask's KilledWorker, which names the last one.
    """
    before = workers(client)
    future = client.submit(function, *args, key=key, pure=False)
    try:
        done: T = future.result()
    finally:
        gone = sorted(set(before) - set(workers(client)))
        if gone:
            _run_log().warning(
                "worker %s left the cluster while %s ran; the scheduler runs its work on the "
                "other workers",
                ", ".join(f"{before[a]} ({a})" if before[a] != a else a for a in gone),
                key,
            )
    return done


def _run_log() -> Any:
    """The task run's logger (its lines reach the Prefect UI), or this module's outside one."""
    try:
        return get_run_logger()
    except MissingContextError:
        return log


def hash_on_cluster(client: Client, s3: S3Access | None) -> Hasher:
    """Hash the inbox's files or objects on the cluster's workers, in chunks: the flow lists
    the inbox and matches the hashes against the ledger, the workers read the bytes (a folder
    inbox: at the same path, as they read it to parse)."""

    def hash_many(objects: list[tuple[str, int]]) -> list[str]:
        chunks = [objects[i : i + HASH_CHUNK] for i in range(0, len(objects), HASH_CHUNK)]
        futures = client.map(hash_locations, chunks, s3=s3, pure=False)
        return [sha for future in futures for sha in future.result()]

    return hash_many


def workers(client: Client) -> dict[str, str]:
    """The cluster's workers now: address -> name."""
    info: dict[str, Any] = client.scheduler_info(n_workers=-1)["workers"]
    return {address: str(w.get("name", address)) for address, w in info.items()}


def threads(client: Client) -> int:
    """Worker threads of the cluster: how many batches it works at once."""
    counts: dict[str, int] = client.nthreads()  # type: ignore[no-untyped-call]
    return max(1, sum(counts.values()))
