"""Near duplicates: which of the night's kept articles re-publish a story with small edits.

Runs after transforms.dedupe (same_file, same_page and exact are recognised first; `near` is the
last kind) on the articles it kept, with their MinHash signatures (transforms.minhash) and the
history articles the on-disk index found near them.

The rule, deterministic and independent of arrival order:
- articles are visited in the night's kept-copy order (dedupe.night_order: earliest
  published_at, then the first dump_file in path order);
- an article near (estimated Jaccard >= threshold) a history article links to it: history wins;
- otherwise it links to the most similar article already kept tonight that it is near to;
- otherwise it is kept, and later articles may link to it.
Ties go to the history article with the smallest article_id, or the earliest kept one in night
order. A duplicate always links to a kept article, never to another duplicate, so there is no
chaining drift: with A ~ B, B ~ C and A !~ C, B links to A and C is kept (C only becomes a copy
of A if it is near A itself).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from transforms.dedupe import Candidate, Link, night_order
from transforms.minhash import (
    THRESHOLD,
    U32,
    band_keys,
    candidate_pairs,
    has_shingles,
    pair_similarities,
)


@dataclass(frozen=True, slots=True)
class Match:
    """A history article near one of the night's articles (by its index in the night's list)."""

    night: int
    article_id: str
    similarity: float


def near_links(
    candidates: Sequence[Candidate],
    signatures: U32,
    history: Iterable[Match],
    threshold: float = THRESHOLD,
) -> tuple[list[Candidate], list[Link]]:
    """Split articles (dedupe's kept ones; signatures row-aligned) into kept ones and near links."""
    best_history = _best_history(history, threshold)
    neighbours = _night_neighbours(signatures, threshold)
    order = sorted(range(len(candidates)), key=lambda i: night_order(candidates[i]))
    rank = {index: position for position, index in enumerate(order)}
    kept: list[Candidate] = []
    kept_index: set[int] = set()
    links: list[Link] = []
    for i in order:
        candidate = candidates[i]
        if i in best_history:
            article_id, similarity = best_history[i]
            links.append(Link(candidate.dump_file, article_id, "near", similarity))
            continue
        near = [(-s, rank[j], j) for j, s in neighbours.get(i, ()) if j in kept_index]
        if near:
            similarity, _rank, j = min(near)
            links.append(Link(candidate.dump_file, candidates[j].article_id, "near", -similarity))
            continue
        kept.append(candidate)
        kept_index.add(i)
    return kept, links


def dedupe_near(
    kept: Sequence[Candidate],
    links: Sequence[Link],
    signatures: U32,
    history: Iterable[Match],
    threshold: float = THRESHOLD,
) -> tuple[list[Candidate], list[Link]]:
    """Add near links to dedupe()'s result; copies of an article that became near follow it."""
    still_kept, near = near_links(kept, signatures, history, threshold)
    near_of = {link.dump_file: link for link in near}
    moved = {c.article_id: near_of[c.dump_file] for c in kept if c.dump_file in near_of}
    repointed: list[Link] = []
    for link in links:
        target = moved.get(link.duplicate_of)
        if target is None:
            repointed.append(link)
        else:
            # A copy of an article that is itself a near copy: it points at the kept article
            # too (a duplicate always names a row of `articles`), as a near copy of it.
            repointed.append(Link(link.dump_file, target.duplicate_of, "near", target.similarity))
    return still_kept, repointed + near


def near_involved(
    signatures: U32, history: Iterable[Match], threshold: float = THRESHOLD
) -> npt.NDArray[np.intp]:
    """The articles `near_links` has anything to decide for, in order: those near a history
    article or another of the night's; every other one is kept as it stands."""
    rows = set(_best_history(history, threshold)) | set(_night_neighbours(signatures, threshold))
    return np.array(sorted(rows), dtype=np.intp)


def _best_history(history: Iterable[Match], threshold: float) -> dict[int, tuple[str, float]]:
    """For each night article, its most similar history article at or above the threshold."""
    best: dict[int, tuple[str, float]] = {}
    for match in history:
        if match.similarity < threshold:
            continue
        current = best.get(match.night)
        key = (-match.similarity, match.article_id)
        if current is None or key < (-current[1], current[0]):
            best[match.night] = (match.article_id, match.similarity)
    return best


def _night_neighbours(signatures: U32, threshold: float) -> dict[int, list[tuple[int, float]]]:
    """Pairs of the night's articles near each other: LSH candidates, verified by signature."""
    rows = np.flatnonzero(has_shingles(signatures))
    if rows.size < 2:
        return {}
    pairs = rows[candidate_pairs(band_keys(signatures[rows]))]
    sims = pair_similarities(signatures[pairs[:, 0]], signatures[pairs[:, 1]])
    neighbours: defaultdict[int, list[tuple[int, float]]] = defaultdict(list)
    for (a, b), s in zip(pairs.tolist(), sims.tolist(), strict=True):
        if s >= threshold:
            neighbours[a].append((b, s))
            neighbours[b].append((a, s))
    return dict(neighbours)
