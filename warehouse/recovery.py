"""Before a run: remove whatever a killed or refused run left, so the next one starts clean."""

from __future__ import annotations

import logging
import shutil

import duckdb

from warehouse.archive import remove_unindexed
from warehouse.catalog import ALIAS
from warehouse.faults import checkpoint
from warehouse.home import Home

log = logging.getLogger(__name__)


def recover(home: Home, con: duckdb.DuckDBPyConnection) -> list[str]:
    """Delete data files no snapshot references, unindexed archive packs, and staging.

    Only safe under the run lock: a writer in flight has files no snapshot references yet.
    """
    removed = orphaned_data_files(con, delete=True)
    removed += [str(p) for p in remove_unindexed(home, con)]
    if home.staging.exists():
        shutil.rmtree(home.staging)
        removed.append(str(home.staging))
    checkpoint("recovered")
    for path in removed:
        log.warning("recovered: removed %s, left by a run that did not commit", path)
    return removed


def orphaned_data_files(con: duckdb.DuckDBPyConnection, delete: bool = False) -> list[str]:
    """Data files under the data path that no snapshot references (a killed writer's)."""
    rows = con.execute(
        f"CALL ducklake_delete_orphaned_files('{ALIAS}', cleanup_all => true, dry_run => ?)",
        [not delete],
    ).fetchall()
    return [str(row[0]) for row in rows]
