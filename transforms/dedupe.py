"""Which of the night's valid articles are new stories and which are copies, and of what."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

# When several kinds apply, the first in this order names the duplicate.
KINDS = ("same_file", "same_page", "exact", "near")


@dataclass(frozen=True, slots=True)
class Candidate:
    """The identity of one valid article, as dedupe needs it."""

    dump_file: str
    article_id: str
    published_at: datetime | None
    page_code: str | None
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Link:
    """One copy that is not kept: what it copies and how it was recognised."""

    dump_file: str
    duplicate_of: str
    kind: str
    similarity: float


@dataclass(frozen=True, slots=True)
class History:
    """What the warehouse already holds, for the night's keys: key -> kept article_id."""

    by_page_code: Mapping[str, str]
    by_fingerprint: Mapping[str, str]


def night_order(candidate: Candidate) -> tuple[bool, datetime | str, str]:
    """Kept-copy precedence within a night: earliest published_at, then path order."""
    published = candidate.published_at
    return (published is None, published if published is not None else "", candidate.dump_file)


def dedupe(candidates: Iterable[Candidate], history: History) -> tuple[list[Candidate], list[Link]]:
    """Split a night's articles into kept ones and links; history wins over the night."""
    kept: list[Candidate] = []
    links: list[Link] = []
    page_codes: dict[str, str] = {}
    fingerprints: dict[str, str] = {}
    for candidate in sorted(candidates, key=night_order):
        link = _link_of(candidate, history, page_codes, fingerprints)
        if link is not None:
            links.append(link)
            continue
        kept.append(candidate)
        if candidate.page_code:
            page_codes[candidate.page_code] = candidate.article_id
        fingerprints[candidate.fingerprint] = candidate.article_id
    return kept, links


def _link_of(
    candidate: Candidate,
    history: History,
    page_codes: Mapping[str, str],
    fingerprints: Mapping[str, str],
) -> Link | None:
    code = candidate.page_code
    if code:
        target = history.by_page_code.get(code) or page_codes.get(code)
        if target is not None:
            return Link(candidate.dump_file, target, "same_page", 1.0)
    target = history.by_fingerprint.get(candidate.fingerprint) or fingerprints.get(
        candidate.fingerprint
    )
    if target is not None:
        return Link(candidate.dump_file, target, "exact", 1.0)
    return None
