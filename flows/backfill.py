"""Backfills: a run over an old archive folder, or its files of a date range, named apart."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

from warehouse.inbox import Arrivals, InboxFile


@dataclass(frozen=True, slots=True)
class Window:
    """The days (UTC, both ends included) whose files a run takes, by modification time."""

    since: date | None = None
    until: date | None = None

    @property
    def is_open(self) -> bool:
        """True when the window takes every file."""
        return self.since is None and self.until is None

    def has_day(self, day: date) -> bool:
        """Whether the window includes this day."""
        return (self.since is None or day >= self.since) and (
            self.until is None or day <= self.until
        )


def within_window(arrivals: Arrivals, window: Window) -> tuple[Arrivals, int]:
    """The arrivals modified on a day of the window, and how many were left out."""
    if window.is_open:
        return arrivals, 0
    files = [f for f in arrivals.files if window.has_day(_modified_day(f))]
    links = [f for f in arrivals.symlinks if window.has_day(_modified_day(f))]
    left_out = len(arrivals.files) + len(arrivals.symlinks) - len(files) - len(links)
    return replace(arrivals, files=files, symlinks=links), left_out


def run_kind(backfill: bool) -> str:
    """`backfill` or `nightly`: names the Prefect run and the artifact keys it publishes."""
    return "backfill" if backfill else "nightly"


def flow_run_name() -> str:
    """The Prefect flow run's name: its kind and the time it was scheduled for (UTC)."""
    from prefect.runtime import flow_run

    kind = run_kind(bool(flow_run.parameters.get("backfill")))
    when = flow_run.scheduled_start_time or datetime.now(UTC)
    return f"{kind}-{when.astimezone(UTC):%Y-%m-%d-%H%M%S}"


def _modified_day(found: InboxFile) -> date:
    """The UTC day a file or object was last modified (a link's own time: never followed)."""
    seconds = found.mtime if found.mtime is not None else os.lstat(found.path).st_mtime
    return datetime.fromtimestamp(seconds, UTC).date()
