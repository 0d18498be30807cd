"""A night's figures as the lake holds them: volume, failures, layouts, sources, lag."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

# The nights a baseline is made of: earlier nights of the nightly kind that loaded (backfills,
# rollbacks, reprocesses and other operations are not nights; refused nights are no norm).
_BASELINE_RUNS_SQL = (
    "SELECT run_id, started_at, status, files_new, articles, failure_ratio FROM runs "
    "WHERE coalesce(kind, 'nightly') = 'nightly' AND status = 'succeeded' AND started_at < ? "
    "ORDER BY started_at DESC LIMIT ?"
)
# The last nights, whatever became of them, for the chart and `wirehouse status`.
_RECENT_RUNS_SQL = (
    "SELECT run_id, started_at, status, files_new, articles, failure_ratio FROM runs "
    "WHERE coalesce(kind, 'nightly') = 'nightly' AND started_at <= ? "
    "ORDER BY started_at DESC LIMIT ?"
)
_PER_RUN_SQL = {
    "layouts": "SELECT run_id, layout, count(*) FROM articles WHERE run_id IN ({}) GROUP BY ALL",
    "sources": "SELECT run_id, source, count(*) FROM articles WHERE run_id IN ({}) GROUP BY ALL",
    "quarantined_by_reason": (
        "SELECT run_id, reason, count(*) FROM quarantine WHERE run_id IN ({}) GROUP BY ALL"
    ),
}
# Publication lag in hours: from the page's time to the night that loaded it.
_LAG_SQL = (
    "SELECT run_id, quantile_cont(lag, 0.5), quantile_cont(lag, 0.95) FROM ("
    "SELECT run_id, (epoch(ingested_at) - epoch(published_at)) / 3600.0 AS lag FROM articles "
    "WHERE published_at IS NOT NULL AND run_id IN ({})) GROUP BY run_id"
)


@dataclass(slots=True)
class NightFigures:
    """What one night brought, in the figures that are compared night over night."""

    run_id: str
    started_at: datetime | None
    status: str
    files_new: int
    articles: int
    failure_ratio: float
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    layouts: dict[str, int] = field(default_factory=dict)  # articles per layout
    sources: dict[str, int] = field(default_factory=dict)  # articles per source
    lag_median_hours: float | None = None
    lag_p95_hours: float | None = None
    loaded: bool = True  # False for a refused night: its rows never reached the lake


def baseline_nights(
    con: duckdb.DuckDBPyConnection, before: datetime, limit: int
) -> list[NightFigures]:
    """The figures of up to `limit` succeeded nightly runs started before `before`, newest first."""
    return with_details(con, _nights(con, _BASELINE_RUNS_SQL, before, limit))


def recent_nights(
    con: duckdb.DuckDBPyConnection, until: datetime, limit: int
) -> list[NightFigures]:
    """The last `limit` nightly runs started up to `until`, any status, newest first."""
    return _nights(con, _RECENT_RUNS_SQL, until, limit)


def with_details(con: duckdb.DuckDBPyConnection, nights: list[NightFigures]) -> list[NightFigures]:
    """The nights with their per-layout, per-source, per-reason counts and lag filled in."""
    ids = [n.run_id for n in nights]
    if not ids:
        return nights
    by_id = {n.run_id: n for n in nights}
    marks = ", ".join("?" for _ in ids)
    for name, sql in _PER_RUN_SQL.items():
        for run_id, key, count in con.execute(sql.format(marks), ids).fetchall():
            getattr(by_id[run_id], name)[str(key)] = int(count)
    for run_id, median, p95 in con.execute(_LAG_SQL.format(marks), ids).fetchall():
        by_id[run_id].lag_median_hours = _rounded(median)
        by_id[run_id].lag_p95_hours = _rounded(p95)
    return nights


def _nights(
    con: duckdb.DuckDBPyConnection, sql: str, at: datetime, limit: int
) -> list[NightFigures]:
    return [_night(row) for row in con.execute(sql, [at, limit]).fetchall()]


def _night(row: tuple[Any, ...]) -> NightFigures:
    run_id, started_at, status, files_new, articles, ratio = row
    return NightFigures(
        run_id=str(run_id),
        started_at=started_at,
        status=str(status),
        files_new=int(files_new or 0),
        articles=int(articles or 0),
        failure_ratio=float(ratio or 0.0),
        loaded=status == "succeeded",
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 2)
