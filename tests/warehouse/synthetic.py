"""Synthetic nights for storage tests: rows of every table, committed without the flow."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import duckdb

from flows.stages import plan_files
from flows.worker import stage_articles, write_file
from transforms.records import ARTICLES_SCHEMA, SCHEMAS, table_of
from warehouse.catalog import table_folder
from warehouse.home import Home
from warehouse.loader import NightRows

# Rows each night adds to articles, duplicates and files.
SHAPE = (30, 20, 1)


def row(table: str, **values: Any) -> dict[str, Any]:
    """A row of a contract table: the values given, None elsewhere."""
    return {name: values.get(name) for name in SCHEMAS[table].names}


def night(
    lake: duckdb.DuckDBPyConnection, home: Home, run_id: str, copies_of: str | None = None
) -> NightRows:
    """A night's rows: articles written as the lake's data files as the workers write them, the
    rest as rows; its duplicates copy articles of the night `copies_of` when given."""
    now = datetime.now(UTC)
    names = [f"{run_id}/a{i}" for i in range(SHAPE[0])]
    articles = [
        row(
            "articles",
            article_id=f"{run_id}-{i}",
            dump_file=name,
            run_id=run_id,
            published_at=datetime(2024, 1 + i % 12, 1 + i % 28, tzinfo=UTC),
        )
        for i, name in enumerate(names)
    ]
    pieces = stage_articles(table_of(articles, ARTICLES_SCHEMA), 0, home, run_id)
    folders = {"articles": table_folder(lake, home, "articles")}
    written = [
        write_file(f.table, f.pieces, f.location, home) for f in plan_files(pieces, folders, run_id)
    ]
    rows = {
        "duplicates": [
            row(
                "duplicates",
                dump_file=f"{run_id}/d{i}",
                duplicate_of=f"{copies_of}-{i}" if copies_of else None,
                run_id=run_id,
            )
            for i in range(SHAPE[1])
        ],
        "files": [row("files", dump_file=f"{run_id}/f", run_id=run_id)],
    }
    tables = {name: table_of(table_rows, SCHEMAS[name]) for name, table_rows in rows.items()}
    run_row = row(
        "runs", run_id=run_id, kind="nightly", status="succeeded", started_at=now, finished_at=now
    )
    return NightRows(run_row, files={"articles": written}, tables=tables)
