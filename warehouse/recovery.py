"""Before a run: remove whatever a killed or refused run left, so the next one starts clean."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import duckdb

from warehouse.archive import remove_unindexed
from warehouse.catalog import open_lake, orphaned_data_files
from warehouse.faults import checkpoint
from warehouse.home import Home
from warehouse.migrate import migrate, needs_migration
from warehouse.outage import disk_unavailable
from warehouse.storage import is_empty, remove_tree

log = logging.getLogger(__name__)


def open_recovered(home: Home) -> duckdb.DuckDBPyConnection:
    """The lake, read-write, for a run holding the run lock: a home of the layout before
    DuckLake migrated first (its files would otherwise look unreferenced), then `recover`."""
    if needs_migration(home):
        migrate(home, hold_lock=False)
    con = open_lake(home)
    try:
        recover(home, con)
    except BaseException:
        con.close()
        raise
    return con


def recover(home: Home, con: duckdb.DuckDBPyConnection) -> list[str]:
    """Delete data files no snapshot references, unindexed archive packs, and staging.

    Only safe under the run lock: a writer in flight has files no snapshot references yet.
    """
    removed = orphaned_data_files(con, delete=True)
    removed += remove_unindexed(home, con)
    if not is_empty(home.staging, home.s3):  # a run that committed left it empty
        removed.append(home.staging)
    remove_tree(home.staging, home.s3)
    checkpoint("recovered")
    for path in removed:
        log.warning("recovered: removed %s, left by a run that did not commit", path)
    return removed


@contextmanager
def failing_cleanly_on_disk_faults(
    home: Home, con: duckdb.DuckDBPyConnection, committed: Callable[[], bool]
) -> Iterator[None]:
    """A run under the run lock that meets a full or read-only disk fails with one message
    naming the disk and what to do (`ServiceUnavailable`), after removing what it left where
    the disk still allows (its staging, then the data files and packs no snapshot references:
    on a full disk, the space they took). `committed()`: whether the run had committed."""
    try:
        yield
    except BaseException as error:
        unavailable = disk_unavailable(error, home, committed())
        if unavailable is None:
            raise
        # Staging first: that needs no catalog, and frees room for the catalog's own files.
        remove_tree(home.staging, home.s3)
        try:
            recover(home, con)
        except (OSError, duckdb.Error) as cleaning:
            log.warning("could not remove what the run left (the next run will): %s", cleaning)
        raise unavailable from error
