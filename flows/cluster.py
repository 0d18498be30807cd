"""A night's parse batches on a Dask cluster (WIREHOUSE_DASK_SCHEDULER).

The flow's process keeps what must be serial (discovery against the ledger, validation with
its Data Docs, dedupe against history, the one commit) and sends each parse batch, whole, to
the cluster: the worker reads the batch's dumps from the inbox itself, archives them, decodes,
parses and signs them, and stages the articles where the flow commits them. Only the batch's
small result (names, rejections, signatures) comes back. The function the worker runs is
`flows.stages.parse_batch`, the one the flow runs on a single machine.
"""

from __future__ import annotations

import importlib.metadata
import logging
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from prefect import get_run_logger

from flows.settings import Settings
from flows.stages import ParsedBatch, ToRead, parse_batch
from flows.workers import parse_workers
from transforms.night import Lineage
from transforms.records import PARSER_VERSION
from warehouse.home import Home, S3Access
from warehouse.remote_inbox import Hasher, hash_objects

if TYPE_CHECKING:  # distributed takes 2-3 s to import: only a night on a cluster pays it
    from distributed import Client

log = logging.getLogger(__name__)

# How long the flow waits for the scheduler to answer, and for at least one worker to join.
CONNECT_SECONDS = 10
WORKERS_SECONDS = 30
# Objects of an S3 inbox hashed per task on a worker (each GET is a round trip: a worker hashes
# its chunk several objects at a time).
HASH_CHUNK = 500
# Batches in flight at once, each waited for by a thread of the flow's task runner.
MOST_IN_FLIGHT = 64
# On one machine: two batches parse at a time, each feeding the pool of worker processes.
LOCAL_AHEAD = 2


class ClusterRefused(RuntimeError):
    """The cluster cannot take the night: unreachable, no workers, or other package versions."""


@dataclass(frozen=True, slots=True)
class Engine:
    """Where a night's batches are parsed: this machine's processes, or a Dask cluster."""

    workers: Executor | None = None  # the local pool (None: in the flow's process)
    client: Client | None = None
    ahead: int = LOCAL_AHEAD  # batches parsing at once


@contextmanager
def connected(settings: Settings) -> Iterator[Client | None]:
    """The night's Dask client when a scheduler is set (checked first), else None."""
    if settings.dask_scheduler is None:
        yield None
        return
    with cluster(settings.dask_scheduler) as client:
        yield client


@contextmanager
def parse_engine(settings: Settings, client: Client | None, pieces: int) -> Iterator[Engine]:
    """The engine for a night of `pieces` (batches or slices): the cluster, or a local pool."""
    if client is not None:
        yield Engine(client=client, ahead=min(threads(client) + 1, MOST_IN_FLIGHT))
        return
    with parse_workers(settings.parse_processes, pieces) as pool:
        yield Engine(workers=pool)


def batch_size(settings: Settings, client: Client | None, dumps: int) -> int:
    """Dumps per parse batch: the setting, or fewer so that every worker thread of the
    cluster gets a batch (a batch parses in one thread there; on one machine it is spread
    over the cores in slices)."""
    if client is None:
        return settings.batch_size
    return max(1, min(settings.batch_size, -(-dumps // threads(client))))


@contextmanager
def cluster(address: str) -> Iterator[Client]:
    """A client of the scheduler at `address`, checked before any work is sent."""
    from distributed import Client

    try:
        client = Client(address, timeout=CONNECT_SECONDS, set_as_default=False)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError) as error:
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
    try:
        theirs: dict[str, dict[str, str]] = client.run(environment)
    except ModuleNotFoundError as error:
        raise ClusterRefused(
            f"the workers of {address} cannot import this project ({error}): start them "
            "from the project's environment (`.venv/bin/dask worker ...` in a checkout of "
            "the same commit)"
        ) from error
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


def environment() -> dict[str, str]:
    """What must be equal on the flow's machine and on every worker for the rows to be equal:
    Python, the parser's version, and the installed versions of this project and of every
    package it requires."""
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


def parse_on_cluster(
    client: Client,
    index: int,
    batch: Sequence[ToRead],
    home: Home,
    max_bytes: int,
    lineage: Lineage,
    keep_raw: bool = True,
) -> tuple[ParsedBatch, str]:
    """Parse one batch on the cluster: the result, and the worker that parsed it.

    A worker that dies mid-batch (killed, out of memory) loses nothing: the scheduler runs the
    batch again on another worker (a batch's pack and staged file are rewritten whole under the
    same names), and the task's log says which worker left. A batch that kills every worker
    it meets fails the task with Dask's KilledWorker, which names the last one.
    """
    before = workers(client)
    future = _submit(client, index, batch, home, max_bytes, lineage, keep_raw)
    try:
        parsed, where = future.result()
    finally:
        gone = sorted(set(before) - set(workers(client)))
        if gone:
            get_run_logger().warning(
                "worker %s left the cluster while batch %d was parsed; the scheduler runs "
                "its work on the other workers",
                ", ".join(f"{before[a]} ({a})" if before[a] != a else a for a in gone),
                index,
            )
    return parsed, where


def hash_on_cluster(client: Client, s3: S3Access | None) -> Hasher:
    """Hash an S3 inbox's objects on the cluster's workers, in chunks: the flow lists the inbox
    and matches the hashes against the ledger, the workers read the bytes."""

    def hash_many(objects: list[tuple[str, int]]) -> list[str]:
        chunks = [objects[i : i + HASH_CHUNK] for i in range(0, len(objects), HASH_CHUNK)]
        futures = client.map(hash_objects, chunks, s3=s3, pure=False)
        return [sha for future in futures for sha in future.result()]

    return hash_many


def parse_batches(
    engine: Engine,
    batches: Sequence[Sequence[ToRead]],
    home: Home,
    max_bytes: int,
    lineage: Lineage,
    keep_raw: bool = True,
) -> list[ParsedBatch]:
    """Parse batches one after another here, or all at once on the cluster (no task runs:
    for operations such as a reprocess, inside one open transaction)."""
    if engine.client is None:
        return [
            parse_batch(i, batch, home, max_bytes, lineage, engine.workers, keep_raw)
            for i, batch in enumerate(batches)
        ]
    client = engine.client
    futures = [
        _submit(client, i, batch, home, max_bytes, lineage, keep_raw)
        for i, batch in enumerate(batches)
    ]
    return [future.result()[0] for future in futures]


def _submit(
    client: Client,
    index: int,
    batch: Sequence[ToRead],
    home: Home,
    max_bytes: int,
    lineage: Lineage,
    keep_raw: bool,
) -> Any:
    """One batch sent to the cluster, under a key that names the night and the batch."""
    key = f"parse-{lineage.run_id}-{index:05d}"
    return client.submit(
        parse_on_worker, index, list(batch), home, max_bytes, lineage, keep_raw, key=key, pure=False
    )


def parse_on_worker(
    index: int,
    batch: list[ToRead],
    home: Home,
    max_bytes: int,
    lineage: Lineage,
    keep_raw: bool,
) -> tuple[ParsedBatch, str]:
    """On a worker: parse a batch in this process; the result and this worker's name."""
    parsed = parse_batch(index, batch, home, max_bytes, lineage, None, keep_raw)
    return parsed, worker_name()


def worker_name() -> str:
    """This worker's name and address, as the scheduler's dashboard shows them."""
    from distributed import get_worker

    worker = get_worker()
    return f"{worker.name} ({worker.address})" if worker.name != worker.address else worker.address


def workers(client: Client) -> dict[str, str]:
    """The cluster's workers now: address -> name."""
    info: dict[str, Any] = client.scheduler_info(n_workers=-1)["workers"]
    return {address: str(w.get("name", address)) for address, w in info.items()}


def threads(client: Client) -> int:
    """Worker threads of the cluster: how many batches it parses at once."""
    counts: dict[str, int] = client.nthreads()  # type: ignore[no-untyped-call]
    return max(1, sum(counts.values()))
