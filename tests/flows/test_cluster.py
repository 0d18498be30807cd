"""Nights worked on a real Dask cluster: a scheduler and worker processes of the `dask` command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.settings import PREFECT_API_URL

from bench.dask_local import DaskCluster, dask_cluster_of, free_port
from flows.cluster import ClusterRefused
from flows.nightly import nightly_ingest
from flows.reprocess import reprocess_archive
from tests.servers import S3Server
from tests.state import snapshot
from tests.warehouse.test_remote_inbox import listing, upload
from warehouse.catalog import lake_connection, table_folder
from warehouse.home import Home
from warehouse.verify import verify

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture(autouse=True)
def _small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 20 dumps: the sample inbox's 78 files give every worker several."""
    monkeypatch.setenv("WIREHOUSE_BUILD_DOCS", "0")
    monkeypatch.setenv("WIREHOUSE_BATCH_SIZE", "20")


def _log_lines(summary: dict[str, Any], home: Home) -> list[str]:
    """What the night's task runs logged, as the Prefect UI shows it."""
    with lake_connection(home) as con:
        [(flow_run,)] = con.execute(
            "SELECT flow_run_id FROM runs WHERE run_id = ?", [summary["run_id"]]
        ).fetchall()
    logs_filter = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run]))
    with get_client(sync_client=True) as client:
        return [log.message for log in client.read_logs(log_filter=logs_filter, limit=200)]


def test_a_night_on_the_cluster_with_everything_remote_gives_the_embedded_rows(
    sample_inbox_with_bundles: Path,
    tmp_path: Path,
    dask_cluster: DaskCluster,
    postgres_dsn: str,
    s3_server: S3Server,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    embedded = tmp_path / "embedded"
    nightly_ingest(inbox=str(sample_inbox_with_bundles), home=str(embedded))
    upload(s3_server, s3_bucket, sample_inbox_with_bundles, "inbox/")
    inbox_before = listing(s3_server, s3_bucket)
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("WIREHOUSE_CATALOG", f"postgres:{postgres_dsn}")
    for setting, prefix in (("INBOX", "inbox"), ("DATA_PATH", "lake"), ("ARCHIVE", "archive")):
        monkeypatch.setenv(f"WIREHOUSE_{setting}", f"s3://{s3_bucket}/{prefix}/")
    monkeypatch.setenv("WIREHOUSE_STAGING", f"s3://{s3_bucket}/staging/")
    hashed_before = _tasks_done(dask_cluster, "hash_locations")
    summary = nightly_ingest(home=str(tmp_path / "remote"), dask_scheduler=dask_cluster.address)
    remote = Home.from_env(tmp_path / "remote")
    assert summary["status"] == "succeeded" and summary["violations"] == []
    assert snapshot(remote) == snapshot(embedded)
    assert verify(remote, inbox=f"s3://{s3_bucket}/inbox", deep=True) == []
    # the workers hashed the inbox's objects at discovery; each batch was worked (parsed and
    # validated) on a worker, both workers had some, and the UI's logs say which
    assert _tasks_done(dask_cluster, "hash_locations") > hashed_before
    parsed = [line for line in _log_lines(summary, remote) if line.startswith("worked ")]
    assert len(parsed) >= 2
    assert {name for name in ("worker-1", "worker-2") if any(name in p for p in parsed)} == {
        "worker-1",
        "worker-2",
    }
    # the workers wrote the archive's packs to the bucket and staged their batches there (gone
    # once committed); the inbox is as it was; the home holds no archive and no staging
    objects = listing(s3_server, s3_bucket)
    keys = [key for key, *_ in objects]
    assert sum(k.startswith("archive/packs/") for k in keys) == len(parsed)
    assert not [k for k in keys if k.startswith("staging/")]
    assert [o for o in objects if o[0].startswith("inbox/")] == inbox_before
    assert not (tmp_path / "remote" / "archive").exists()
    assert not (tmp_path / "remote" / "staging").exists()
    again = nightly_ingest(home=str(tmp_path / "remote"), dask_scheduler=dask_cluster.address)
    assert again["counts"]["files"] == 0 and snapshot(remote) == snapshot(embedded)


@pytest.mark.parametrize(
    "crash_at",
    [
        # at its first checkpoint: its batch's pack written and its dumps parsed, before the
        # validation and before anything goes back
        "1",
        # once the decisions came back and it gathered staged pieces into one of the lake's
        # data files, before it says so: the file is written again, whole, by another worker
        "write:file",
    ],
)
def test_a_worker_killed_mid_night_loses_nothing(
    sample_inbox: Path, tmp_path: Path, crash_at: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedded = tmp_path / "embedded"
    nightly_ingest(inbox=str(sample_inbox), home=str(embedded))
    monkeypatch.setenv("WIREHOUSE_BATCH_SIZE", "6")  # batches enough for both workers
    with dask_cluster_of(tmp_path / "dask", workers=1) as cluster:
        # This worker kills itself (SIGKILL, as `kill -9`) there.
        cluster.start_worker("doomed", env={"WIREHOUSE_CRASH_AT": crash_at})
        cluster.wait_for_workers(2)
        home = tmp_path / "home"
        summary = nightly_ingest(
            inbox=str(sample_inbox), home=str(home), dask_scheduler=cluster.address
        )
        assert cluster.processes["doomed"].wait(timeout=30) == -9
        # the workers hashed the folder inbox at discovery, as they read it to parse
        assert _tasks_done(cluster, "hash_locations") > 0
    assert summary["status"] == "succeeded"
    lines = _log_lines(summary, Home.at(home))
    assert any("worker doomed" in line and "left the cluster" in line for line in lines), lines
    assert snapshot(Home.at(home)) == snapshot(embedded)  # nothing lost, nothing twice
    assert verify(Home.at(home), deep=True) == []


def test_an_unreachable_scheduler_fails_at_the_start_naming_it(
    sample_inbox: Path, tmp_path: Path
) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    home = tmp_path / "home"
    command = [str(Path(sys.executable).with_name("wirehouse")), "--home", str(home), "ingest"]
    done = subprocess.run(
        [*command, "--inbox", str(sample_inbox), "--dask-scheduler", address],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"cannot reach the Dask scheduler at {address}" in " ".join(done.stderr.split())
    assert not (home / "catalog.sqlite").exists()  # refused before anything was done


def test_workers_with_other_package_versions_are_refused_before_any_work(
    sample_inbox: Path, tmp_path: Path
) -> None:
    # The worker's environment says pyarrow 99.0.0: a dist-info ahead of site-packages.
    fake = tmp_path / "other-env"
    (fake / "pyarrow-99.0.0.dist-info").mkdir(parents=True)
    (fake / "pyarrow-99.0.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: pyarrow\nVersion: 99.0.0\n"
    )
    with dask_cluster_of(tmp_path / "dask", workers=0) as cluster:
        cluster.start_worker("stale", env={"PYTHONPATH": str(fake)})
        cluster.wait_for_workers(1)
        home = tmp_path / "home"
        with pytest.raises(ClusterRefused, match=r"stale.*pyarrow 99\.0\.0 \(here 26\.0\.1\)"):
            nightly_ingest(inbox=str(sample_inbox), home=str(home), dask_scheduler=cluster.address)
    assert not (home / "catalog.sqlite").exists()
    assert not any((home / "archive" / "packs").glob("*"))


def test_a_reprocess_on_the_cluster_changes_no_row(
    sample_inbox: Path, tmp_path: Path, dask_cluster: DaskCluster
) -> None:
    home = tmp_path / "home"
    nightly_ingest(inbox=str(sample_inbox), home=str(home))
    before = snapshot(Home.at(home))
    parsed_before = _tasks_done(dask_cluster, "batch")
    done = reprocess_archive(home=str(home), dask_scheduler=dask_cluster.address)
    assert len(done["nights"]) == 1
    assert _tasks_done(dask_cluster, "batch") > parsed_before  # the replay worked on the cluster
    assert snapshot(Home.at(home)) == before  # the same parser, the same rows


def _tasks_done(cluster: DaskCluster, name: str) -> int:
    """Tasks of a function (a key prefix) the scheduler has finished with so far."""
    from distributed import Client

    def count(dask_scheduler: Any) -> int:
        prefix = dask_scheduler.task_prefixes.get(name)
        return 0 if prefix is None else int(prefix.state_counts["forgotten"])

    with Client(cluster.address, set_as_default=False) as client:
        return int(client.run_on_scheduler(count))


def test_a_worker_dying_while_the_cluster_is_checked_is_left_out(
    sample_inbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The night asks every worker for its versions first; one killed as it answers (a
    worker's crash, an operator's restart) is no reason to fail the night: the other works."""
    import flows.cluster

    versions = flows.cluster.environment

    def dying_when_asked() -> dict[str, str]:  # sent by value: the workers run this one
        if os.environ.get("DOOMED"):
            os.kill(os.getpid(), signal.SIGKILL)
        return versions()

    monkeypatch.setattr(flows.cluster, "environment", dying_when_asked)
    with dask_cluster_of(tmp_path / "dask", workers=0) as cluster:
        cluster.start_worker("doomed", env={"DOOMED": "1"})
        cluster.start_worker("steady")
        cluster.wait_for_workers(2)
        home = tmp_path / "home"
        summary = nightly_ingest(
            inbox=str(sample_inbox), home=str(home), dask_scheduler=cluster.address
        )
        assert cluster.processes["doomed"].wait(timeout=30) == -9  # killed as it answered
    assert summary["status"] == "succeeded" and summary["violations"] == []
    assert verify(Home.at(home)) == []


def test_a_night_waits_for_the_tasks_a_killed_night_left_running(
    sample_inbox: Path, tmp_path: Path
) -> None:
    """A night killed during its write stage leaves the data file a worker is writing: the
    worker finishes it after the client is gone. The next night waits for the workers to
    finish before its recovery, so that file is cleared, not left unreferenced."""
    from distributed import Client

    home = tmp_path / "home"
    with dask_cluster_of(tmp_path / "dask", workers=1) as cluster:
        nightly_ingest(inbox=str(sample_inbox), home=str(home), dask_scheduler=cluster.address)
        with lake_connection(Home.at(home)) as con:
            folder = table_folder(con, Home.at(home), "articles")
            stray = f"{folder}ducklake-left-by-a-killed-night.parquet"
            con.execute(f"COPY (SELECT 1 AS x) TO '{stray}.src' (FORMAT parquet)")
        # The killed night's client: a write that lands seconds after it went away.
        killed = Client(cluster.address, set_as_default=False)
        late = killed.submit(subprocess.run, ["sh", "-c", f"sleep 5; mv '{stray}.src' '{stray}'"])
        while not cluster_running(killed):
            time.sleep(0.05)
        killed.close()
        del late  # held until its client went: a future let go first cancels a waiting task
        summary = nightly_ingest(
            inbox=str(sample_inbox), home=str(home), dask_scheduler=cluster.address
        )
    assert summary["status"] == "succeeded"
    assert Path(stray + ".src").exists() is False  # the late write happened during the night
    assert verify(Home.at(home)) == []  # and its file was cleared by the night's recovery


def cluster_running(client: Any) -> bool:
    """Whether a worker runs a task now."""
    return any(client.processing().values())
