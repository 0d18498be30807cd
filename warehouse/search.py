"""Full-text search: the index kept as two lake tables, searched in SQL.

Each night's workers add the postings of the articles they write (`index_tables`): for every word
of an article's title and body, its article, how often and where it occurs. The tables belong
to the night's snapshot like its articles, so rollback, reprocess and time travel hold for the
search as for every other table, and every reader of the catalog (SQLite or PostgreSQL, data in a
folder or on S3) searches the same index. Why this over tantivy or the fts extension's own
index: docs/decisions.md.

Words are tokenised the same way when indexed and when searched (the macros of
`word_macros`): lower case, accents removed, runs of letters, digits and marks; each
character of Chinese and Japanese script a word of its own (a run of them is searched as a
phrase). Each word is stemmed by the Snowball stemmer of the article's language
(`duckdb-extension-fts`'s `stem`), or kept whole where there is none. A query's word is stemmed
by every stemmer, each form looked up among the postings of that stemmer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import duckdb
import pyarrow as pa

from transforms.night import UNDATED_MONTH

POSTINGS_TABLE = "search_postings"
DOCUMENTS_TABLE = "search_documents"
# A word's occurrences in one article. Files are sorted by term: a word's rows are together.
POSTINGS_SCHEMA = pa.schema(
    [
        ("term", pa.string()),  # the stemmed word
        ("stemmer", pa.string()),  # the Snowball stemmer of the article's language, or 'none'
        ("article_id", pa.string()),
        ("occurrences", pa.int32()),
        ("positions", pa.list_(pa.int32())),  # where, in words from 1 (title, body), no order
        ("words", pa.int32()),  # the article's length in words (BM25's document length)
        ("run_id", pa.string()),
    ]
)
# One row an indexed article: how many there are, their mean length (BM25's), the index's cover.
DOCUMENTS_SCHEMA = pa.schema(
    [("article_id", pa.string()), ("words", pa.int32()), ("run_id", pa.string())]
)
SCHEMAS = {POSTINGS_TABLE: POSTINGS_SCHEMA, DOCUMENTS_TABLE: DOCUMENTS_SCHEMA}

# The Snowball stemmers of duckdb-extension-fts 1.5.5, by the ISO 639-1 code of their language.
STEMMERS = {
    "ar": "arabic",
    "ca": "catalan",
    "da": "danish",
    "de": "german",
    "el": "greek",
    "en": "english",
    "es": "spanish",
    "eu": "basque",
    "fi": "finnish",
    "fr": "french",
    "ga": "irish",
    "hi": "hindi",
    "hu": "hungarian",
    "id": "indonesian",
    "it": "italian",
    "lt": "lithuanian",
    "nb": "norwegian",
    "ne": "nepali",
    "nl": "dutch",
    "no": "norwegian",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sr": "serbian",
    "sv": "swedish",
    "ta": "tamil",
    "tr": "turkish",
}
NO_STEMMER = "none"
# BM25's parameters, as Lucene and the fts extension set them.
K1, B = 1.2, 0.75

# The characters of scripts written without spaces between words: each a word of its own.
_UNSPACED = r"[\p{Han}\p{Hiragana}\p{Katakana}]"


def _stemmer_case() -> str:
    cases = " ".join(f"WHEN '{code}' THEN '{name}'" for code, name in sorted(STEMMERS.items()))
    return f"CASE language {cases} ELSE '{NO_STEMMER}' END"


# The words of a query looked up one by one (the rest together): each lookup's join reads the
# row groups of its word's terms only, where one join of all would read those between them.
_LOOKED_UP_APART = 2
_LOOKUP = """SELECT k.item, k.clause, k.excluded, k.length, k.nth, p.term, p.stemmer, p.article_id,
        p.occurrences, p.positions, p.words
    FROM search_postings p JOIN keys k ON p.term = k.term AND p.stemmer = k.stemmer
    WHERE k.word {words}"""


def word_macros() -> list[str]:
    """The macros that make words, on every connection to the lake (readers and workers alike):
    `search_words(text)`, a text's words as indexed and as searched, and
    `search_stemmer(language)`, the stemmer of an article's language."""
    return [
        "CREATE OR REPLACE TEMP MACRO search_words(text) AS regexp_extract_all("
        f"regexp_replace(strip_accents(lower(text)), '({_UNSPACED})', ' \\1 ', 'g'), "
        "'[\\p{L}\\p{N}\\p{M}]+')",
        f"CREATE OR REPLACE TEMP MACRO search_stemmer(language) AS {_stemmer_case()}",
    ]


def search_macro() -> str:
    """The macro `search(query)`: the articles matching a query (`article_id`, `score`: BM25),
    as a table; made once the index's tables exist (a table macro binds them when made).

    A query is items: words and "quoted phrases", all of which must match; `a OR b` matches
    either; `-word` or `-"a phrase"` excludes. A word of several parts ("covid-19", a run of
    Chinese characters) is a phrase. A phrase matches its words in a row, each in any form its
    stemmer gives the same stem ("interest rate" for "interest rates").
    """
    stemmers = sorted({*STEMMERS.values(), NO_STEMMER})
    lookups = "\n    UNION ALL\n    ".join(
        _LOOKUP.format(words=f"= {n}" if n < _LOOKED_UP_APART else f">= {n}")
        for n in range(1, _LOOKED_UP_APART + 1)
    )
    return f"""CREATE OR REPLACE TEMP MACRO search(query) AS TABLE
WITH parts AS (
    SELECT unnest(regexp_extract_all(query, '-?"[^"]*"?|[^\\s"]+')) AS part,
        generate_subscripts(regexp_extract_all(query, '-?"[^"]*"?|[^\\s"]+'), 1) AS number
), joined AS (
    SELECT number, part, part = 'OR' OR lag(part, 1, '') OVER (ORDER BY number) = 'OR' AS joined
    FROM parts
), grouped AS (
    -- an item and those joined to it by OR form one clause
    SELECT number, part, sum(CASE WHEN joined THEN 0 ELSE 1 END) OVER (ORDER BY number) AS clause
    FROM joined
), items AS (
    SELECT number AS item, clause, part LIKE '-_%' AS excluded,
        search_words(CASE WHEN part LIKE '-_%' THEN part[2:] ELSE part END) AS words
    FROM grouped WHERE part <> 'OR'
), keys AS (
    SELECT item, clause, excluded, len(words) AS length, nth - 1 AS nth,
        dense_rank() OVER (ORDER BY item, nth) AS word, stemmer, stem(word, stemmer) AS term
    FROM (SELECT *, unnest(words) AS word, generate_subscripts(words, 1) AS nth FROM items),
        (SELECT unnest({stemmers!r}) AS stemmer)
), hits AS (
    -- a lookup a word: a join's filter on the sorted term column then reads few row groups
    {lookups}
), whole AS (
    -- articles holding every word of an item, then those holding them in a row
    SELECT item, article_id FROM hits GROUP BY ALL HAVING count(DISTINCT nth) = any_value(length)
), found AS (
    SELECT DISTINCT item, clause, excluded, article_id
    FROM hits SEMI JOIN whole USING (item, article_id) WHERE length = 1
    UNION ALL
    SELECT item, any_value(clause), any_value(excluded), article_id FROM (
        SELECT item, clause, excluded, length, article_id, nth, unnest(positions) - nth AS start
        FROM hits SEMI JOIN whole USING (item, article_id) WHERE length > 1
    ) GROUP BY item, article_id, start HAVING count(DISTINCT nth) = any_value(length)
), matching AS (
    SELECT article_id FROM (SELECT DISTINCT clause, article_id FROM found WHERE NOT excluded)
    GROUP BY article_id
    HAVING count(*) = (
        SELECT count(DISTINCT clause) FROM items WHERE NOT excluded AND len(words) > 0
    )
    EXCEPT
    SELECT article_id FROM found WHERE excluded
), collection AS (
    SELECT count(*) AS articles, avg(words) AS mean_words FROM search_documents
), frequency AS (
    SELECT term, stemmer, count(DISTINCT article_id) AS articles FROM hits GROUP BY ALL
)
SELECT h.article_id, sum(
    ln(1 + (c.articles - f.articles + 0.5) / (f.articles + 0.5))
    * h.occurrences * {K1 + 1} / (h.occurrences + {K1} * (1 - {B} + {B} * h.words / c.mean_words))
) AS score
FROM (SELECT DISTINCT term, stemmer, article_id, occurrences, words FROM hits WHERE NOT excluded) h
    SEMI JOIN matching USING (article_id)
    JOIN frequency f USING (term, stemmer), collection c
GROUP BY h.article_id"""


def postings_sql(source: str) -> str:
    """SQL of the postings of the articles in relation `source` (columns article_id, title,
    body, language, run_id), in no order; each posting's positions in no order either."""
    return f"""
WITH articles_words AS (
    SELECT article_id, run_id, search_stemmer(language) AS stemmer,
        search_words(coalesce(title, '') || ' ' || coalesce(body, '')) AS words
    FROM {source}
), occurrences AS (
    SELECT article_id, run_id, stemmer, len(words) AS length, unnest(words) AS word,
        generate_subscripts(words, 1) AS position
    FROM articles_words
), stems AS (
    SELECT stemmer, word, stem(word, stemmer) AS term
    FROM (SELECT DISTINCT stemmer, word FROM occurrences)
)
SELECT s.term, o.stemmer, o.article_id, count(*)::INTEGER AS occurrences,
    list(o.position)::INTEGER[] AS positions, any_value(o.length)::INTEGER AS words,
    any_value(o.run_id) AS run_id
FROM occurrences o JOIN stems s USING (stemmer, word)
GROUP BY s.term, o.stemmer, o.article_id"""


def index_tables(con: duckdb.DuckDBPyConnection, articles: pa.Table) -> dict[str, pa.Table]:
    """The postings (sorted by term) and documents of articles (columns article_id, title,
    body, language, run_id), made on `con`: a DuckDB with the fts extension installed."""
    con.execute("LOAD fts")
    for statement in word_macros():
        con.execute(statement)
    con.register("indexed_articles", articles)
    try:
        sql = f"{postings_sql('indexed_articles')} ORDER BY s.term, o.stemmer"
        postings = con.execute(sql).to_arrow_table().cast(POSTINGS_SCHEMA)
    finally:
        con.unregister("indexed_articles")
    documents = postings.group_by(["article_id", "run_id"], use_threads=False).aggregate(
        [("words", "max")]
    )
    documents = documents.rename_columns({"words_max": "words"}).select(DOCUMENTS_SCHEMA.names)
    return {POSTINGS_TABLE: postings, DOCUMENTS_TABLE: documents.cast(DOCUMENTS_SCHEMA)}


def insert_index(con: duckdb.DuckDBPyConnection, where: str, params: dict[str, object]) -> None:
    """Index the lake's articles that `where` (a condition on `articles`) selects, inside the
    caller's transaction: for a reprocessed night, a reindex."""
    articles = con.execute(
        f"SELECT article_id, title, body, language, run_id FROM articles WHERE {where}", params
    ).to_arrow_table()
    for table, rows in index_tables(con, articles).items():
        con.register("index_rows", rows)
        try:
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM index_rows")
        finally:
            con.unregister("index_rows")


def reindex(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Bring the index to the articles, inside the caller's transaction: the index rows of
    articles that are gone deleted, the articles missing from it indexed (a night at a time,
    which bounds the memory). The counts of both."""
    gone = con.execute(
        f"SELECT DISTINCT article_id FROM {DOCUMENTS_TABLE} ANTI JOIN articles USING (article_id)"
    ).fetchall()
    for table in (POSTINGS_TABLE, DOCUMENTS_TABLE):
        con.execute(
            f"DELETE FROM {table} WHERE article_id IN (SELECT unnest($ids))",
            {"ids": [row[0] for row in gone]},
        )
    missing = con.execute(
        f"SELECT run_id, count(*) FROM articles ANTI JOIN {DOCUMENTS_TABLE} USING (article_id) "
        "GROUP BY run_id ORDER BY run_id"
    ).fetchall()
    for run_id, _count in missing:
        insert_index(
            con,
            f"run_id = $run AND article_id NOT IN (SELECT article_id FROM {DOCUMENTS_TABLE})",
            {"run": run_id},
        )
    return {"removed": len(gone), "indexed": sum(int(n) for _run, n in missing)}


class IndexIncomplete(LookupError):
    """The search index does not cover the warehouse's articles."""


@dataclass(frozen=True, slots=True)
class Filters:
    """Which articles a search looks at: published in [since, until] (days, UTC; an undated
    article in neither), of a source, of a language."""

    since: date | None = None
    until: date | None = None
    source: str | None = None
    language: str | None = None

    def sql(self) -> tuple[str, dict[str, object]]:
        """A condition on `articles a`, and its parameters."""
        conditions: list[str] = ["true"]
        params: dict[str, object] = {}
        if self.since is not None:
            conditions.append("a.published_at >= $since")
            params["since"] = datetime.combine(self.since, time(), UTC)
        if self.until is not None:
            conditions.append("a.published_at < $until")
            params["until"] = datetime.combine(self.until + timedelta(days=1), time(), UTC)
        if self.source is not None:
            conditions.append("a.source = $source")
            params["source"] = self.source
        if self.language is not None:
            conditions.append("a.language = $language")
            params["language"] = self.language
        return " AND ".join(conditions), params


FOUND_COLUMNS = ["article_id", "title", "published_at", "source", "score", "snippet"]
ATTENTION_COLUMNS = ["period", "matching", "total", "share"]
# What a period of `attention` is, from an article `a`.
PERIODS = {
    "day": f"coalesce(strftime(a.published_at, '%Y-%m-%d'), '{UNDATED_MONTH}')",
    "week": f"coalesce(strftime(a.published_at, '%G-W%V'), '{UNDATED_MONTH}')",
    "month": "a.published_month",
    "source": "a.source",
}


def require_index(con: duckdb.DuckDBPyConnection) -> None:
    """Raise IndexIncomplete unless every article is indexed (counts compared: cheap)."""
    articles = con.execute("SELECT count(*) FROM articles").fetchall()[0][0]
    indexed = 0
    if has_index(con):
        indexed = con.execute(f"SELECT count(*) FROM {DOCUMENTS_TABLE}").fetchall()[0][0]
    if indexed != articles:
        raise IndexIncomplete(
            f"the search index covers {indexed:,} of {articles:,} articles: "
            "run `wirehouse reindex` (then `wirehouse verify`)"
        )


def has_index(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the connection has the `search` macro (the lake has the index's tables)."""
    rows = con.execute(
        "SELECT count(*) FROM duckdb_functions() WHERE function_name = 'search' "
        "AND function_type = 'table_macro'"
    ).fetchall()
    return bool(rows[0][0])


def find(
    con: duckdb.DuckDBPyConnection, query: str, limit: int = 20, filters: Filters = Filters()
) -> list[tuple[object, ...]]:
    """The best `limit` articles for a query, best first: FOUND_COLUMNS.

    The best are chosen on the columns the filters need; only theirs are read whole (a join
    would read every article's body)."""
    require_index(con)
    where, params = filters.sql()
    best = con.execute(
        "SELECT s.article_id, s.score FROM search($query) s "
        f"{'' if where == 'true' else 'JOIN articles a USING (article_id) WHERE ' + where} "
        "ORDER BY s.score DESC, s.article_id LIMIT $limit",
        {**params, "query": query, "limit": limit},
    ).fetchall()
    scores = dict(best)
    rows = con.execute(
        "SELECT article_id, title, published_at, source, body FROM articles "
        "WHERE article_id IN (SELECT unnest($ids))",
        {"ids": list(scores)},
    ).fetchall()
    found = {row[0]: row for row in rows}
    return [
        (*found[i][:4], round(float(scores[i]), 3), snippet(found[i][4], query))
        for i in scores
        if i in found
    ]


def attention(
    con: duckdb.DuckDBPyConnection, query: str, by: str, filters: Filters = Filters()
) -> list[tuple[object, ...]]:
    """Per period (or source), the articles matching the query against all: ATTENTION_COLUMNS."""
    require_index(con)
    where, params = filters.sql()
    return con.execute(
        f"SELECT {PERIODS[by]} AS period, count(s.article_id) AS matching, count(*) AS total, "
        "round(count(s.article_id) / count(*), 4) AS share "
        f"FROM articles a LEFT JOIN search($query) s USING (article_id) WHERE {where} "
        "GROUP BY period ORDER BY period",
        {**params, "query": query},
    ).fetchall()


_QUERY_WORD = re.compile(r"\w+")


def snippet(body: str, query: str, width: int = 160) -> str:
    """About `width` characters of the body around the first of the query's words it shows
    (a word's beginning is enough: "tariff" finds "tariffs"), whitespace made single spaces."""
    text = " ".join(body.split())
    wanted = [
        word.casefold()
        for part in re.findall(r'-?"[^"]*"?|[^\s"]+', query)
        if not part.startswith("-") and part != "OR"
        for word in _QUERY_WORD.findall(part)
    ]
    starts = [
        found.start()
        for word in wanted
        if (found := re.search(rf"(?<!\w){re.escape(word[: max(4, len(word) - 2)])}", text, re.I))
    ]
    start = max(0, min(starts, default=0) - width // 3)
    if start:
        start = text.find(" ", start) + 1 or start
    end = start + width
    if end < len(text):
        end = text.rfind(" ", start, end) if text.rfind(" ", start, end) > start else end
    return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")
