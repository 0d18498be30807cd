"""The `stories` view: one row per kept article, with every copy of it that was not kept.

A view over `articles` and `duplicates` rather than a table: it is computed from the rows that
a rollback removes and a reprocess rewrites, so it is exact after either without upkeep, and
it reads each snapshot as those tables do (`--as-of` included).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class View:
    """A view of the lake: its query, and the columns it gives (a changed list replaces it)."""

    sql: str
    columns: tuple[str, ...]


# `copies` counts every `duplicates` row pointing at the story, whatever its kind (a dump is in
# exactly one of articles, duplicates, quarantine, so each copy counts once, at its story);
# `sources` are the outlets of the kept article and of its copies (a `same_file` copy, same
# bytes as an earlier file, has no parsed source of its own: it is the story's).
STORIES_SQL = """
SELECT
    a.article_id AS story_id,
    a.title,
    least(a.published_at, c.first_published_at) AS first_published_at,
    coalesce(c.copies, 0) AS copies,
    coalesce(c.near_copies, 0) AS near_copies,
    coalesce(c.same_page_copies, 0) AS same_page_copies,
    coalesce(c.exact_copies, 0) AS exact_copies,
    list_sort(list_distinct(list_concat([a.source], coalesce(c.sources, [])))) AS sources,
    a.ingested_at AS first_seen_at,
    greatest(a.ingested_at, c.last_seen_at) AS last_seen_at,
    a.run_id
FROM articles AS a
LEFT JOIN (
    SELECT
        duplicate_of,
        count(*) AS copies,
        count(*) FILTER (WHERE kind = 'near') AS near_copies,
        count(*) FILTER (WHERE kind = 'same_page') AS same_page_copies,
        count(*) FILTER (WHERE kind = 'exact') AS exact_copies,
        min(published_at) AS first_published_at,
        max(ingested_at) AS last_seen_at,
        list(DISTINCT source) FILTER (WHERE source IS NOT NULL) AS sources
    FROM duplicates
    GROUP BY duplicate_of
) AS c ON c.duplicate_of = a.article_id
"""

STORIES_COLUMNS = (
    "story_id",
    "title",
    "first_published_at",
    "copies",
    "near_copies",
    "same_page_copies",
    "exact_copies",
    "sources",
    "first_seen_at",
    "last_seen_at",
    "run_id",
)
# Views of the lake by name: created with the tables, replaced when their columns change.
LAKE_VIEWS: dict[str, View] = {"stories": View(STORIES_SQL, STORIES_COLUMNS)}
