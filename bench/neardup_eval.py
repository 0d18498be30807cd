"""Labelled near-duplicate set from the BBC corpus, and the engine's precision and recall on it.

Deterministic for a seed. Stories are rendered with the benchmark's Xinhua template
(bench/render.py: `CITY, Mon D (Xinhua) -- ` lead). Byte-identical BBC files (exact duplicates,
another stage's job) are dropped, and so are stories that already overlap another story
(shingle Jaccard >= 0.2: the corpus' own rewrites, whose true label is unknown).
- history: the first half of the originals, committed to the near-duplicate index of a DuckLake
  in a temporary folder as one past night;
- night: the other half (new stories), one edited copy of each of `copy_share` of all the
  originals (its label: the original), and hard negatives: for an original, the most similar
  other story of its category (same topic), rendered with the original's dateline lead and, for
  a third of them, opening with the original's first sentence (label: not a copy).
Edits of a copy, as Xinhua updates stories: a paragraph changed, added or dropped, a typo fixed,
the dateline's day moved; some get two of these. A new headline ("UPDATE: ...") alone leaves
the body byte-identical (an `exact` duplicate), so here it always comes with a body edit.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from bench.render import REPO, Story, _edit_word, load_corpus, page_of, shared_dir
from transforms.dedupe import Candidate
from transforms.minhash import THRESHOLD, U32, shingles, signatures
from transforms.neardup import near_links
from warehouse import nearindex
from warehouse.catalog import open_lake
from warehouse.home import Home
from warehouse.loader import insert_arrow

BASELINE = REPO / "tests" / "baselines" / "neardup.json"
EDITS = ("paragraph_changed", "paragraph_added", "paragraph_dropped", "typo", "dateline")
SWEEP = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
_OVERLAP = 0.2  # stories of the corpus this close are its own rewrites: unlabelled, left out
_COMMON_SHINGLE = 50  # shingles in more stories than this are boilerplate for the overlap check
_REWRITE_RUN = 4  # words replaced together when a paragraph is rewritten
_ADDED_WORDS = 50  # longest added paragraph, in words (BBC paragraphs average about 30)


@dataclass(slots=True)
class Doc:
    """One article of the labelled set: its id, time, body, and what it copies (if anything)."""

    article_id: str
    published_at: datetime
    body: str
    copy_of: str | None = None
    kind: str = "original"  # original | copy:<edits> | hard_negative


@dataclass(slots=True)
class LabelledSet:
    """History articles (already indexed) and the night's articles, with labels."""

    history: list[Doc] = field(default_factory=list)
    night: list[Doc] = field(default_factory=list)


def labelled_set(
    shared: Path, originals: int = 1400, copy_share: float = 0.5, seed: int = 0
) -> LabelledSet:
    """Build the labelled set deterministically from the BBC stories under shared/dumps/bbc."""
    rng = random.Random(f"neardup:{seed}")
    stories = _distinct_stories(load_corpus(shared, seed))
    pool, spare = stories[:originals], stories[originals:]
    out = LabelledSet()
    donors, negatives = spare[: len(spare) // 3], spare[len(spare) // 3 :]
    docs = [_doc(story, serial, seed) for serial, story in enumerate(pool)]
    half = len(docs) // 2
    out.history, out.night = docs[:half], docs[half:]
    for doc in docs:
        if rng.random() < copy_share:
            out.night.append(_copy(doc, donors, rng))
    used: set[str] = set()
    for doc, story in zip(docs, pool, strict=True):
        negative = _hard_negative(doc, story, negatives, used, rng)
        if negative is not None:
            out.night.append(negative)
    return out


def evaluate(
    labelled: LabelledSet, thresholds: tuple[float, ...] = (THRESHOLD,)
) -> list[dict[str, float]]:
    """Precision, recall and F1 of the engine on the labelled set, at each threshold."""
    history_sigs = signatures([d.body for d in labelled.history])
    night_sigs = signatures([d.body for d in labelled.night])
    candidates = [
        Candidate(f"night/{i:06d}.txt", d.article_id, d.published_at, None, d.article_id)
        for i, d in enumerate(labelled.night)
    ]
    truth = {c.dump_file: d.copy_of for c, d in zip(candidates, labelled.night, strict=True)}
    copies = sum(1 for target in truth.values() if target is not None)
    with tempfile.TemporaryDirectory() as tmp:
        con = open_lake(Home.at(tmp))
        try:
            index_night(con, "history", [d.article_id for d in labelled.history], history_sigs)
            matches = nearindex.history_matches(con, night_sigs, min(thresholds))
        finally:
            con.close()
    results = []
    for threshold in thresholds:
        _kept, links = near_links(candidates, night_sigs, matches, threshold)
        right = sum(1 for link in links if truth[link.dump_file] == link.duplicate_of)
        precision = right / len(links) if links else 1.0
        recall = right / copies if copies else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        results.append(
            {
                "threshold": threshold,
                "precision": round(precision, 4),
                "recall": round(recall, 4),
                "f1": round(f1, 4),
                "links": len(links),
                "copies": copies,
            }
        )
    return results


def index_night(
    con: duckdb.DuckDBPyConnection, run_id: str, article_ids: list[str], sigs: U32
) -> None:
    """Commit one night's near-duplicate index rows in one transaction, as a night does."""
    con.execute("BEGIN")
    try:
        for table, rows in nearindex.index_rows(article_ids, sigs, run_id).items():
            insert_arrow(con, table, rows)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _distinct_stories(stories: list[Story]) -> list[Story]:
    """Stories with distinct bytes that do not already overlap an earlier one."""
    seen: set[str] = set()
    unique = [s for s in stories if not (s.key in seen or seen.add(s.key))]  # type: ignore[func-returns-value]
    sets = [set(shingles("\n\n".join(s.paragraphs)).tolist()) for s in unique]
    holders: defaultdict[int, list[int]] = defaultdict(list)
    for i, items in enumerate(sets):
        for shingle in items:
            holders[shingle].append(i)
    dropped: set[int] = set()
    for i, items in enumerate(sets):
        shared: defaultdict[int, int] = defaultdict(int)
        for shingle in items:
            docs = holders[shingle]
            if len(docs) <= _COMMON_SHINGLE:
                for j in docs:
                    if j < i:
                        shared[j] += 1
        for j, n in shared.items():
            if j not in dropped and n / (len(items) + len(sets[j]) - n) >= _OVERLAP:
                dropped.add(i)
                break
    return [s for i, s in enumerate(unique) if i not in dropped]


def _doc(story: Story, serial: int, seed: int) -> Doc:
    page = page_of(story, 0, serial, seed)
    published = (page.beijing_time - timedelta(hours=8)).replace(tzinfo=UTC)
    return Doc(f"orig-{serial:05d}", published, "\n\n".join(page.paragraphs))


def _copy(doc: Doc, donors: list[Story], rng: random.Random) -> Doc:
    """The original updated: one or two edits, a later time, a new id."""
    paragraphs = doc.body.split("\n\n")
    edits = rng.sample(EDITS, 2 if rng.random() < 0.25 else 1)
    for edit in edits:
        paragraphs = _edited(paragraphs, edit, rng.choice(donors), rng)
    later = doc.published_at + timedelta(hours=rng.randint(1, 30))
    name = "+".join(edits)
    return Doc(f"copy-{doc.article_id}", later, "\n\n".join(paragraphs), doc.article_id, name)


def _edited(paragraphs: list[str], edit: str, donor: Story, rng: random.Random) -> list[str]:
    """One edit of a story, as an update makes it; new words come from a story not in the set."""
    out = list(paragraphs)
    spot = rng.randrange(1, len(out)) if len(out) > 1 else 0
    new_words = " ".join(donor.paragraphs).split()
    if edit == "paragraph_changed":
        # A paragraph rewritten: a third of its words replaced, in runs, as a sub-editor does.
        words = out[spot].split()
        for _ in range(max(1, len(words) // 3 // _REWRITE_RUN)):
            at = rng.randrange(len(words))
            source = rng.randrange(max(1, len(new_words) - _REWRITE_RUN))
            words[at : at + _REWRITE_RUN] = new_words[source : source + _REWRITE_RUN]
        out[spot] = " ".join(words)
    elif edit == "paragraph_added":
        # A paragraph of new information, of a wire paragraph's usual length.
        size = rng.randint(15, _ADDED_WORDS)
        source = rng.randrange(max(1, len(new_words) - size))
        out.insert(rng.randrange(1, len(out) + 1), " ".join(new_words[source : source + size]))
    elif edit == "paragraph_dropped" and len(out) > 2:
        del out[spot]
    elif edit == "typo":
        out[spot] = _edit_word(out[spot], rng.randrange(5)) or out[spot] + " ."
    elif edit == "dateline":
        lead, sep, rest = out[0].partition(" (Xinhua) -- ")
        place, _, day = lead.rpartition(" ")
        if day.isdigit():
            out[0] = f"{place} {int(day) % 28 + 1}{sep}{rest}"
    return out


def _hard_negative(
    doc: Doc, story: Story, candidates: list[Story], used: set[str], rng: random.Random
) -> Doc | None:
    """Another story of the same category, nearest in topic, in the original's template."""
    category = story.source.split("/")[0]
    mine = set(shingles("\n\n".join(story.paragraphs)).tolist())
    best: tuple[float, str] | None = None
    pick: Story | None = None
    for other in rng.sample(candidates, min(80, len(candidates))):
        if other.key == story.key or other.key in used or not other.source.startswith(category):
            continue
        theirs = set(shingles("\n\n".join(other.paragraphs)).tolist())
        score = (len(mine & theirs) / max(1, len(mine | theirs)), other.key)
        if best is None or score > best:
            best, pick = score, other
    if pick is None:
        return None
    used.add(pick.key)
    lead = doc.body.split(" -- ", 1)[0] + " -- "
    paragraphs = list(pick.paragraphs)
    if rng.random() < 1 / 3:
        first_sentence = story.paragraphs[0].split(". ")[0].rstrip(".") + "."
        paragraphs[0] = f"{first_sentence} {paragraphs[0]}"
    paragraphs[0] = lead + paragraphs[0]
    later = doc.published_at + timedelta(hours=rng.randint(1, 30))
    body = "\n\n".join(paragraphs)
    return Doc(f"neg-{doc.article_id}", later, body, None, "hard_negative")


def main(argv: list[str] | None = None) -> int:
    """Command line: build the set, print the threshold sweep; optionally write the baseline."""
    parser = argparse.ArgumentParser(prog="python -m bench.neardup_eval", description=__doc__)
    parser.add_argument("--originals", type=int, default=1400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write-baseline", action="store_true")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    labelled = labelled_set(shared_dir(), args.originals, seed=args.seed)
    built = time.perf_counter() - start
    kinds: defaultdict[str, int] = defaultdict(int)
    for doc in labelled.night:
        kinds[doc.kind.split(":")[0]] += 1
    print(f"history {len(labelled.history)}, night {len(labelled.night)}: {dict(kinds)}")
    print(f"built in {built:.1f} s")
    rows = evaluate(labelled, SWEEP)
    print("threshold precision recall    f1  links")
    for row in rows:
        print(
            f"{row['threshold']:9.2f} {row['precision']:9.4f} {row['recall']:6.4f} "
            f"{row['f1']:6.4f} {row['links']:6d}"
        )
    default = next(r for r in rows if r["threshold"] == THRESHOLD)
    print(f"default threshold {THRESHOLD}: {json.dumps(default)}")
    if args.write_baseline:
        baseline = {"originals": args.originals, "seed": args.seed, **default}
        BASELINE.write_text(json.dumps(baseline, indent=2) + "\n")
        print(f"wrote {BASELINE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
