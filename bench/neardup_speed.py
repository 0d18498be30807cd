"""Near-duplicate engine speed: side by side with datasketch, and a night against a big history.

1. Same texts (the labelled set of bench/neardup_eval.py), same shingles (3 folded words), same
   num_perm, bands and rows, same threshold: both sides go from body text to signatures, index
   the history, and query the night against history and earlier night articles. Times, their
   ratio, and each side's recall and precision on the labels.
2. Incremental cost: a night of N new articles against an empty index, then against an index of
   H articles synthesised directly in the on-disk format (random signatures, written in chunks
   of one night each, as nightly runs would). Each night runs in a fresh child process, whose
   peak RSS (VmHWM) is reported.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.neardup_eval import LabelledSet, labelled_set
from bench.render import load_corpus, shared_dir
from transforms.dedupe import Candidate, night_order
from transforms.minhash import BANDS, NUM_PERM, ROWS, THRESHOLD, folded_tokens, signatures
from transforms.neardup import near_links
from warehouse import nearindex

_HISTORY_CHUNK = 10_000  # articles per synthesised run: one night's worth


def ours(labelled: LabelledSet) -> tuple[float, dict[str, str]]:
    """Our engine, text to links: seconds and dump_file -> duplicate_of."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        history = signatures([d.body for d in labelled.history])
        nearindex.append(folder, "h", [d.article_id for d in labelled.history], history)
        night = signatures([d.body for d in labelled.night])
        matches = nearindex.history_matches(folder, night, {"h"}, THRESHOLD)
        _kept, links = near_links(_candidates(labelled), night, matches, THRESHOLD)
    return time.perf_counter() - start, {link.dump_file: link.duplicate_of for link in links}


def theirs(labelled: LabelledSet) -> tuple[float, dict[str, str]]:
    """datasketch MinHash + MinHashLSH over the same shingles: seconds and links."""
    from datasketch import MinHash, MinHashLSH

    start = time.perf_counter()
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM, params=(BANDS, ROWS))
    stored: dict[str, Any] = {}
    for doc in labelled.history:
        stored["h:" + doc.article_id] = mh = _minhash(doc.body, MinHash)
        lsh.insert("h:" + doc.article_id, mh)
    links: dict[str, str] = {}
    night = sorted(zip(_candidates(labelled), labelled.night, strict=True), key=_order)
    for candidate, doc in night:
        mh = _minhash(doc.body, MinHash)
        found = [(key, mh.jaccard(stored[key])) for key in lsh.query(mh)]
        found = [(k, s) for k, s in found if s >= THRESHOLD]
        if found:
            # history wins, then the most similar: the rule of transforms.neardup
            best = min(found, key=lambda ks: (not ks[0].startswith("h:"), -ks[1], ks[0]))
            links[candidate.dump_file] = best[0][2:]
        else:
            stored["n:" + doc.article_id] = mh
            lsh.insert("n:" + doc.article_id, mh)
    return time.perf_counter() - start, links


def _minhash(body: str, kind: Any) -> Any:
    tokens = folded_tokens(body)[0].split()
    shingles = [b" ".join(tokens[i : i + 3]) for i in range(max(1, len(tokens) - 2))]
    mh = kind(num_perm=NUM_PERM)
    mh.update_batch(shingles)
    return mh


def _order(pair: tuple[Candidate, Any]) -> tuple[bool, datetime | str, str]:
    return night_order(pair[0])


def _candidates(labelled: LabelledSet) -> list[Candidate]:
    return [
        Candidate(f"night/{i:06d}.txt", d.article_id, d.published_at, None, d.article_id)
        for i, d in enumerate(labelled.night)
    ]


def scores(labelled: LabelledSet, links: dict[str, str]) -> tuple[float, float]:
    """Precision and recall of links against the labels."""
    truth = {
        c.dump_file: d.copy_of for c, d in zip(_candidates(labelled), labelled.night, strict=True)
    }
    right = sum(1 for dump, target in links.items() if truth[dump] == target)
    copies = sum(1 for target in truth.values() if target)
    return right / max(1, len(links)), right / max(1, copies)


def synthesise_history(folder: Path, articles: int, seed: int = 1) -> None:
    """Write an index of random signatures in runs of one night each; memory stays one run."""
    rng = np.random.default_rng(seed)
    for run, begin in enumerate(range(0, articles, _HISTORY_CHUNK)):
        n = min(_HISTORY_CHUNK, articles - begin)
        sigs = rng.integers(0, 2**32 - 1, size=(n, NUM_PERM), dtype=np.uint32)
        ids = [f"synthetic-{begin + i:09d}" for i in range(n)]
        nearindex.append(folder, f"history-{run:05d}", ids, sigs)


def night_child(folder: str, articles: int) -> dict[str, float]:
    """In a fresh process: one night of the engine against the index in folder; time and RSS."""
    bodies = night_bodies(articles)
    committed = nearindex.run_ids(Path(folder))
    start = time.perf_counter()
    sigs = signatures(bodies)
    matches = nearindex.history_matches(Path(folder), sigs, committed, THRESHOLD)
    candidates = [Candidate(f"n/{i:06d}", f"new-{i:06d}", None, None, "") for i in range(articles)]
    kept, _links = near_links(candidates, sigs, matches, THRESHOLD)
    rows = {c.article_id for c in kept}
    keep = [i for i, c in enumerate(candidates) if c.article_id in rows]
    nearindex.append(Path(folder), "tonight", [candidates[i].article_id for i in keep], sigs[keep])
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 3), "peak_rss_mb": _vm_hwm_mb(), "matches": len(matches)}


def night_bodies(articles: int) -> list[str]:
    """Distinct BBC-like bodies: the corpus, then passes with each paragraph's words shuffled."""
    corpus = load_corpus(shared_dir(), 0)
    bodies = []
    for i in range(articles):
        paragraphs = list(corpus[i % len(corpus)].paragraphs)
        if i >= len(corpus):
            rng = random.Random(i)
            paragraphs = [" ".join(rng.sample(p.split(), len(p.split()))) for p in paragraphs]
        bodies.append("\n\n".join(paragraphs))
    return bodies


def _vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def _run_child(folder: Path, articles: int) -> dict[str, float]:
    code = (
        "import json,sys; from bench.neardup_speed import night_child; "
        f"print(json.dumps(night_child({str(folder)!r}, {articles})))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def incremental(night: int, history: int, repeat: int = 3) -> dict[str, object]:
    """The same night against an empty index and a synthesised one of `history` articles."""
    with tempfile.TemporaryDirectory() as tmp:
        empty, full = Path(tmp) / "empty", Path(tmp) / "full"
        start = time.perf_counter()
        synthesise_history(full, history)
        built = time.perf_counter() - start
        _run_child(empty, 100)  # warm the page cache with the corpus and the imports
        colds, warms = [], []
        # Alternating, best of `repeat`: the machine's other load hits both sides alike.
        for _ in range(repeat):
            nearindex.remove_runs(empty, set())
            nearindex.remove_runs(full, nearindex.run_ids(full) - {"tonight"})
            colds.append(_run_child(empty, night))
            warms.append(_run_child(full, night))
        cold = min(colds, key=lambda r: r["seconds"])
        warm = min(warms, key=lambda r: r["seconds"])
    return {
        "history": history,
        "night": night,
        "history_built_seconds": round(built, 1),
        "empty_index": cold,
        "full_index": warm,
        "all_seconds": {
            "empty": [r["seconds"] for r in colds],
            "full": [r["seconds"] for r in warms],
        },
        "ratio": round(warm["seconds"] / cold["seconds"], 3),
    }


def main(argv: list[str] | None = None) -> int:
    """Command line: the side-by-side comparison, then the incremental-cost measurement."""
    parser = argparse.ArgumentParser(prog="python -m bench.neardup_speed", description=__doc__)
    parser.add_argument("--night", type=int, default=10_000)
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--skip-incremental", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    labelled = labelled_set(shared_dir())
    print(f"labelled set: {len(labelled.history)} history, {len(labelled.night)} night articles")
    # Best of `--repeat` for each side: the first call of either pays one-off start-up costs
    # (DuckDB's first connection, page faults of numpy's first large arrays).
    our_runs = [ours(labelled) for _ in range(args.repeat)]
    their_runs = [theirs(labelled) for _ in range(args.repeat)]
    print("wirehouse runs:", [round(r[0], 2) for r in our_runs])
    print("datasketch runs:", [round(r[0], 2) for r in their_runs])
    our_seconds, our_links = min(our_runs, key=lambda r: r[0])
    their_seconds, their_links = min(their_runs, key=lambda r: r[0])
    for name, seconds, links in (
        ("wirehouse", our_seconds, our_links),
        ("datasketch", their_seconds, their_links),
    ):
        precision, recall = scores(labelled, links)
        print(f"{name:10s} {seconds:7.2f} s  precision {precision:.4f}  recall {recall:.4f}")
    print(f"speed ratio (datasketch / wirehouse): {their_seconds / our_seconds:.1f}x")
    if not args.skip_incremental:
        print(json.dumps(incremental(args.night, args.history, args.repeat), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
