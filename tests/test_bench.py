"""The end-to-end bench's derived figures (its runs are measured by `make bench`, not here)."""

from __future__ import annotations

from typing import Any

import pytest

from bench.run import margin


def _row(dumps: int, wall: float, flow: float, served: float | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"dumps": dumps, "wall_s": wall, "flow_s": flow}
    if served is not None:
        row["server_running"] = {"wall_s": served}
    return row


def test_margin_is_the_rate_of_the_extra_dumps() -> None:
    rows = [_row(5_000, 15.0, 5.0, 12.0), _row(20_000, 25.0, 12.5, 20.0)]
    assert margin(rows) == {"wall": 1_500.0, "flow": 2_000.0, "wall, server running": 1_875.0}


def test_margin_needs_two_sizes_and_leaves_out_what_was_not_run() -> None:
    assert margin([_row(5_000, 15.0, 5.0)]) == {}
    assert margin([_row(5_000, 15.0, 5.0), _row(20_000, 25.0, 12.5, 20.0)]) == {
        "wall": 1_500.0,
        "flow": 2_000.0,
    }
    # A larger night measured faster than a smaller one (noise): no rate, rather than a negative.
    assert margin([_row(5_000, 15.0, 5.0), _row(6_000, 14.0, 6.0)]) == {"flow": 1_000.0}


def test_lake_bench_prints_and_returns_its_figures(tmp_path: Any, capsys: Any) -> None:
    import json

    from bench.lake import main

    written = tmp_path / "lake.json"
    assert main(["--nights", "3", "--per-night", "12", "--json", str(written)]) == 0
    out = capsys.readouterr().out
    for words in ("before compact:", "after:", "rollback of bench-2025-01-03", "read"):
        assert words in out, out
    figures = json.loads(written.read_text())
    assert figures["articles"] == 36
    assert figures["articles_files_before"] >= 3  # a file a night at least (months may split)
    assert figures["query_before"]["files_read"] >= 1
    assert figures["query_after"]["files_read"] <= figures["query_before"]["files_read"]
    assert figures["articles_files_after"] <= figures["articles_months"]
    assert figures["rolled_back"]["articles"] == 12
    assert len(figures["query_after"]["seconds_all"]) == 5


def test_search_bench_finds_every_phrase_and_every_title(tmp_path: Any) -> None:
    from bench.search import answers, make_lake, stories
    from tests.conftest import BBC_SAMPLE

    table = stories(BBC_SAMPLE)
    home = make_lake(tmp_path / "stories", table, table.num_rows, table.num_rows)
    found = answers(home, table, sample=40, seed=3)
    assert found["stories"] == 400 and found["phrases"] == 40
    assert found["phrase_recall"] == 1.0 and found["phrase_precision_words_any_form"] == 1.0
    assert found["title_in_first_ten"] == 1.0


@pytest.mark.usefixtures("prefect_server")
@pytest.mark.filterwarnings("ignore:Duplicate name")  # bundles repeat member names on purpose
def test_fuzz_nights_accounts_for_every_hostile_input(tmp_path: Any) -> None:
    from prefect.settings import PREFECT_API_URL

    from bench.fuzz_nights import TREATMENTS, account, hostile_inbox, one_night
    from bench.run import Places

    places = Places(tmp_path / "prefect-home", None, api_url=str(PREFECT_API_URL.value()))
    home = tmp_path / "home"
    night = one_night(0, tmp_path, home, places, dumps=300, seed=5)
    assert night.crashes == [] and night.verify_failures == [] and night.unaccounted == []
    assert night.inputs == 300 and set(night.inputs_by_kind) == {*TREATMENTS, "rendered"}
    statuses = {status for by in night.outcomes.values() for status in by}
    assert statuses == {"loaded", "duplicate", "quarantined", "unpacked"}
    assert sum(night.outcomes["noise"].values()) == night.outcomes["noise"].get("quarantined")
    # the same inbox again, with a file the night never saw: the check finds it
    treatment, _ = hostile_inbox(tmp_path / "again", 300, seed=5)
    _, missing = account(home, night.run_id, {**treatment, "ghost.txt": "rendered"})
    assert missing == ["ghost.txt"]
