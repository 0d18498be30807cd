"""The near-duplicate evaluation gate: precision and recall may rise, never silently fall."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO, SHARED

BASELINE = REPO / "tests" / "baselines" / "neardup.json"
TOLERANCE = 0.005


@pytest.mark.skipif(
    not (SHARED / "dumps" / "bbc").is_dir(), reason="the BBC corpus (../shared/dumps/bbc) is absent"
)
def test_precision_and_recall_hold_the_baseline() -> None:
    from bench.neardup_eval import evaluate, labelled_set

    baseline = json.loads(BASELINE.read_text())
    labelled = labelled_set(SHARED, baseline["originals"], seed=baseline["seed"])
    (result,) = evaluate(labelled, (baseline["threshold"],))
    assert result["copies"] == baseline["copies"]
    assert result["precision"] >= baseline["precision"] - TOLERANCE, result
    assert result["recall"] >= baseline["recall"] - TOLERANCE, result
    assert result["precision"] >= 0.99 and result["recall"] >= 0.95, result
