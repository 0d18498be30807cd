"""MinHash signatures, their similarity estimate, and the near-duplicate decision."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.dedupe import Candidate, Link
from transforms.minhash import (
    NUM_PERM,
    THRESHOLD,
    band_keys,
    candidate_pairs,
    estimated_similarity,
    shingles,
    signatures,
)
from transforms.neardup import Match, dedupe_near, near_links

_WORDS = [f"w{i}" for i in range(5000)]
PINNED = [341420414, 446883555, 3095630, 812072400]


def _text(seed: int, n: int = 300) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(_WORDS) for _ in range(n))


def _jaccard(a: str, b: str) -> float:
    x, y = set(shingles(a).tolist()), set(shingles(b).tolist())
    return len(x & y) / len(x | y)


def _candidate(i: int, hours: int = 0) -> Candidate:
    at = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=hours)
    return Candidate(f"n/{i:03d}.txt", f"id{i:03d}", at, None, f"fp{i}")


def test_signatures_are_deterministic_and_batch_independent() -> None:
    texts = [_text(i) for i in range(5)]
    together = signatures(texts)
    assert together.shape == (5, NUM_PERM) and together.dtype == np.uint32
    assert np.array_equal(together, signatures(texts))
    assert np.array_equal(together[3], signatures([texts[3]])[0])
    assert np.array_equal(signatures(texts[::-1])[::-1], together)


def test_signature_values_are_stable_across_processes() -> None:
    # Pinned values: a change means every stored signature in an index is stale.
    sig = signatures(["LONDON, May 1 (Xinhua) -- The quick brown fox jumps."])[0]
    assert sig[:4].tolist() == PINNED


def test_normalisation_folds_case_punctuation_and_spacing() -> None:
    a = signatures(["The Quick,  brown fox -- jumped!"])[0]
    b = signatures(["the quick brown\n\nfox jumped"])[0]
    assert np.array_equal(a, b)


def test_estimate_is_close_to_true_jaccard() -> None:
    rng = random.Random(7)
    errors = []
    for seed in range(40):
        base = _text(seed).split()
        keep = rng.randint(150, 300)
        other = " ".join(base[:keep] + _text(seed + 1000, 300 - keep).split())
        truth = _jaccard(" ".join(base), other)
        sigs = signatures([" ".join(base), other])
        errors.append(estimated_similarity(sigs[0], sigs[1]) - truth)
    # standard error of one estimate is at most 0.5 / sqrt(128) = 0.044
    assert abs(float(np.mean(errors))) < 0.02
    assert float(np.sqrt(np.mean(np.square(errors)))) < 0.06


def test_chinese_text_uses_character_shingles() -> None:
    text = "新华社巴黎12月9日电（记者唐霁）法国总统马克龙九日表示，政府将推出新的经济措施。"
    assert shingles(text).size > 10
    edited = text.replace("九日", "十日")
    sigs = signatures([text, edited])
    assert 0.5 < estimated_similarity(sigs[0], sigs[1]) < 1.0


def test_candidate_pairs_share_a_band() -> None:
    texts = [_text(1), _text(1) + " extra words here", _text(2)]
    pairs = candidate_pairs(band_keys(signatures(texts)))
    assert pairs.tolist() == [[0, 1]]


def test_hard_negative_same_template_stays_apart() -> None:
    lead = "LONDON, May 1 (Xinhua) -- British Prime Minister Tony Blair said on Tuesday that "
    a, b = lead + _text(11, 250), lead + _text(12, 250)
    kept, links = near_links([_candidate(0), _candidate(1, 1)], signatures([a, b]), [])
    assert links == [] and len(kept) == 2


def test_copy_links_to_earliest_and_history_wins() -> None:
    story = _text(3)
    update = story + " UPDATE with a new closing paragraph of some words"
    sigs = signatures([update, story])
    kept, links = near_links([_candidate(0, 5), _candidate(1, 1)], sigs, [])
    assert [c.article_id for c in kept] == ["id001"]
    assert links[0].duplicate_of == "id001" and links[0].kind == "near"
    history = [Match(1, "old", 0.9), Match(0, "old", 0.85)]
    kept, links = near_links([_candidate(0, 5), _candidate(1, 1)], sigs, history)
    assert kept == [] and {link.duplicate_of for link in links} == {"old"}


def test_chaining_links_only_to_a_similar_kept_article() -> None:
    words = _text(4, 500).split()
    a = " ".join(words[:300])
    b = " ".join(words[100:400])  # J(a, b) = 0.5
    c = " ".join(words[200:500])  # J(b, c) = 0.5, J(a, c) = 0.2
    sigs = signatures([a, b, c])
    assert estimated_similarity(sigs[0], sigs[2]) < THRESHOLD
    assert estimated_similarity(sigs[1], sigs[2]) >= THRESHOLD
    kept, links = near_links([_candidate(0, 0), _candidate(1, 1), _candidate(2, 2)], sigs, [])
    assert {c.article_id for c in kept} == {"id000", "id002"}
    assert links == [Link("n/001.txt", "id000", "near", links[0].similarity)]


def test_copies_of_a_near_duplicate_follow_it_to_the_kept_article() -> None:
    story = _text(5)
    sigs = signatures([story + " updated"])
    exact = Link("n/009.txt", "id000", "exact", 1.0)
    kept, links = dedupe_near([_candidate(0)], [exact], sigs, [Match(0, "old", 0.9)])
    assert kept == []
    assert Link("n/009.txt", "old", "near", 0.9) in links


@settings(max_examples=25, deadline=None)
@given(st.permutations(list(range(8))), st.lists(st.integers(0, 3), min_size=8, max_size=8))
def test_near_decision_is_order_independent(order: list[int], hours: list[int]) -> None:
    base = _text(6).split()
    texts = [" ".join(base[: 200 + 10 * i]) for i in range(4)] + [_text(20 + i) for i in range(4)]
    candidates = [_candidate(i, hours[i]) for i in range(8)]
    sigs = signatures(texts)
    history = [Match(4, "old", 0.95)]
    expected = near_links(candidates, sigs, history)
    shuffled = [candidates[i] for i in order]
    remapped = [Match(order.index(4), "old", 0.95)]
    kept, links = near_links(shuffled, sigs[order], remapped)
    assert sorted(kept, key=lambda c: c.dump_file) == sorted(expected[0], key=lambda c: c.dump_file)
    assert sorted(links, key=lambda x: x.dump_file) == sorted(
        expected[1], key=lambda x: x.dump_file
    )
