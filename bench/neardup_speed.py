"""Near-duplicate engine speed: side by side with datasketch, and a night against a big history.

1. Same texts (the labelled set of bench/neardup_eval.py), same shingles (3 folded words), same
   num_perm, bands and rows, same threshold: both sides go from body text to signatures, index
   the history, and query the night against history and earlier night articles. Times, their
   ratio, and each side's recall and precision on the labels.
2. Incremental cost: a night of N new articles against an empty index, then against an index of
   H articles synthesised directly into the lake's `minhash_bands` and `minhash_signatures`
   tables (random signatures, plus copies of a share of the night's bodies, committed one
   transaction per night of 10,000, as nightly runs would), then again after `compact` merged
   the history's files. Each night runs in a fresh child process, which attaches the lake, looks
   its articles up and commits its own index rows; its peak RSS (VmHWM) is reported.
   `lookup_profile` times the lookup's two queries apart.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from bench.neardup_eval import LabelledSet, index_night, labelled_set
from bench.render import load_corpus, shared_dir
from transforms.dedupe import Candidate, night_order
from transforms.minhash import (
    BANDS,
    NUM_PERM,
    ROWS,
    THRESHOLD,
    band_keys,
    folded_tokens,
    has_shingles,
    signatures,
)
from transforms.neardup import Match, near_links
from warehouse import nearindex
from warehouse.catalog import connect, open_lake
from warehouse.home import Home
from warehouse.maintenance import compact, data_files

_HISTORY_CHUNK = 10_000  # articles per synthesised run: one night's worth
TONIGHT = "tonight"


def ours(labelled: LabelledSet) -> tuple[float, dict[str, str]]:
    """Our engine, text to links: seconds and dump_file -> duplicate_of."""
    with tempfile.TemporaryDirectory() as tmp:
        # Creating the lake is set-up, not the engine's work: a warehouse has one already.
        con = open_lake(Home.at(tmp))
        try:
            start = time.perf_counter()
            history = signatures([d.body for d in labelled.history])
            index_night(con, "h", [d.article_id for d in labelled.history], history)
            night = signatures([d.body for d in labelled.night])
            matches = nearindex.history_matches(con, night, THRESHOLD)
            _kept, links = near_links(_candidates(labelled), night, matches, THRESHOLD)
            seconds = time.perf_counter() - start
        finally:
            con.close()
    return seconds, {link.dump_file: link.duplicate_of for link in links}


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


def synthesise_history(
    root: Path, articles: int, planted: list[str] | None = None, seed: int = 1
) -> int:
    """Commit an index of random signatures to the lake at root, one transaction per night of
    `_HISTORY_CHUNK` articles (as nightly runs would); memory stays one night. `planted` bodies
    (copies of some of the night's) go into the last night, so the lookup has real candidates
    to fetch and verify. Returns the number of transactions."""
    rng = np.random.default_rng(seed)
    planted_sigs = signatures(planted) if planted else np.empty((0, NUM_PERM), np.uint32)
    nights = 0
    con = open_lake(Home.at(root))
    try:
        for run, begin in enumerate(range(0, articles, _HISTORY_CHUNK)):
            n = min(_HISTORY_CHUNK, articles - begin)
            sigs = rng.integers(0, 2**32 - 1, size=(n, NUM_PERM), dtype=np.uint32)
            if begin + n >= articles and len(planted_sigs):
                sigs = np.concatenate([sigs, planted_sigs])
            # Random 24-hex ids, as real ones (a SHA-256 prefix): no file or row group of the
            # index holds a narrower range of ids than another, so min/max stats prune nothing.
            raw = rng.bytes(12 * len(sigs))
            ids = [raw[i : i + 12].hex() for i in range(0, len(raw), 12)]
            index_night(con, f"history-{run:05d}", ids, sigs)
            nights += 1
    finally:
        con.close()
    return nights


def night_child(
    root: str, articles: int, lookup: Callable[..., list[Match]] | None = None
) -> dict[str, float]:
    """In a fresh process: one night of the engine against the lake's index; times and RSS.

    Attaching the lake is timed apart (every night's flow attaches it once for all its work);
    the night's time is signatures, the history lookup, the links, and the commit of its own
    index rows (one transaction), as before.
    """
    bodies = night_bodies(articles)
    begin = time.perf_counter()
    con = open_lake(Home.at(root))
    con.execute("SET enable_progress_bar = false")  # stdout carries the result
    attached = time.perf_counter()
    try:
        sigs = signatures(bodies)
        signed = time.perf_counter()
        matches = (lookup or nearindex.history_matches)(con, sigs, THRESHOLD)
        looked_up = time.perf_counter()
        candidates = [
            Candidate(f"n/{i:06d}", f"new-{i:06d}", None, None, "") for i in range(articles)
        ]
        kept, _links = near_links(candidates, sigs, matches, THRESHOLD)
        rows = {c.article_id for c in kept}
        keep = [i for i, c in enumerate(candidates) if c.article_id in rows]
        linked = time.perf_counter()
        index_night(con, TONIGHT, [candidates[i].article_id for i in keep], sigs[keep])
        end = time.perf_counter()
    finally:
        con.close()
    return {
        "seconds": round(end - attached, 3),
        "attach_s": round(attached - begin, 3),
        "signatures_s": round(signed - attached, 3),
        "lookup_s": round(looked_up - signed, 3),
        "links_s": round(linked - looked_up, 3),
        "commit_s": round(end - linked, 3),
        "peak_rss_mb": _vm_hwm_mb(),
        "matches": len(matches),
    }


def remove_run(root: Path, run_id: str) -> None:
    """Delete a night's index rows (one transaction), so the next measured night starts alike."""
    con = open_lake(Home.at(root))
    try:
        con.execute("BEGIN")
        for table in (nearindex.BANDS_TABLE, nearindex.SIGNATURES_TABLE):
            con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
        con.execute("COMMIT")
    finally:
        con.close()


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


def _run_child(folder: Path, articles: int, function: str = "night_child") -> dict[str, Any]:
    code = (
        f"import json,sys; from bench.neardup_speed import {function}; "
        f"print(json.dumps({function}({str(folder)!r}, {articles})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{function} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def incremental(
    night: int,
    history: int,
    repeat: int = 3,
    planted_share: float = 0.01,
    after_compact: bool = True,
    profile: bool = True,
) -> dict[str, object]:
    """The same night against an empty index and a synthesised one of `history` articles, in
    `history / _HISTORY_CHUNK` transactions; then, optionally, again once `compact` has merged
    the history's files. `planted_share` of the night's bodies are in the history too."""
    with tempfile.TemporaryDirectory() as tmp:
        empty, full = Path(tmp) / "empty", Path(tmp) / "full"
        open_lake(Home.at(empty)).close()
        step = max(1, round(1 / planted_share)) if planted_share > 0 else 0
        planted = night_bodies(night)[::step] if step else []
        start = time.perf_counter()
        nights = synthesise_history(full, history, planted)
        built = time.perf_counter() - start
        _run_child(empty, 100)  # warm the page cache with the corpus and the imports
        out: dict[str, object] = {
            "history": history,
            "history_nights": nights,
            "planted": len(planted),
            "night": night,
            "history_built_seconds": round(built, 1),
            "index_files": _index_files(full),
            **_alternate(empty, full, night, repeat),
        }
        if profile:
            remove_run(full, TONIGHT)
            out["lookup_profile"] = _run_child(full, night, "lookup_profile")
            remove_run(full, TONIGHT)
            con = open_lake(Home.at(full))
            con.execute("SET enable_progress_bar = false")
            try:
                start = time.perf_counter()
                compacted = compact(con, retention_days=0)
                seconds = time.perf_counter() - start
            finally:
                con.close()
            out["after_compact"] = {
                "compact_seconds": round(seconds, 1),
                "compacted": {
                    "files_before": compacted.files_before,
                    "files_after": compacted.files_after,
                    "snapshots_expired": compacted.snapshots_expired,
                    "files_deleted": compacted.files_deleted,
                },
                "index_files": _index_files(full),
                **_alternate(empty, full, night, repeat),
            }
            if profile:
                remove_run(full, TONIGHT)
                after = out["after_compact"]
                assert isinstance(after, dict)
                after["lookup_profile"] = _run_child(full, night, "lookup_profile")
    return out


def _alternate(empty: Path, full: Path, night: int, repeat: int) -> dict[str, object]:
    """Alternating, best of `repeat`: the machine's other load hits both sides alike."""
    colds, warms = [], []
    for _ in range(repeat):
        remove_run(empty, TONIGHT)
        remove_run(full, TONIGHT)
        colds.append(_run_child(empty, night))
        warms.append(_run_child(full, night))
    cold = min(colds, key=lambda r: r["seconds"])
    warm = min(warms, key=lambda r: r["seconds"])
    return {
        "empty_index": cold,
        "full_index": warm,
        "all_seconds": {
            "empty": [r["seconds"] for r in colds],
            "full": [r["seconds"] for r in warms],
        },
        "ratio": round(warm["seconds"] / cold["seconds"], 3),
    }


def lookup_profile(root: str, articles: int, repeat: int = 3) -> dict[str, Any]:
    """In a fresh process: where a night's history lookup spends its time (best of `repeat`).

    `bands`: the semi-join of the night's band keys with `minhash_bands` alone; `signatures`:
    fetching the candidates' signatures alone; `current`: `nearindex.history_matches`, both.
    """
    sigs = signatures(night_bodies(articles))
    con = connect(Home.at(root))
    con.execute("SET enable_progress_bar = false")  # stdout carries the result
    out: dict[str, Any] = {}
    try:
        present = np.flatnonzero(has_shingles(sigs))
        keys = band_keys(sigs[present])
        con.register(
            "night_keys",
            pa.table(
                {
                    "key": pa.array(keys.reshape(-1), pa.uint64()),
                    "night_row": pa.array(np.repeat(present, BANDS), pa.int64()),
                }
            ),
        )
        bands_sql = (
            f"SELECT DISTINCT n.night_row, b.article_id FROM {nearindex.BANDS_TABLE} b "
            "JOIN night_keys n USING (key) WHERE b.key IN (SELECT key FROM night_keys)"
        )
        out["bands_s"], hits = _best(repeat, lambda: con.execute(bands_sql).fetchall())
        con.unregister("night_keys")
        out["candidate_pairs"] = len(hits)
        ids = sorted({h[1] for h in hits})
        out["candidate_articles"] = len(ids)
        con.register("candidate_ids", pa.table({"article_id": pa.array(ids, pa.string())}))
        fetch_sql = (
            f"SELECT article_id, signature FROM {nearindex.SIGNATURES_TABLE} "
            "WHERE article_id IN (SELECT article_id FROM candidate_ids)"
        )
        out["signatures_s"], _ = _best(repeat, lambda: con.execute(fetch_sql).fetchall())
        con.unregister("candidate_ids")
        out["current_s"], current = _best(
            repeat, lambda: nearindex.history_matches(con, sigs, THRESHOLD)
        )
        out["peak_rss_mb"] = _vm_hwm_mb()
        out["matches"] = len(current)
    finally:
        con.close()
    return out


def _best(repeat: int, call: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - start)
    return round(best, 3), result


def _index_files(root: Path) -> dict[str, int]:
    con = open_lake(Home.at(root))
    try:
        return {
            table: data_files(con, table)
            for table in (nearindex.BANDS_TABLE, nearindex.SIGNATURES_TABLE)
        }
    finally:
        con.close()


def main(argv: list[str] | None = None) -> int:
    """Command line: the side-by-side comparison, then the incremental-cost measurement."""
    parser = argparse.ArgumentParser(prog="python -m bench.neardup_speed", description=__doc__)
    parser.add_argument("--night", type=int, default=10_000)
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--skip-incremental", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--planted",
        type=float,
        default=0.01,
        help="share of the night's bodies also in the history (real candidates to verify)",
    )
    parser.add_argument("--no-compact", action="store_true", help="skip the run after compact")
    parser.add_argument(
        "--no-profile", action="store_true", help="skip timing the lookup's two steps apart"
    )
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
        result = incremental(
            args.night,
            args.history,
            args.repeat,
            args.planted,
            not args.no_compact,
            not args.no_profile,
        )
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
