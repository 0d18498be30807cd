"""The end-to-end bench's derived figures (its runs are measured by `make bench`, not here)."""

from __future__ import annotations

from typing import Any

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
