"""Deduplication rules: precedence, history first, order independence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.dedupe import Candidate, History, dedupe

T0 = datetime(2019, 5, 1, tzinfo=UTC)
EMPTY = History({}, {})


def cand(name: str, hours: int = 0, code: str | None = None, fp: str = "f") -> Candidate:
    """A candidate article; its id is its name."""
    return Candidate(name, f"id-{name}", T0 + timedelta(hours=hours), code, fp)


def test_earliest_publication_is_kept_then_path_order() -> None:
    kept, links = dedupe([cand("b", 0, fp="x"), cand("a", 1, fp="x"), cand("c", 0, fp="x")], EMPTY)
    assert [k.dump_file for k in kept] == ["b"]
    assert {(link.dump_file, link.duplicate_of, link.kind) for link in links} == {
        ("a", "id-b", "exact"),
        ("c", "id-b", "exact"),
    }


def test_same_page_names_the_link_before_exact() -> None:
    _kept, links = dedupe([cand("a", code="p1", fp="x"), cand("b", code="p1", fp="x")], EMPTY)
    assert [(link.dump_file, link.kind) for link in links] == [("b", "same_page")]


def test_history_wins_over_the_night() -> None:
    history = History({"p1": "old-1"}, {"x": "old-2"})
    kept, links = dedupe(
        [cand("a", code="p1", fp="y"), cand("b", fp="x"), cand("c", fp="z")], history
    )
    assert [k.dump_file for k in kept] == ["c"]
    assert {(link.dump_file, link.duplicate_of, link.kind) for link in links} == {
        ("a", "old-1", "same_page"),
        ("b", "old-2", "exact"),
    }


candidates = st.lists(
    st.builds(
        cand,
        name=st.text("abcdef", min_size=1, max_size=4),
        hours=st.integers(0, 3),
        code=st.sampled_from([None, "p1", "p2"]),
        fp=st.sampled_from(["x", "y", "z"]),
    ),
    max_size=12,
    unique_by=lambda c: c.dump_file,
)


@settings(max_examples=200, deadline=None)
@given(candidates, st.randoms())
def test_dedupe_is_order_independent(items: list[Candidate], rnd: object) -> None:
    shuffled = list(items)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert dedupe(items, EMPTY) == dedupe(shuffled, EMPTY)


@settings(max_examples=200, deadline=None)
@given(candidates)
def test_every_candidate_is_kept_or_linked_to_a_kept_one(items: list[Candidate]) -> None:
    kept, links = dedupe(items, EMPTY)
    kept_ids = {k.article_id for k in kept}
    assert len(kept) + len(links) == len(items)
    assert all(link.duplicate_of in kept_ids for link in links)
