"""The `stories` view against the near-duplicate labelled set (bench/neardup_eval.py): each copy
counted once, at its labelled story; exact through rollback and reprocess."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import warehouse
from bench.neardup_eval import Doc, labelled_set
from bench.render import Page, page_code_of, render_dump
from flows.nightly import nightly_ingest
from flows.operations import rollback_night
from flows.reprocess import reprocess_archive
from tests.conftest import BBC_SAMPLE

pytestmark = pytest.mark.usefixtures("prefect_server")

ORIGINALS = 80  # 40 stories in the history, 40 new ones, about 32 edited copies, 80 negatives
STORY_SQL = (
    "SELECT a.dump_file, s.copies, s.near_copies, s.sources, s.first_seen_at, s.last_seen_at "
    "FROM stories s JOIN articles a ON a.article_id = s.story_id ORDER BY 1"
)


@pytest.fixture(autouse=True)
def _no_docs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIREHOUSE_BUILD_DOCS", "0")


def _write(inbox: Path, docs: list[Doc], first_serial: int) -> None:
    """Each document as a Xinhua dump named by its label id, on a page of its own."""
    for serial, doc in enumerate(docs, start=first_serial):
        page = Page(
            title=f"Story {doc.copy_of or doc.article_id}",
            beijing_time=(doc.published_at + timedelta(hours=8)).replace(tzinfo=None),
            caption=None,
            paragraphs=tuple(doc.body.split("\n\n")),
            page_code=page_code_of(serial, 0),
            editor="huaxia",
        )
        (inbox / f"{doc.article_id}.txt").write_text(render_dump(page), encoding="utf-8")


def _stories(home: Path) -> dict[str, tuple[Any, ...]]:
    """Story rows by the label id of their kept article."""
    with warehouse.connect(home) as con:
        return {Path(row[0]).stem: row[1:] for row in con.execute(STORY_SQL).fetchall()}


def _copies(home: Path, kind: str | None = None) -> list[tuple[str, str]]:
    """(copy's label id, label id of the article it points at) for every duplicates row (of a
    kind, if given)."""
    with warehouse.connect(home) as con:
        rows = con.execute(
            "SELECT d.dump_file, a.dump_file FROM duplicates d "
            "JOIN articles a ON a.article_id = d.duplicate_of "
            "WHERE d.kind = coalesce($kind, d.kind)",
            {"kind": kind},
        ).fetchall()
    return [(Path(copy).stem, Path(story).stem) for copy, story in rows]


def test_stories_count_each_copy_once_at_its_labelled_story(tmp_path: Path) -> None:
    labelled = labelled_set(BBC_SAMPLE, originals=ORIGINALS)
    first, second, home = tmp_path / "night1", tmp_path / "night2", tmp_path / "home"
    first.mkdir()
    second.mkdir()
    _write(first, labelled.history, 0)
    _write(second, labelled.night, len(labelled.history))
    one = nightly_ingest(inbox=str(first), home=str(home))
    two = nightly_ingest(inbox=str(second), home=str(home))
    truth = {d.article_id: d.copy_of for d in labelled.night if d.copy_of}

    stories, copies = _stories(home), _copies(home)
    assert copies and all(truth.get(copy) == story for copy, story in copies)  # precision 1
    assert len(copies) / len(truth) >= 0.95  # the engine's recall (0.986 on the full set)
    counted = Counter(story for _copy, story in copies)
    near_counted = Counter(story for _copy, story in _copies(home, "near"))
    assert near_counted  # edited copies are mostly `near` (an edit may leave the body as it was)
    for story, (n, near, sources, first_seen, last_seen) in stories.items():
        assert (n, near) == (counted[story], near_counted[story])
        assert sources == ["Xinhua"]
        night = one if story.startswith("orig") and story in _ids(labelled.history) else two
        assert first_seen.isoformat() == night["started_at"]
        assert last_seen.isoformat() == (two if n else night)["started_at"]
    assert sum(row[0] for row in stories.values()) == len(copies) == two["counts"]["duplicates"]

    # Exact through rollback (the night's copies leave their stories) and reprocess.
    rollback_night(two["run_id"], home=str(home))
    assert all(row[0] == 0 for row in _stories(home).values())
    assert sorted(_stories(home)) == sorted(_ids(labelled.history))
    three = nightly_ingest(inbox=str(second), home=str(home))
    again = _stories(home)
    assert {k: v[:3] for k, v in again.items()} == {k: v[:3] for k, v in stories.items()}
    assert three["counts"]["duplicates"] == two["counts"]["duplicates"]
    reprocess_archive(home=str(home))
    assert _stories(home) == again


def _ids(docs: list[Doc]) -> set[str]:
    return {d.article_id for d in docs}
