"""What tests compare between warehouses: every data table's rows, lineage columns aside."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from warehouse.catalog import exists, lake_connection
from warehouse.home import Home

# Columns that legitimately differ between two runs over the same inputs.
VOLATILE = {"run_id", "ingested_at", "first_seen_at", "quarantined_at", "captured_at"}
DATA_TABLES = ("articles", "duplicates", "quarantine", "files")


def snapshot(home: Path | Home) -> dict[str, list[tuple[Any, ...]]]:
    """Every data table's visible rows, volatile lineage columns aside, in a stable order."""
    out = {}
    where = home if isinstance(home, Home) else Home.at(home)
    if not exists(where):
        return empty_snapshot()  # killed before its catalog was made: nothing to see
    with lake_connection(where) as con:
        for table in DATA_TABLES:
            described = con.execute(f"DESCRIBE SELECT * FROM {table}").fetchall()
            columns = [row[0] for row in described if row[0] not in VOLATILE]
            rows = con.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
            out[table] = sorted(rows, key=repr)
    return out


def empty_snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """The snapshot of a warehouse with nothing committed."""
    return {table: [] for table in DATA_TABLES}
