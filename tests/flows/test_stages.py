"""work_batch on its own: a batch worked in slices, in the pool or here, gives the same rows;
a dead worker loses nothing; validation happens on the worker, its result handed back. The
write pass writes the lake's rows of a batch's kept articles and its whole archive index."""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, wait
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import flows.pool
import flows.stages
import flows.worker
from flows.worker import (
    WRITTEN_TABLES,
    Batch,
    Piece,
    ToRead,
    signatures_of,
    split_batch,
    work_named,
    write_file,
)
from tests.conftest import SAMPLES
from transforms.night import Dump, Lineage
from warehouse.archive import INDEX_SCHEMA
from warehouse.home import Home
from warehouse.inbox import find_arrivals
from warehouse.nearindex import index_rows

MAX_BYTES = 8 * 1024 * 1024
LINEAGE = Lineage("20261127T000000Z-abcdef", datetime(2026, 11, 27, tzinfo=UTC))


def _to_read(inbox: Path) -> list[ToRead]:
    """The inbox's files, one per content hash, as a night would read them."""
    first: dict[str, ToRead] = {}
    for found in find_arrivals(inbox, 0).files:
        dump = Dump(found.dump_file, found.sha256, found.bytes)
        first.setdefault(found.sha256, ToRead(dump, found.path))
    return list(first.values())


def _work(root: Path, batch: list[ToRead], pool: ProcessPoolExecutor | None = None) -> Batch:
    home = Home.at(root).ensure()
    return flows.pool.run_in_pool(pool, work_named, 0, batch, home, MAX_BYTES, LINEAGE, True)


def _outcome(worked: Batch) -> tuple[object, ...]:
    """Everything a batch hands on, the staged rows read back, in order."""
    assert worked.passed is not None and worked.archived is not None
    return (
        pq.read_table(worked.passed).to_pylist(),
        np.load(signatures_of(worked.passed)).tolist(),
        worked.keys.to_pylist(),
        worked.dumps.to_pylist(),
        worked.signatures.tolist(),
        pq.read_table(worked.archived).sort_by("dump_sha256").to_pylist(),
        worked.statistics,
    )


def _pool(size: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(size, mp_context=multiprocessing.get_context("spawn"))


def test_a_batch_worked_in_small_slices_equals_one_worked_at_once(
    sample_inbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = _to_read(sample_inbox)
    whole = _work(tmp_path / "whole", batch)
    monkeypatch.setattr(flows.worker, "SLICE_BYTES", 20_000)  # slices of a few dumps
    sliced = _work(tmp_path / "sliced", batch)
    assert sorted(whole.dumps["dump_file"].to_pylist()) == sorted(i.dump.dump_file for i in batch)
    assert _outcome(sliced) == _outcome(whole)


def test_a_worker_process_validates_and_hands_back_keys_and_the_result(
    sample_inbox: Path, tmp_path: Path
) -> None:
    batch = _to_read(sample_inbox)
    here = _work(tmp_path / "here", batch)
    with flows.pool.local_pool(2, 2) as pool:
        assert pool is not None
        pooled = _work(tmp_path / "pooled", batch, pool)  # type: ignore[arg-type]
    assert pooled.worker.startswith("worker process ") and pooled.worker != here.worker
    assert _outcome(pooled) == _outcome(here)
    assert pooled.keys.column_names == flows.worker.KEY_COLUMNS
    assert pooled.keys.num_rows == len(pooled.signatures)
    valid = pooled.dumps.filter(pc.is_null(pooled.dumps["reason"]))
    assert sorted(valid["dump_file"].to_pylist()) == sorted(pooled.keys["dump_file"].to_pylist())
    # GX's own result, for the flow to store where Data Docs read it; nothing written on the
    # worker's side
    assert pooled.validation is not None and LINEAGE.run_id in pooled.validation.key[1]
    assert not (tmp_path / "pooled" / "gx").exists()


def test_failing_rows_are_not_staged_and_lose_their_signatures(tmp_path: Path) -> None:
    pages = tmp_path / "inbox"
    pages.mkdir()
    seed = next((SAMPLES / "2019").rglob("*.txt"))
    (pages / "a.txt").write_bytes(seed.read_bytes())
    # the same page stating a time in the far future: parsed, then refused by the suite
    late = seed.read_text(encoding="utf-8").replace("2019-05-02", "2099-05-02")
    (pages / "b.txt").write_text(late, encoding="utf-8")
    worked = _work(tmp_path / "home", _to_read(pages))
    fates = {row["dump_file"]: row for row in worked.dumps.to_pylist()}
    assert fates["a.txt"]["reason"] is None
    assert (fates["b.txt"]["stage"], fates["b.txt"]["reason"]) == ("validate", "failed_validation")
    assert "published_at" in fates["b.txt"]["detail"]
    assert worked.keys["dump_file"].to_pylist() == ["a.txt"]
    assert pq.read_table(worked.passed)["dump_file"].to_pylist() == ["a.txt"]
    assert len(worked.signatures) == 1
    assert np.array_equal(np.load(signatures_of(worked.passed)), worked.signatures)
    # both dumps' raw bytes are kept, whatever became of them
    assert pq.read_table(worked.archived).num_rows == 2


def test_the_write_pass_writes_the_kept_articles_their_index_and_all_raw_bytes(
    sample_inbox: Path, tmp_path: Path
) -> None:
    batch = _to_read(sample_inbox)
    home = Home.at(tmp_path / "home").ensure()
    worked = work_named(3, batch, home, MAX_BYTES, LINEAGE, True)
    assert worked.passed is not None and worked.archived is not None
    names = worked.keys["dump_file"]
    kept = names.filter(pa.array([i % 2 == 0 for i in range(len(names))]))
    pieces = split_batch(3, worked.passed, worked.archived, kept, home, LINEAGE)
    assert {p.table for p in pieces} == set(WRITTEN_TABLES)
    folders = {table: f"{tmp_path}/lake/{table}/" for table in WRITTEN_TABLES}
    planned = flows.stages.plan_files(pieces, folders, LINEAGE.run_id)
    # one file per table partition: the pieces are small
    assert len(planned) == len({(p.table, p.partition) for p in pieces})
    for f in planned:
        assert write_file(f.table, f.pieces, f.location, home) == f.location

    def rows(table: str) -> pa.Table:
        found = [f.location for f in planned if f.table == table]
        assert found and all(f.startswith(folders[table]) for f in found)
        return pa.concat_tables(pq.read_table(f) for f in found)

    articles = rows("articles")
    assert sorted(articles["dump_file"].to_pylist()) == sorted(kept.to_pylist())
    month = pc.strftime(articles["published_at"], "%Y-%m").to_pylist()
    assert articles["published_month"].to_pylist() == [m or "undated" for m in month]
    for f in planned:  # articles in their month's Hive-style folder, by publication time
        if f.table == "articles":
            written = pq.read_table(f.location)
            assert (
                len(set(written["published_month"].to_pylist())) == 1
                and "/published_month=" in f.location
            )
            times = written["published_at"].to_pylist()
            assert times == sorted(times, key=lambda t: (t is None, t))
    chosen = pc.is_in(names, value_set=kept).to_numpy(zero_copy_only=False)
    ids = worked.keys["article_id"].filter(pa.array(chosen))
    expected = index_rows(ids, worked.signatures[chosen], LINEAGE.run_id)
    for table, want in expected.items():
        got = rows(table)
        assert got.num_rows == want.num_rows > 0
        assert sorted(got.to_pylist(), key=str) == sorted(want.to_pylist(), key=str)
    archive = rows("archive_index")
    assert archive.num_rows == len(batch)
    assert (
        archive.select(INDEX_SCHEMA.names)
        .sort_by("dump_sha256")
        .equals(pq.read_table(worked.archived).sort_by("dump_sha256"))
    )
    assert set(archive["run_id"].to_pylist()) == {LINEAGE.run_id}
    # nothing kept: the raw bytes' index alone
    none = split_batch(3, worked.passed, worked.archived, kept.slice(0, 0), home, LINEAGE)
    assert [p.table for p in none] == ["archive_index"]


def test_pieces_are_gathered_by_partition_into_files_of_a_bounded_size() -> None:
    def piece(table: str, partition: str, batch: int, size: int) -> Piece:
        return Piece(table, partition, f"staged/{table}/{partition}/{batch}", size)

    pieces = [
        piece("articles", "published_month=2019-05", 0, 60),
        piece("articles", "published_month=2019-06", 0, 10),
        piece("minhash_bands", "", 0, 30),
        piece("articles", "published_month=2019-05", 1, 30),
        piece("articles", "published_month=2019-05", 2, 20),
        piece("minhash_bands", "", 1, 30),
    ]
    folders = {"articles": "s3://b/lake/main/articles/", "minhash_bands": "/lake/main/bands/"}
    planned = flows.stages.plan_files(pieces, folders, "R", most_bytes=100)
    assert [(f.table, f.location, f.pieces) for f in planned] == [
        (
            "articles",
            "s3://b/lake/main/articles/published_month=2019-05/wirehouse-R-00000.parquet",
            [
                "staged/articles/published_month=2019-05/0",
                "staged/articles/published_month=2019-05/1",
            ],
        ),
        (
            "articles",
            "s3://b/lake/main/articles/published_month=2019-05/wirehouse-R-00001.parquet",
            ["staged/articles/published_month=2019-05/2"],
        ),
        (
            "articles",
            "s3://b/lake/main/articles/published_month=2019-06/wirehouse-R-00000.parquet",
            ["staged/articles/published_month=2019-06/0"],
        ),
        (
            "minhash_bands",
            "/lake/main/bands/wirehouse-R-00000.parquet",
            ["staged/minhash_bands//0", "staged/minhash_bands//1"],
        ),
    ]
    # a piece larger than a file's bound is a file of its own
    big = flows.stages.plan_files([piece("articles", "", 0, 500)], folders, "R", most_bytes=100)
    assert [f.pieces for f in big] == [["staged/articles//0"]]


def test_a_dead_worker_pool_leaves_its_batch_to_this_process(
    sample_inbox: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    batch = _to_read(sample_inbox)
    here = _work(tmp_path / "here", batch)
    with _pool(1) as pool:
        wait([pool.submit(os._exit, 1)])  # the only worker dies: the pool is broken
        with caplog.at_level(logging.WARNING, logger="flows.pool"):
            rescued = _work(tmp_path / "rescued", batch, pool)
    assert _outcome(rescued) == _outcome(here)
    assert "a worker process died" in caplog.text


def test_key_columns_become_the_python_values_pyarrow_gives(tmp_path: Path) -> None:
    # Dedupe reads the key columns of a night's valid articles (real ones, with their dates).
    table = _work(tmp_path, _to_read(SAMPLES)).keys
    stamps = table["published_at"]
    assert stamps.null_count < len(stamps)  # dated articles, and undated ones when there are
    with_gaps = pa.chunked_array([stamps.chunk(0), pa.array([None], stamps.type)])
    for column in [*table.columns, with_gaps]:
        assert flows.stages._python_values(column) == column.to_pylist()
    times = flows.stages._python_values(with_gaps)
    assert all(t is None or t.tzinfo is not None for t in times)
