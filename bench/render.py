"""Render BBC stories as Xinhua page dumps in the seed's exact layout: the benchmark's inbox.

Every dump is laid out like `dumps/seed/000_c903989559a3121d.txt`: title, NBSP-indented meta
line, optional photo caption, dateline-led body, page chrome, the print copy, and the 42-digit
page code with no newline after it. Deterministic for a given seed.

What a night rendered here holds, so that a benchmark can check the ingest's counts:
- originals: one page per story; past 2,225 the corpus is cycled, and each later pass shuffles
  the words of every paragraph (seeded by story and pass) and numbers the title, so that every
  story is distinct to the near-duplicate stage too (a numbered title and an appended sentence
  alone make a `near` copy, rightly);
- exact copies: the BBC corpus has 98 byte-identical pairs; both render to the same story (same
  title, time, dateline and body) on two different pages: `exact` duplicates;
- re-scrapes (`--rescrape-share`): an earlier page captured again, same page code and story, with
  another editor or one word edited: `same_page` duplicates.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import sys
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# The seed's meta-line indent, byte for byte: NBSPs mixed with spaces.
META_INDENT = "\u00a0\u00a0 " * 5 + "\u00a0 "
# The seed's page code is this prefix (…0111: an article page) + a 14-digit page id.
PAGE_CODE_PREFIX = "0100200707500000000000000111"
FOOTER = "Back to Top Close\nXinhuanet"
FOLDER_SIZE = 1000
# Beijing time, 2004-01-01 00:00:00 up to the end of 2005, like the BBC stories themselves.
_EPOCH = datetime(2004, 1, 1)
_SPAN_SECONDS = 731 * 24 * 3600
# Xinhua numbers its article pages c_<9 digits>; ids are spaced so each serial owns a slot.
_PAGE_BASE = 110_000_000
_PAGE_SLOT = 41
_CAPTION_SHARE = 30  # percent of stories with a photo caption
_MONTHS = (
    "Jan.",
    "Feb.",
    "March",
    "April",
    "May",
    "June",
    "July",
    "Aug.",
    "Sept.",
    "Oct.",
    "Nov.",
    "Dec.",
)
_LONG_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
# Dateline places and their UTC offsets in hours: the dateline's day is the place's own.
_CITIES = (
    ("LONDON", 0),
    ("LONDON", 0),
    ("LONDON", 0),
    ("MANCHESTER", 0),
    ("EDINBURGH", 0),
    ("WASHINGTON", -5),
    ("NEW YORK", -5),
    ("UNITED NATIONS", -5),
    ("LOS ANGELES", -8),
    ("BRUSSELS", 1),
    ("PARIS", 1),
    ("BERLIN", 1),
    ("GENEVA", 1),
    ("MOSCOW", 3),
    ("NAIROBI", 3),
    ("CAIRO", 2),
    ("NEW DELHI", 5),
    ("TOKYO", 9),
    ("SYDNEY", 10),
    ("BEIJING", 8),
)
_EDITORS = (
    "huaxia",
    "huaxia",
    "xuxin",
    "Liangyu",
    "Shi Yinglun",
    "Mu Xuequan",
    "Yurou",
    "Zhang Dongmiao",
    "Xiang Bo",
    "Lu Hui",
)
_PHOTOGRAPHERS = (
    "Marcos Salgado",
    "Han Yan",
    "Tim Ireland",
    "Zhang Ping",
    "Wang Ying",
    "Li Muzi",
    "Xu Jinquan",
    "Isabel Infantes",
    "Ray Tang",
    "Stephen Chung",
)
_EDITABLE_WORD = re.compile(r"\b[a-z]{6,}\b")


@dataclass(frozen=True, slots=True)
class Story:
    """One BBC article: its title, paragraphs, and the hash of its file's bytes."""

    title: str
    paragraphs: tuple[str, ...]
    key: str
    source: str  # path under bbc/, for tracing


@dataclass(frozen=True, slots=True)
class Page:
    """One Xinhua page as published: everything a dump of it shows."""

    title: str
    beijing_time: datetime
    caption: str | None
    paragraphs: tuple[str, ...]
    page_code: str
    editor: str


@dataclass(slots=True)
class RenderSummary:
    """What was rendered, and the duplicate counts an ingest of it should report."""

    dumps: int = 0
    originals: int = 0
    exact_copies: int = 0  # same story as an earlier original, on another page
    rescrapes: int = 0  # same page code as an earlier original
    corpus_stories: int = 0
    cycles: int = 0
    bytes: int = 0
    seconds: float = 0.0
    out: str = ""

    def expected_counts(self) -> dict[str, object]:
        """The ingest's counts if every dump parses and validates."""
        return {
            "articles": self.originals - self.exact_copies,
            "duplicates": self.rescrapes + self.exact_copies,
            "quarantined": 0,
            "files": self.dumps,
            "duplicates_by_kind": {
                k: v for k, v in (("exact", self.exact_copies), ("same_page", self.rescrapes)) if v
            },
        }


def shared_dir() -> Path:
    """The shared folder holding dumps/: $WIREHOUSE_SHARED, else <repo>/../shared."""
    return Path(os.environ.get("WIREHOUSE_SHARED") or REPO.parent / "shared")


def decode_text(data: bytes) -> str:
    """A BBC file's text: UTF-8, falling back to Latin-1 (one file has a Latin-1 byte)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def story_of(data: bytes, source: str) -> Story | None:
    """A story from a BBC file's bytes (title line, then paragraphs), or None if empty."""
    lines = [line.strip() for line in decode_text(data).replace("\r\n", "\n").split("\n")]
    lines = [line for line in lines if line]
    if len(lines) < 2:
        return None
    key = hashlib.sha256(data).hexdigest()
    return Story(lines[0], tuple(lines[1:]), key, source)


def load_corpus(shared: Path, seed: int) -> list[Story]:
    """The BBC stories, in an order shuffled by the seed."""
    bbc = shared / "dumps" / "bbc"
    stories = [
        story
        for path in sorted(bbc.glob("*/*.txt"))
        if (story := story_of(path.read_bytes(), path.relative_to(bbc).as_posix())) is not None
    ]
    if not stories:
        raise SystemExit(f"no BBC stories under {bbc} (set WIREHOUSE_SHARED)")
    return sorted(stories, key=lambda s: _h(seed, "order", s.source))


def page_code_of(serial: int, seed: int) -> str:
    """A 42-digit page code unique to the page first rendered at this serial."""
    number = _PAGE_BASE + serial * _PAGE_SLOT + _h(seed, "page", serial) % _PAGE_SLOT
    return f"{PAGE_CODE_PREFIX}{number:013d}1"


def page_of(story: Story, cycle: int, serial: int, seed: int) -> Page:
    """The page of one story in one pass over the corpus; story fields depend on its bytes only."""
    h = _h(seed, "story", story.key, cycle)
    beijing = _EPOCH + timedelta(seconds=h % _SPAN_SECONDS)
    city, offset = _CITIES[(h >> 32) % len(_CITIES)]
    local = beijing - timedelta(hours=8 - offset)
    lead = f"{city}, {_MONTHS[local.month - 1]} {local.day} (Xinhua) -- "
    title, paragraphs = story.title, list(story.paragraphs)
    if cycle:
        title = f"{title} ({cycle + 1})"
        shuffle = random.Random(h)
        paragraphs = [" ".join(shuffle.sample(p.split(), len(p.split()))) for p in paragraphs]
    paragraphs[0] = lead + paragraphs[0]
    caption = None
    if (h >> 40) % 100 < _CAPTION_SHARE:
        photographer = _PHOTOGRAPHERS[(h >> 48) % len(_PHOTOGRAPHERS)]
        day = f"{_LONG_MONTHS[local.month - 1]} {local.day}, {local.year}"
        caption = (
            f"Photo taken on {day} shows a scene of the story: {story.title} "
            f"(Xinhua/{photographer})"
        )
    editor = _EDITORS[_h(seed, "editor", serial) % len(_EDITORS)]
    return Page(title, beijing, caption, tuple(paragraphs), page_code_of(serial, seed), editor)


def rescrape_of(page: Page, times: int, serial: int, seed: int) -> Page:
    """The same page captured again: another editor, or one word of the last paragraph edited."""
    if _h(seed, "variant", serial) % 2 == 0:
        edited = _edit_word(page.paragraphs[-1], times)
        if edited is not None:
            return replace(page, paragraphs=(*page.paragraphs[:-1], edited))
    others = [e for e in dict.fromkeys(_EDITORS) if e != page.editor]
    return replace(page, editor=others[(_EDITORS.index(page.editor) + times) % len(others)])


def render_dump(page: Page) -> str:
    """A dump's text in the seed's layout: web copy, chrome, print copy, page code (no newline)."""
    stamp = page.beijing_time.strftime("%Y-%m-%d %H:%M:%S")
    caption = [page.caption] if page.caption else []
    text = "\n\n".join([*caption, *page.paragraphs])
    return (
        f"{page.title}\n{META_INDENT}Source: Xinhua | {stamp} | Editor: {page.editor}\n\n"
        f"{text}\n\n{FOOTER}\n\n"
        f"{page.title}\n\nSource: Xinhua {stamp}\n\n{text}\n\n{page.page_code}"
    )


def dump_path(serial: int, seed: int) -> str:
    """Where a dump goes, relative to the inbox: folders of 1,000, `NNNNNN_<16 hex>.txt`."""
    digest = hashlib.blake2b(f"{seed}:file:{serial}".encode(), digest_size=8).hexdigest()
    return f"{serial // FOLDER_SIZE:03d}/{serial:06d}_{digest}.txt"


def render_inbox(
    out: Path, n: int, seed: int = 0, rescrape_share: float = 0.1, shared: Path | None = None
) -> RenderSummary:
    """Write n dumps under out; returns what was written and what an ingest should count."""
    if not 0 <= rescrape_share < 1:
        raise ValueError("rescrape_share must be in [0, 1)")
    start = time.perf_counter()
    corpus = load_corpus(shared or shared_dir(), seed)
    rng = random.Random(f"wirehouse-bench:{seed}")
    rescrape_serials = set(rng.sample(range(1, n), round(n * rescrape_share))) if n > 1 else set()
    summary = RenderSummary(out=str(out), corpus_stories=len(corpus))
    originals: list[Page] = []  # re-scrape candidates: pages whose story was new
    rescraped: dict[str, int] = {}
    stories_seen: set[tuple[str, int]] = set()
    made: set[str] = set()
    for serial in range(n):
        if serial in rescrape_serials and originals:
            first = originals[rng.randrange(len(originals))]
            times = rescraped.get(first.page_code, 0)
            rescraped[first.page_code] = times + 1
            page = rescrape_of(first, times, serial, seed)
            summary.rescrapes += 1
        else:
            story = corpus[summary.originals % len(corpus)]
            cycle = summary.originals // len(corpus)
            page = page_of(story, cycle, serial, seed)
            summary.originals += 1
            summary.cycles = cycle + 1
            if (story.key, cycle) in stories_seen:
                summary.exact_copies += 1
            else:
                stories_seen.add((story.key, cycle))
                originals.append(page)
        data = render_dump(page).encode("utf-8")
        summary.bytes += len(data)
        summary.dumps += 1
        _write(out, dump_path(serial, seed), data, made)
    summary.seconds = round(time.perf_counter() - start, 3)
    return summary


def _write(out: Path, relative: str, data: bytes, made: set[str]) -> None:
    """Plain file write; each folder is created once."""
    folder, _, _name = relative.rpartition("/")
    if folder not in made:
        (out / folder).mkdir(parents=True, exist_ok=True)
        made.add(folder)
    with open(out / relative, "wb") as handle:
        handle.write(data)


def _edit_word(paragraph: str, times: int) -> str | None:
    """The paragraph with one longer word's middle letters swapped (a typo fixed or made)."""
    words = list(_EDITABLE_WORD.finditer(paragraph))
    if not words:
        return None
    word = words[(len(words) - 1 - times) % len(words)]
    w = word.group()
    mid = len(w) // 2
    edited = w[: mid - 1] + w[mid] + w[mid - 1] + w[mid + 1 :]
    if edited == w:
        return None
    return paragraph[: word.start()] + edited + paragraph[word.end() :]


def _h(*parts: object) -> int:
    """A stable 64-bit hash of the parts (independent of PYTHONHASHSEED)."""
    text = "\x1f".join(map(str, parts)).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def main(argv: list[str] | None = None) -> int:
    """Command line: render N dumps into a folder and print a JSON summary."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.render",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, required=True, help="the inbox folder to fill")
    parser.add_argument("-n", type=int, required=True, help="how many dumps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--rescrape-share",
        type=float,
        default=0.1,
        help="share of dumps that re-scrape an earlier page (default 0.1)",
    )
    args = parser.parse_args(argv)
    summary = render_inbox(args.out, args.n, args.seed, args.rescrape_share)
    report = {**asdict(summary), "expected_counts": summary.expected_counts()}
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
