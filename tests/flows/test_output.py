"""Rows printed in a terminal of any width, and as JSON, with no value cut or lost."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import Console

from flows.output import print_rows

RUN_ID = "20261201T020000Z-1a2b3c4d"
COLUMNS = ["run_id", "kind", "status", "started_at", "seconds", "note"]
ROWS = [
    (RUN_ID, "nightly", "succeeded", datetime(2026, 12, 1, 2, tzinfo=UTC), Decimal("12.5"), None),
    (RUN_ID[:-1] + "e", None, "failed", None, None, "x" * 70),
]


def _in_terminal(width: int) -> str:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=width, color_system=None)
    print_rows(COLUMNS, ROWS, "table", title="recent runs", console=console)
    return out.getvalue()


def test_a_table_that_fits_has_one_line_per_row() -> None:
    printed = _in_terminal(200)
    assert RUN_ID in printed and "x" * 70 in printed and "(2 rows)" in printed


def test_a_narrower_terminal_wraps_the_widest_columns_within_its_width() -> None:
    printed = _in_terminal(100)
    assert all(cell_len(line) <= 100 for line in printed.splitlines())
    assert "┃ run_id" in printed and "…" not in printed
    assert printed.count("x") == 70  # folded over lines, every character kept


def test_a_far_narrower_terminal_prints_one_block_per_row() -> None:
    printed = _in_terminal(40)
    assert f"run_id      {RUN_ID}" in printed and "x" * 70 in printed
    assert "started_at  2026-12-01 02:00:00+00:00" in printed


def test_json_holds_timestamps_in_iso_and_decimals_as_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    print_rows(COLUMNS, ROWS, "json")
    first, second = json.loads(capsys.readouterr().out)
    assert first["started_at"] == "2026-12-01T02:00:00+00:00" and first["seconds"] == "12.5"
    assert second["kind"] is None and second["note"] == "x" * 70


def test_a_reader_closing_the_pipe_gets_no_traceback(tmp_path: Path) -> None:
    import subprocess
    import sys

    from warehouse.catalog import open_lake
    from warehouse.home import Home

    # csv and json are written by us, not rich: `| head` must end them quietly too
    code = (
        "import sys; from flows.cli import main; "
        "sys.exit(main(['--home', sys.argv[1], 'sql', '--format', 'csv', "
        "'SELECT * FROM range(200000)']))"
    )
    env_home = tmp_path / "home"
    open_lake(Home.at(env_home)).close()  # an empty warehouse
    reader = subprocess.Popen(["head", "-1"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    writer = subprocess.run(
        [sys.executable, "-c", code, str(env_home)],
        stdout=reader.stdin,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    assert reader.stdin is not None
    reader.stdin.close()
    reader.wait()
    assert writer.returncode == 1 and "Traceback" not in writer.stderr, writer.stderr
