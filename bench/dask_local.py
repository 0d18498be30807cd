"""A Dask scheduler and single-threaded workers on loopback, started with the `dask` command of
the project's environment as an operator would start them (shared by the tests and the bench)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"


@dataclass
class DaskCluster:
    """A Dask scheduler and worker processes on loopback, started with the `dask` command of
    the project's environment, as an operator would start them."""

    address: str
    folder: Path
    processes: dict[str, subprocess.Popen[bytes]]
    env: dict[str, str] = field(default_factory=dict)

    def start_worker(
        self, name: str, env: dict[str, str] | None = None, nanny: bool = False
    ) -> subprocess.Popen[bytes]:
        """One worker process of one thread, named `name`; `env` added to this environment."""
        log = (self.folder / f"{name}.log").open("wb")
        command = [
            _dask(),
            "worker",
            self.address,
            "--name",
            name,
            "--nthreads",
            "1",
            "--host",
            LOOPBACK,
            "--no-dashboard",
            "--nanny" if nanny else "--no-nanny",
            "--local-directory",
            str(self.folder / name),
        ]
        process = subprocess.Popen(
            command,
            env={**os.environ, **self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes[name] = process
        return process

    def start_scheduler(self) -> None:
        """The scheduler process, at the cluster's address."""
        port = self.address.rsplit(":", 1)[1]
        log = (self.folder / "scheduler.log").open("ab")
        self.processes["scheduler"] = subprocess.Popen(
            [_dask(), "scheduler", "--host", LOOPBACK, "--port", port, "--no-dashboard"],
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def restart(self, timeout: float = 60.0) -> None:
        """Stop the scheduler and every worker, then start them again at the same address
        (as an operator restarts a cluster between nights)."""
        workers = [name for name in self.processes if name != "scheduler"]
        self.stop()
        self.processes = {}
        self.start_scheduler()
        for name in workers:
            self.start_worker(name)
        self.wait_for_workers(len(workers), timeout=timeout)

    def wait_for_workers(self, count: int, timeout: float = 60.0) -> None:
        """Block until `count` workers have joined the scheduler."""
        from distributed import Client

        with Client(self.address, timeout=timeout, set_as_default=False) as client:
            client.wait_for_workers(count, timeout=timeout)

    def stop(self) -> None:
        """Stop every process (workers first), waiting for each."""
        for process in reversed(list(self.processes.values())):
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _dask() -> str:
    """The `dask` command beside this interpreter (the project's environment)."""
    return str(Path(sys.executable).with_name("dask"))


@contextmanager
def dask_cluster_of(
    folder: Path, workers: int = 2, env: dict[str, str] | None = None
) -> Iterator[DaskCluster]:
    """A scheduler on a free loopback port and `workers` worker processes of one thread each,
    `env` added to their environment (as an operator sets a worker machine's)."""
    folder.mkdir(parents=True, exist_ok=True)
    cluster = DaskCluster(f"tcp://{LOOPBACK}:{free_port()}", folder, {}, dict(env or {}))
    cluster.start_scheduler()
    try:
        for i in range(workers):
            cluster.start_worker(f"worker-{i + 1}")
        if workers:
            cluster.wait_for_workers(workers)
        yield cluster
    finally:
        cluster.stop()
