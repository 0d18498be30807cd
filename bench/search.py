"""Search: how right its answers are, how fast at a million articles, what the index costs.

Answers, on a lake of the 2,225 BBC stories of dumps/bbc as articles (each once):
- known items: a sampled story's title as the query; is the story first, in the first ten?
- phrases: runs of two and three words from sampled stories, quoted; the articles found
  against those whose words, as indexed, hold the run (any form of each word: the index stems)
  and those whose text holds it exactly (case and accents aside): recall and precision.

Speed, on a lake of --articles articles (default 1,000,000): the stories copied with new ids,
publication times spread over 36 months, written as nights of --night articles (a file of
postings sorted by term each, as between two compactions):
- query time (median of --repeat, a connection open; the command's start-up apart): a word, a
  phrase, three words, a count by month;
- upkeep: a night of 10,000 articles indexed and committed onto that lake, against onto an
  empty one;
- the index's size against the articles' bodies.

And what the index costs a night: a night of --night-dumps rendered pages in one process
(one core's work), the CPU its search index rows took against the night's whole CPU.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import duckdb
import pyarrow as pa

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.eval_generic import shared_dir  # noqa: E402
from warehouse.catalog import connect, install_extensions, open_lake, transaction  # noqa: E402
from warehouse.home import Home  # noqa: E402
from warehouse.search import (  # noqa: E402
    DOCUMENTS_TABLE,
    POSTINGS_TABLE,
    SCHEMAS,
    Filters,
    attention,
    find,
    index_tables,
)

MONTHS = 36


def stories(shared: Path | None = None) -> pa.Table:
    """The BBC stories of `shared`/dumps/bbc (default ../shared) as articles' columns: title
    the first line, body the rest."""
    rows = []
    folder = (shared or shared_dir()) / "dumps" / "bbc"
    for number, path in enumerate(sorted(folder.glob("*/*.txt"))):
        title, _, body = path.read_text(encoding="utf-8", errors="replace").partition("\n")
        rows.append((f"{number:024x}", title.strip(), body.strip(), path.parent.name))
    columns = list(zip(*rows, strict=True))
    return pa.table(
        {
            "article_id": pa.array(columns[0]),
            "title": pa.array(columns[1]),
            "body": pa.array(columns[2]),
            "source": pa.array([f"BBC {c}" for c in columns[3]]),
        }
    )


# An article's id in copy `c.copy` of story `s`: copy 0 keeps the story's.
_COPY_ID = "CASE WHEN c.copy = 0 THEN s.article_id ELSE md5(s.article_id || '-' || c.copy)[:24] END"


def copies(first: int, count: int, run_id: str, most: int) -> str:
    """SQL of the articles that are copies `first` .. `first + count - 1` of the stories
    (registered as `stories`, numbered `n`), the first `most` of all copies only; publication
    times fall in one of MONTHS months."""
    published = (
        "TIMESTAMPTZ '2020-01-01 00:00:00+00' "
        f"+ to_days(((c.copy * 7919 + s.n) % ({MONTHS} * 30))::INTEGER)"
    )
    return f"""
        SELECT {_COPY_ID} AS article_id,
            s.source, s.title, {published} AS published_at, 'page' AS published_at_source,
            NULL AS editor, NULL AS author, NULL AS dateline, s.body, []::VARCHAR[] AS captions,
            len(string_split(s.body, ' '))::INTEGER AS word_count, 'en' AS language,
            NULL AS page_code, md5(s.body) AS body_fingerprint,
            'bbc/' || s.n || '-' || c.copy || '.txt' AS dump_file,
            md5(s.article_id || '-' || c.copy) AS dump_sha256, 'utf-8' AS encoding,
            'generic' AS layout, 'bench' AS parser_version, '{run_id}' AS run_id,
            strftime({published}, '%Y-%m') AS published_month
        FROM stories s, range({first}, {first + count}) c(copy)
        WHERE c.copy * (SELECT count(*) FROM stories) + s.n < {most}
    """


def index_copies(table: str, first: int, count: int, run_id: str, most: int) -> str:
    """SQL of the index rows (of `table`) of the same copies: the stories' own, indexed once
    (registered as `story_<table>`), under the copies' ids; postings sorted by term."""
    columns = [name for name in SCHEMAS[table].names if name not in ("article_id", "run_id")]
    order = "ORDER BY term, stemmer" if table == POSTINGS_TABLE else ""
    return f"""
        SELECT {_COPY_ID} AS article_id, {", ".join(f"i.{c}" for c in columns)},
            '{run_id}' AS run_id
        FROM story_{table} i JOIN stories s USING (article_id),
            range({first}, {first + count}) c(copy)
        WHERE c.copy * (SELECT count(*) FROM stories) + s.n < {most} {order}
    """


def numbered(table: pa.Table) -> pa.Table:
    """The stories with their number `n`, the order the copies keep."""
    return table.append_column("n", pa.array(range(table.num_rows), pa.int64()))


def make_lake(root: Path, table: pa.Table, articles: int, night: int) -> Home:
    """A lake of `articles` copies of the stories (1 copy: the stories themselves), written
    as nights of `night` articles: a file of postings each, as between two compactions."""
    home = Home.at(root)
    con = open_lake(home)
    try:
        con.register("stories", numbered(table))
        own = table.select(["article_id", "title", "body"]).append_column(
            "language", pa.array(["en"] * table.num_rows)
        )
        own = own.append_column("run_id", pa.array(["-"] * table.num_rows))
        indexed = index_tables(con, own)
        for name, rows in indexed.items():
            con.register(f"story_{name}", rows)
        count = max(1, night // table.num_rows)
        for first in range(0, -(-articles // table.num_rows), count):
            run_id = f"night-{first:06d}"
            with transaction(con):
                rows = copies(first, count, run_id, articles)
                con.execute(f"INSERT INTO articles BY NAME {rows}")
                for name in indexed:
                    rows = index_copies(name, first, count, run_id, articles)
                    con.execute(f"INSERT INTO {name} BY NAME {rows}")
            written = min(articles, (first + count) * table.num_rows)
            print(f"  {written:,} articles written", file=sys.stderr, flush=True)
    finally:
        con.close()
    return home


def timed(function: Callable[[], Any], repeat: int) -> float:
    """Median milliseconds of `repeat` calls, after one to warm up."""
    function()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return round(1000 * statistics.median(times), 1)


def answers(home: Home, table: pa.Table, sample: int, seed: int) -> dict[str, Any]:
    """Known items and phrases on the lake of the stories themselves."""
    chooser = random.Random(seed)
    chosen = chooser.sample(range(table.num_rows), sample)
    ids, titles = (table[c].to_pylist() for c in ("article_id", "title"))
    with connect(home) as con:
        first = ten = 0
        for n in chosen:
            found = [row[0] for row in find(con, titles[n], 10)]
            first += bool(found) and found[0] == ids[n]
            ten += ids[n] in found
        words = {
            row[0]: row[1]
            for row in con.execute(
                "SELECT article_id, search_words(title || ' ' || body) FROM articles"
            ).fetchall()
        }
        texts = {a: f" {' '.join(w)} " for a, w in words.items()}
        stemmed = {
            row[0]: row[1]
            for row in con.execute(
                "SELECT article_id, "
                "[stem(w, 'english') FOR w IN search_words(title || ' ' || body)]"
                " FROM articles"
            ).fetchall()
        }
        stemmed_texts = {a: f" {' '.join(s)} " for a, s in stemmed.items()}
        recall, exact_precision, stem_precision, phrases = [], [], [], []
        for n in chosen:
            length = chooser.choice((2, 3))
            text = words[ids[n]]
            start = chooser.randrange(max(1, len(text) - length))
            run = text[start : start + length]
            phrase = " ".join(run)
            found = {row[0] for row in find(con, f'"{phrase}"', 100_000)}
            exact = {a for a, text in texts.items() if f" {phrase} " in text}
            stemmed_run = " ".join(stemmed[ids[n]][start : start + length])
            by_stem = {a for a, s in stemmed_texts.items() if f" {stemmed_run} " in s}
            recall.append(len(found & by_stem) / len(by_stem))
            stem_precision.append(len(found & by_stem) / len(found) if found else 0.0)
            exact_precision.append(len(found & exact) / len(found) if found else 0.0)
            phrases.append(phrase)
    return {
        "stories": table.num_rows,
        "known_items": sample,
        "title_first": round(first / sample, 3),
        "title_in_first_ten": round(ten / sample, 3),
        "phrases": len(phrases),
        "phrase_recall": round(statistics.mean(recall), 4),
        "phrase_precision_words_any_form": round(statistics.mean(stem_precision), 4),
        "phrase_precision_words_exact": round(statistics.mean(exact_precision), 4),
    }


def speed(home: Home, repeat: int) -> dict[str, Any]:
    """Query times on a lake, and the index's size against the bodies'."""
    with connect(home) as con:
        articles = con.execute("SELECT count(*) FROM articles").fetchall()[0][0]
        figures: dict[str, Any] = {"articles": articles}
        for name, query in (
            ("word", "tariff"),
            ("common word", "government"),
            ("phrase", '"interest rates"'),
            ("three words", "oil price rise"),
        ):
            figures[f"ms {name} ({query}), top 20"] = timed(lambda q=query: find(con, q), repeat)
        figures["ms count by month (tariff)"] = timed(
            lambda: attention(con, "tariff", "month", Filters()), repeat
        )
        figures["ms count by month (government)"] = timed(
            lambda: attention(con, "government", "month", Filters()), repeat
        )
        sizes = {
            table: con.execute(
                "SELECT sum(data_file_size_bytes), count(*) FROM ducklake_list_files('wh', ?)",
                [table],
            ).fetchall()[0]
            for table in ("articles", POSTINGS_TABLE, DOCUMENTS_TABLE)
        }
        body = con.execute("SELECT sum(strlen(body)) FROM articles").fetchall()[0][0]
    index_bytes = sizes[POSTINGS_TABLE][0] + sizes[DOCUMENTS_TABLE][0]
    figures.update(
        {
            "index MB": round(index_bytes / 1e6, 1),
            "index files": sizes[POSTINGS_TABLE][1] + sizes[DOCUMENTS_TABLE][1],
            "bodies MB (text)": round(body / 1e6, 1),
            "articles files MB": round(sizes["articles"][0] / 1e6, 1),
            "index / bodies": round(index_bytes / body, 3),
        }
    )
    return figures


def upkeep(home: Home, table: pa.Table, night: int, repeat: int) -> float:
    """Median seconds to index a night of `night` articles and commit it onto the lake (the
    night then undone, so each repeat starts from the same lake)."""
    con = open_lake(home)
    try:
        con.register("stories", numbered(table))
        times = []
        for _ in range(repeat):
            count = max(1, night // table.num_rows)
            con.execute(
                "CREATE OR REPLACE TEMP TABLE night AS "
                f"{copies(900_000, count, 'upkeep', 10**12)} LIMIT {night}"
            )
            rows = con.execute(
                "SELECT article_id, title, body, language, run_id FROM night"
            ).to_arrow_table()
            start = time.perf_counter()
            with transaction(con):
                for name, part in index_tables(con, rows).items():
                    con.register("part", part)
                    con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM part")
                    con.unregister("part")
            times.append(time.perf_counter() - start)
            with transaction(con):
                for name in (POSTINGS_TABLE, DOCUMENTS_TABLE):
                    con.execute(f"DELETE FROM {name} WHERE run_id = 'upkeep'")
    finally:
        con.close()
    return statistics.median(times)


def throughput(dumps: int) -> dict[str, Any]:
    """A night of `dumps` rendered BBC pages in this process (no pool: one core's work), after
    one to warm up: the CPU its search index rows took, against the night's whole CPU."""
    import flows.worker
    from bench.render import render_inbox
    from flows.nightly import nightly_ingest

    spent = {"seconds": 0.0, "articles": 0}
    indexed = flows.worker.search_rows

    def timed(rows: pa.Table) -> dict[str, pa.Table]:
        start = time.process_time()
        try:
            return indexed(rows)
        finally:
            spent["seconds"] += time.process_time() - start
            spent["articles"] += rows.num_rows

    with tempfile.TemporaryDirectory(prefix="wirehouse-search-night-") as scratch:
        inbox = Path(scratch) / "inbox"
        render_inbox(inbox, dumps, seed=0)
        settings = {"WIREHOUSE_POOL_MIN_BYTES": str(2**40), "WIREHOUSE_BUILD_DOCS": "0"}
        with (
            mock.patch.dict("os.environ", settings),
            mock.patch.object(flows.worker, "search_rows", timed),
        ):
            nightly_ingest(inbox=str(inbox), home=str(Path(scratch) / "warm-up"))
            spent.update(seconds=0.0, articles=0)
            start = time.process_time()
            nightly_ingest(inbox=str(inbox), home=str(Path(scratch) / "night"))
            night = time.process_time() - start
    return {
        "dumps": dumps,
        "articles indexed": spent["articles"],
        "s CPU of the night": round(night, 2),
        "s CPU of its search rows": round(spent["seconds"], 2),
        "ms CPU an article indexed": round(1000 * spent["seconds"] / spent["articles"], 3),
        "share of the night's CPU": round(spent["seconds"] / night, 3),
    }


def lakes(args: argparse.Namespace, table: pa.Table) -> dict[str, Any]:
    """Answers on the stories' lake; speed and upkeep on a big one."""
    with tempfile.TemporaryDirectory(prefix="wirehouse-search-") as scratch:
        root = args.keep or Path(scratch)
        small = make_lake(root / "stories", table, table.num_rows, table.num_rows)
        report: dict[str, Any] = {"answers": answers(small, table, args.sample, args.seed)}
        empty = make_lake(root / "empty", table, 0, 1)
        big = make_lake(root / "big", table, args.articles, args.night)
        report["speed"] = speed(big, args.repeat)
        onto_big = upkeep(big, table, 10_000, 3)
        onto_empty = upkeep(empty, table, 10_000, 3)
    report["upkeep"] = {
        "s a night of 10,000 onto the big lake": round(onto_big, 2),
        "s onto an empty lake": round(onto_empty, 2),
        "ratio": round(onto_big / onto_empty, 2),
    }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--articles", type=int, default=1_000_000)
    parser.add_argument("--night", type=int, default=100_000, help="articles a night writes")
    parser.add_argument("--sample", type=int, default=200, help="known items and phrases")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="build the lakes here and keep them")
    parser.add_argument("--night-dumps", type=int, default=5000, help="dumps a timed night reads")
    parser.add_argument("--parts", default="lakes,night", help="lakes, night, or both")
    args = parser.parse_args()
    with duckdb.connect() as con:
        install_extensions(con)
    report: dict[str, Any] = {}
    if "lakes" in args.parts:
        report.update(lakes(args, stories()))
    if "night" in args.parts:
        report["night"] = throughput(args.night_dumps)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
