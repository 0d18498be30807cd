"""Storage: the DuckLake catalog and tables, ledger, archive, maintenance.

`warehouse.connect()` gives a notebook the analysts' read-only connection.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

    from warehouse.home import Home


def connect(
    home: str | Path | Home | None = None, as_of: str | None = None
) -> duckdb.DuckDBPyConnection:
    """A read-only DuckDB connection to the warehouse, its tables by their bare names.

    `home` defaults to $WIREHOUSE_HOME (with WIREHOUSE_CATALOG and WIREHOUSE_DATA_PATH);
    `as_of` is a run id: the warehouse as it was right after that run.
    """
    # Imported here: parse workers import warehouse modules and need no DuckDB.
    from warehouse.catalog import connect_as_of
    from warehouse.home import Home

    where = home if isinstance(home, Home) else Home.from_env(home)
    return connect_as_of(where, as_of)
