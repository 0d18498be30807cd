"""parse_batch on its own: dumps go to worker processes in slices; a dead worker loses nothing."""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, wait
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import flows.stages
import flows.workers
from flows.stages import ParsedBatch, ToRead, parse_batch
from tests.conftest import SAMPLES
from transforms.night import Dump, Lineage
from warehouse.home import Home
from warehouse.inbox import find_arrivals

MAX_BYTES = 8 * 1024 * 1024


def _to_read(inbox: Path) -> list[ToRead]:
    """The inbox's files, one per content hash, as a night would read them."""
    first: dict[str, ToRead] = {}
    for found in find_arrivals(inbox, 0).files:
        dump = Dump(found.dump_file, found.sha256, found.bytes)
        first.setdefault(found.sha256, ToRead(dump, found.path))
    return list(first.values())


def _parse(root: Path, batch: list[ToRead], workers: ProcessPoolExecutor | None) -> ParsedBatch:
    home = Home.at(root).ensure()
    lineage = Lineage("20261127T000000Z-abcdef", datetime(2026, 11, 27, tzinfo=UTC))
    return parse_batch(0, batch, home, MAX_BYTES, lineage, workers)


def _outcome(parsed: ParsedBatch) -> tuple[object, ...]:
    """Everything a batch hands on, the staged rows read back, in order."""
    assert parsed.staged is not None
    return (
        pq.read_table(parsed.staged).to_pylist(),
        [(a.dump.dump_file, a.encoding) for a in parsed.articles],
        [(r.dump.dump_file, r.stage, r.result) for r in parsed.rejected],
        parsed.signatures.tolist(),
        sorted(parsed.archived),
    )


def _pool(size: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(size, mp_context=multiprocessing.get_context("spawn"))


@pytest.fixture
def small_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Slices of a few dumps, and little unparsed at a time: many slices, waits on the way."""
    monkeypatch.setattr(flows.stages, "SLICE_BYTES", 20_000)
    monkeypatch.setattr(flows.workers, "IN_FLIGHT_BYTES", 60_000)


@pytest.mark.usefixtures("small_slices")
def test_slices_parsed_by_workers_match_parsing_in_process(
    sample_inbox: Path, tmp_path: Path
) -> None:
    batch = _to_read(sample_inbox)
    alone = _parse(tmp_path / "alone", batch, None)
    with _pool(2) as workers:
        pooled = _parse(tmp_path / "pooled", batch, workers)
    assert len(alone.articles) + len(alone.rejected) == len(batch)
    assert _outcome(pooled) == _outcome(alone)


@pytest.mark.usefixtures("small_slices")
def test_a_dead_worker_pool_leaves_its_slices_to_this_process(
    sample_inbox: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    batch = _to_read(sample_inbox)
    alone = _parse(tmp_path / "alone", batch, None)
    with _pool(1) as workers:
        wait([workers.submit(os._exit, 1)])  # the only worker dies: the pool is broken
        with caplog.at_level(logging.WARNING, logger="flows.workers"):
            rescued = _parse(tmp_path / "rescued", batch, workers)
    assert _outcome(rescued) == _outcome(alone)
    assert "parse worker process died" in caplog.text


def test_the_nights_workers_parse_without_pandas(sample_inbox: Path, tmp_path: Path) -> None:
    """The flow's own pool: the same result, and pyarrow's lazy import of pandas refused
    there (a third of a second per worker per night) without breaking what parsing needs."""
    batch = _to_read(sample_inbox)
    alone = _parse(tmp_path / "alone", batch, None)
    with flows.workers.parse_workers(2, 10) as workers:
        assert workers is not None
        pooled = _parse(tmp_path / "pooled", batch, workers)
        loaded = [workers.submit(_modules_loaded) for _ in range(4)]
        assert {future.result() for future in loaded} == {(True, False)}
    assert _outcome(pooled) == _outcome(alone)


def _modules_loaded() -> tuple[bool, bool]:
    """In a worker: whether pyarrow and pandas are imported."""
    import sys

    return "pyarrow" in sys.modules, "pandas" in sys.modules


def test_key_columns_become_the_python_values_pyarrow_gives(tmp_path: Path) -> None:
    # Dedupe reads the key columns of a night's staged articles (real ones, with their dates).
    parsed = _parse(tmp_path, _to_read(SAMPLES), None)
    assert parsed.staged is not None
    table = pq.read_table(parsed.staged, columns=flows.stages.KEY_COLUMNS)
    stamps = table["published_at"]
    assert stamps.null_count < len(stamps)  # dated articles, and undated ones when there are
    with_gaps = pa.chunked_array([stamps.chunk(0), pa.array([None], stamps.type)])
    for column in [*table.columns, with_gaps]:
        assert flows.stages._python_values(column) == column.to_pylist()
    times = flows.stages._python_values(with_gaps)
    assert all(t is None or t.tzinfo is not None for t in times)
