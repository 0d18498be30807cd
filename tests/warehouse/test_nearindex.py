"""The on-disk near-duplicate index: round trip, committed runs only, rollback by run."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from transforms.minhash import signatures
from warehouse import nearindex

STORIES = [
    "LONDON, May 1 (Xinhua) -- " + " ".join(f"word{i}x{j}" for j in range(80)) for i in range(6)
]


def test_round_trip_finds_stored_article_with_its_signature(tmp_path: Path) -> None:
    sigs = signatures(STORIES)
    assert nearindex.append(tmp_path, "run-a", [f"a{i}" for i in range(3)], sigs[:3]) == 3
    matches = nearindex.history_matches(tmp_path, sigs, {"run-a"})
    assert [(m.night, m.article_id, m.similarity) for m in matches] == [
        (0, "a0", 1.0),
        (1, "a1", 1.0),
        (2, "a2", 1.0),
    ]
    ids, stored = nearindex.signatures_of(tmp_path, [("run-a", 2), ("run-a", 0)])
    assert ids == ["a2", "a0"]
    assert np.array_equal(stored, sigs[[2, 0]])


def test_uncommitted_run_is_ignored_and_removed(tmp_path: Path) -> None:
    sigs = signatures(STORIES)
    nearindex.append(tmp_path, "run-a", ["a0"], sigs[:1])
    nearindex.append(tmp_path, "run-b", ["b1"], sigs[1:2])
    assert {m.article_id for m in nearindex.history_matches(tmp_path, sigs, {"run-a"})} == {"a0"}
    assert nearindex.run_ids(tmp_path) == {"run-a", "run-b"}
    removed = nearindex.remove_runs(tmp_path, {"run-a"})
    assert {p.stem for p in removed} == {"run-b"}
    assert nearindex.run_ids(tmp_path) == {"run-a"}
    everything = {"run-a", "run-b"}
    assert {m.article_id for m in nearindex.history_matches(tmp_path, sigs, everything)} == {"a0"}


def test_empty_bodies_are_not_indexed(tmp_path: Path) -> None:
    sigs = signatures(["", "  ", STORIES[0]])
    assert nearindex.append(tmp_path, "run-a", ["e0", "e1", "s0"], sigs) == 1
    assert nearindex.history_matches(tmp_path, signatures([""]), {"run-a"}) == []


def test_index_dir_names_its_parameters(tmp_path: Path) -> None:
    assert nearindex.index_dir(tmp_path).parent == tmp_path / "_minhash"
    assert "p128" in nearindex.index_dir(tmp_path).name
