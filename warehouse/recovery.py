"""Before a run: remove whatever a killed or refused run left, so the next one starts clean."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from warehouse.archive import remove_pack_files
from warehouse.faults import checkpoint
from warehouse.home import Home
from warehouse.lake import (
    latest_visible_at,
    remove_uncommitted,
    succeeded_run_ids,
    wait_until_visible,
)
from warehouse.nearindex import index_dir, remove_runs

log = logging.getLogger(__name__)


def recover(home: Home) -> list[Path]:
    """Delete uncommitted table files, temp files, staging, and packs of runs that did not load."""
    removed = remove_uncommitted(home)
    succeeded = succeeded_run_ids(home)
    removed += remove_pack_files(home, succeeded)
    removed += remove_runs(index_dir(home.lake), succeeded)
    if home.staging.exists():
        shutil.rmtree(home.staging)
        removed.append(home.staging)
    # A run killed in its last second committed rows that are not visible yet: wait for them,
    # or this run would not find them in its ledger and would load their files again.
    visible_at = latest_visible_at(home)
    if visible_at is not None:
        wait_until_visible(visible_at)
    checkpoint("recovered")
    for path in removed:
        log.warning("recovered: removed %s, left by a run that did not commit", path)
    return removed
