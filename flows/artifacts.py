"""The night as the Prefect UI shows it: a markdown summary, tables and a Data Docs link."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

# Artifacts over this many rows make the UI's table slow and the API payload large; the
# complete list is the `quarantine` view, which the summary names.
MAX_TABLE_ROWS = 500
QUARANTINE_COLUMNS = ("dump_file", "stage", "reason", "detail")

_ARTICLES_PER_DAY_SQL = (
    "SELECT CAST(timezone('UTC', published_at) AS DATE) AS day, count(*) AS articles "
    "FROM articles WHERE run_id = ? GROUP BY ALL ORDER BY day"
)
_TOTALS_SQL = (
    "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM duplicates), "
    "(SELECT count(*) FROM quarantine), (SELECT count(*) FROM files), "
    "(SELECT count(*) FROM runs WHERE status = 'succeeded')"
)
_TOTAL_NAMES = ("articles", "duplicates", "quarantined", "files", "succeeded runs")


def artifact_keys(kind: str) -> dict[str, str]:
    """Stable artifact keys, so the UI's Artifacts page shows each one's history night by night."""
    return {
        name: f"{kind}-{name}"
        for name in ("summary", "quarantine", "data-docs", "articles-per-day")
    }


def lake_figures(
    con: duckdb.DuckDBPyConnection, run_id: str
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """This run's articles per publication day (UTC) and the warehouse's totals, once committed."""
    days = con.execute(_ARTICLES_PER_DAY_SQL, [run_id]).fetchall()
    totals = con.execute(_TOTALS_SQL).fetchall()[0]
    per_day = [  # articles that state no time are a row of their own
        {"day": day.isoformat() if day is not None else "undated", "articles": int(n)}
        for day, n in days
    ]
    return per_day, dict(zip(_TOTAL_NAMES, map(int, totals), strict=True))


def summary_markdown(summary: dict[str, Any]) -> str:
    """The night's summary for people: what came in, what became of it, how long it took."""
    counts = summary["counts"]
    title = "Backfill" if summary.get("kind") == "backfill" else "Night"
    anomalies = _anomalies(summary)
    abnormal = f", ABNORMAL ({', '.join(anomalies)})" if anomalies else ""
    lines = [f"# {title} {summary['run_id']}: {summary['status']}{abnormal}", ""]
    if anomalies:
        lines += [
            f"> **Abnormal night:** {len(anomalies)} figures far from the trailing nights; "
            "see the `nightly-health` artifact.",
            "",
        ]
    if summary.get("message"):
        lines += [f"> **What to do:** {summary['message']}", ""]
    lines += [f"Inbox `{summary.get('inbox', '?')}`, home `{summary.get('home', '?')}`.", ""]
    seen = counts["files"] + counts.get("already_recorded", 0)
    lines += _table(
        ("files", "count"),
        [
            ("files seen", seen),
            ("new files", counts["files"]),
            ("already recorded (skipped)", counts.get("already_recorded", 0)),
            ("still being written (next night)", counts.get("unsettled", 0)),
            ("**articles loaded**", counts["articles"]),
            ("of them undated (no time on the page)", counts.get("undated", 0)),
            ("duplicates", counts["duplicates"]),
            ("quarantined", counts["quarantined"]),
            ("failure ratio", f"{summary.get('failure_ratio', 0.0):.1%}"),
        ],
    )
    lines += _section("Duplicates by kind", ("kind", "count"), counts["duplicates_by_kind"])
    lines += _section("Quarantined by reason", ("reason", "count"), counts["quarantined_by_reason"])
    lines += _section(
        "Failing expectations", ("expectation", "rows"), summary.get("failing_expectations", {})
    )
    stages = {k: f"{v:.2f}" for k, v in summary.get("stage_seconds", {}).items()}
    if "seconds" in summary:
        stages["**total**"] = f"{summary['seconds']:.2f}"
    lines += _section("Time per stage", ("stage", "seconds"), stages)
    lines += _section("Warehouse totals", ("table", "rows"), summary.get("warehouse", {}))
    if summary.get("violations"):
        lines += ["## Broken invariants (run `wirehouse verify`)", ""]
        lines += [f"- {violation}" for violation in summary["violations"]] + [""]
    if summary.get("data_docs"):
        lines += [f"Great Expectations Data Docs: `{summary['data_docs']}`", ""]
    return "\n".join(lines)


def summary_headline(summary: dict[str, Any]) -> str:
    """One line for the artifact's card on the run page: the night's outcome in figures."""
    counts = summary["counts"]
    anomalies = _anomalies(summary)
    prefix = f"ABNORMAL ({', '.join(anomalies)}): " if anomalies else ""
    return prefix + (
        f"Run {summary['run_id']} {summary['status']}: {counts['articles']:,} articles loaded, "
        f"{counts['duplicates']:,} duplicates, {counts['quarantined']:,} quarantined "
        f"of {counts['files']:,} new files"
    )


def quarantine_table(rows: pa.Table) -> list[dict[str, Any]]:
    """The night's quarantined items with their reasons, by reason, capped at MAX_TABLE_ROWS."""
    ordered = rows.sort_by([("reason", "ascending"), ("dump_file", "ascending")])
    shown: list[dict[str, Any]] = (
        ordered.select(list(QUARANTINE_COLUMNS)).slice(0, MAX_TABLE_ROWS).to_pylist()
    )
    return shown


def data_docs_link(data_docs: str | None) -> str | None:
    """A file:// URL of the run's Data Docs page, or None when none was built."""
    return Path(data_docs).resolve().as_uri() if data_docs else None


def publish_artifacts(
    summary: dict[str, Any],
    quarantine_rows: pa.Table,
    articles_per_day: list[dict[str, Any]],
) -> dict[str, str]:
    """Attach the night's artifacts to the current Prefect run; their keys by name."""
    from prefect.artifacts import (
        create_link_artifact,
        create_markdown_artifact,
        create_table_artifact,
    )

    keys = artifact_keys(summary.get("kind", "nightly"))
    run_id = summary["run_id"]
    create_markdown_artifact(
        markdown=summary_markdown(summary),
        key=keys["summary"],
        description=summary_headline(summary),
    )
    shown = quarantine_table(quarantine_rows)
    more = ""
    if len(shown) < quarantine_rows.num_rows:
        more = f" (the first {len(shown)}; all of them in the `quarantine` view)"
    create_table_artifact(
        table=shown,
        key=keys["quarantine"],
        description=f"{quarantine_rows.num_rows} quarantined items of run {run_id}{more}",
    )
    create_table_artifact(
        table=articles_per_day,
        key=keys["articles-per-day"],
        description=f"Articles loaded by run {run_id} per publication day (UTC)",
    )
    link = data_docs_link(summary.get("data_docs"))
    if link is not None:
        create_link_artifact(
            link=link,
            link_text="Great Expectations Data Docs",
            key=keys["data-docs"],
            description=f"Validation results of run {run_id}",
        )
    return keys


def _anomalies(summary: dict[str, Any]) -> list[str]:
    """The kinds of the night's anomalies (none when its health was not checked)."""
    health = summary.get("health") or {}
    return [anomaly["kind"] for anomaly in health.get("anomalies", [])]


def _section(title: str, header: tuple[str, str], values: dict[str, Any]) -> list[str]:
    if not values:
        return [f"**{title}:** none", ""]
    return [f"## {title}", "", *_table(header, list(values.items()))]


def _table(header: tuple[str, str], rows: list[tuple[str, Any]]) -> list[str]:
    out = [f"| {header[0]} | {header[1]} |", "|---|---:|"]
    out += [f"| {name} | {_cell(value)} |" for name, value in rows]
    return [*out, ""]


def _cell(value: Any) -> str:
    text = f"{value:,}" if isinstance(value, int) else str(value)
    return text.replace("|", "\\|")
