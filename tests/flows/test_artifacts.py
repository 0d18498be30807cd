"""The night as the Prefect UI shows it: artifacts built from the summary, published on a server."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pyarrow as pa
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import Artifact
from prefect.states import State

from flows.artifacts import (
    MAX_TABLE_ROWS,
    artifact_keys,
    data_docs_link,
    quarantine_table,
    summary_markdown,
)
from flows.nightly import NightFailed, nightly_ingest
from tests.conftest import SAMPLES

SEED = "2019/05/000_c903989559a3121d.txt"

SUMMARY: dict[str, Any] = {
    "run_id": "20190502T020000Z-abc123",
    "kind": "nightly",
    "status": "succeeded",
    "message": None,
    "inbox": "/srv/inbox",
    "home": "/srv/wirehouse",
    "counts": {
        "articles": 1200,
        "duplicates": 7,
        "quarantined": 3,
        "files": 1210,
        "duplicates_by_kind": {"exact": 2, "same_page": 5},
        "quarantined_by_reason": {"not_an_article": 2, "binary": 1},
        "already_recorded": 40,
        "unsettled": 1,
    },
    "failure_ratio": 0.0025,
    "failing_expectations": {"expect_column_values_to_not_be_null(title)": 1},
    "stage_seconds": {"discover": 0.5, "parse": 3.25},
    "seconds": 4.5,
    "warehouse": {"articles": 5000, "duplicates": 70},
    "data_docs": None,
}


def test_summary_markdown_has_every_figure() -> None:
    text = summary_markdown(SUMMARY)
    assert text.startswith("# Night 20190502T020000Z-abc123: succeeded")
    for line in (
        "| files seen | 1,250 |",
        "| **articles loaded** | 1,200 |",
        "| same_page | 5 |",
        "| not_an_article | 2 |",
        "| expect_column_values_to_not_be_null(title) | 1 |",
        "| parse | 3.25 |",
        "| **total** | 4.50 |",
        "| articles | 5,000 |",
        "| failure ratio | 0.2% |",
    ):
        assert line in text.splitlines()
    assert "What to do" not in text


def test_a_failed_night_says_what_to_do() -> None:
    failed = {**SUMMARY, "status": "failed", "message": "fix the parser | then rerun"}
    text = summary_markdown(failed)
    assert "> **What to do:** fix the parser | then rerun" in text


def test_quarantine_table_is_ordered_and_capped() -> None:
    rows = [
        {"dump_file": f"{i:04d}.txt", "stage": "parse", "reason": r, "detail": "d", "x": 1}
        for i, r in enumerate(["b", "a"] * (MAX_TABLE_ROWS))
    ]
    table = quarantine_table(pa.Table.from_pylist(rows))
    assert len(table) == MAX_TABLE_ROWS
    assert table[0] == {"dump_file": "0001.txt", "stage": "parse", "reason": "a", "detail": "d"}


def test_keys_are_stable_and_valid() -> None:
    keys = artifact_keys("nightly")
    assert keys["summary"] == "nightly-summary"
    assert all(k.replace("-", "").isalnum() and k.islower() for k in keys.values())
    assert data_docs_link(None) is None
    assert data_docs_link("/srv/gx/index.html") == "file:///srv/gx/index.html"


def _artifacts(state: State[Any]) -> dict[str, Artifact]:
    flow_run_id = state.state_details.flow_run_id
    assert isinstance(flow_run_id, UUID)
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return {a.key: a for a in found if a.key}


@pytest.mark.usefixtures("prefect_server")
def test_a_night_publishes_its_artifacts(
    sample_inbox: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WIREHOUSE_BUILD_DOCS", "1")
    state = nightly_ingest(inbox=str(sample_inbox), home=str(home), return_state=True)
    summary = state.result()
    counts = summary["counts"]
    found = _artifacts(state)
    # with the night's health (flows/health_artifact.py, tests/flows/test_health.py)
    assert set(found) == {*artifact_keys("nightly").values(), "nightly-health"}
    markdown = str(found["nightly-summary"].data)
    assert f"# Night {summary['run_id']}: succeeded" in markdown
    headline = f"Run {summary['run_id']} succeeded: {counts['articles']:,} articles loaded"
    assert str(found["nightly-summary"].description).startswith(headline)
    assert f"| **articles loaded** | {counts['articles']:,} |" in markdown
    for reason, n in counts["quarantined_by_reason"].items():
        assert f"| {reason} | {n:,} |" in markdown
    assert f"| articles | {summary['warehouse']['articles']:,} |" in markdown
    quarantined = json.loads(str(found["nightly-quarantine"].data))
    assert len(quarantined) == counts["quarantined"] > 0
    assert {r["reason"] for r in quarantined} == set(counts["quarantined_by_reason"])
    per_day = json.loads(str(found["nightly-articles-per-day"].data))
    assert sum(r["articles"] for r in per_day) == counts["articles"]
    assert any(r["day"] == "2019-05-01" for r in per_day)  # the seed, 20:38 UTC
    link = str(found["nightly-data-docs"].data)  # stored as markdown: [text](url)
    url = link[link.index("(file://") + 1 : -1]
    assert Path(url.removeprefix("file://")).is_file()
    assert found["nightly-summary"].task_run_id is not None  # published by the report task


@pytest.mark.usefixtures("prefect_server")
def test_a_failed_night_still_leaves_its_summary(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WIREHOUSE_BUILD_DOCS", "0")
    inbox = tmp_path / "bad"
    inbox.mkdir()
    for i in range(30):  # pages of a layout nobody parses
        (inbox / f"{i:03d}.txt").write_text(f"Xinhuanet\n\nMenu {i}\n\nHome | World | China\n")
    shutil.copy2(SAMPLES / SEED, inbox / "seed.txt")
    state = nightly_ingest(inbox=str(inbox), home=str(home), return_state=True)
    assert state.is_failed()
    with pytest.raises(NightFailed, match="nothing was loaded"):
        state.result()
    found = _artifacts(state)
    markdown = str(found["nightly-summary"].data)
    assert ": failed" in markdown.splitlines()[0]
    assert "**What to do:**" in markdown and "--max-failure-ratio" in markdown
    assert len(json.loads(str(found["nightly-quarantine"].data))) == 30


@pytest.mark.usefixtures("prefect_server")
def test_a_backfill_takes_its_window_and_publishes_apart(
    sample_inbox: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WIREHOUSE_BUILD_DOCS", "0")
    old = datetime(2019, 5, 2, 12, tzinfo=UTC).timestamp()
    for path in sample_inbox.rglob("*"):
        if path.is_file():
            os.utime(path, (old, old))
    os.utime(sample_inbox / SEED, (old + 86400, old + 86400))  # modified on 2019-05-03
    state = nightly_ingest(
        inbox=str(sample_inbox),
        home=str(home),
        backfill=True,
        since=date(2019, 5, 3),
        until=date(2019, 5, 3),
        return_state=True,
    )
    summary = state.result()
    assert summary["kind"] == "backfill"
    assert summary["counts"]["files"] == 1 and summary["counts"]["articles"] == 1
    found = _artifacts(state)
    assert set(found) == {"backfill-summary", "backfill-quarantine", "backfill-articles-per-day"}
    assert str(found["backfill-summary"].data).startswith(f"# Backfill {summary['run_id']}")
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)  # type: ignore[arg-type]
    assert run.name.startswith("backfill-")
    # the rest of the archive is still there for a wider window
    rest = nightly_ingest(inbox=str(sample_inbox), home=str(home), backfill=True)
    assert rest["counts"]["already_recorded"] == 1
    files = [p for p in sample_inbox.rglob("*") if p.is_file()]
    assert rest["counts"]["files"] == len(files) - 1
