"""Evaluate the generic parser on the annotated web pages: body token F1, titles right, speed.

The annotated pages are split in two by sorted file name: every fifth page (the 5th, 10th, ...)
is held out, the rest is the development part. Rules are developed looking at the development
part only; the held-out figures tell whether they carry over to pages never looked at.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from transforms.layouts.generic import parse_generic  # noqa: E402
from transforms.records import Article  # noqa: E402

BASELINE = REPO / "tests" / "baselines" / "generic_extraction.json"
_TOKEN = re.compile(r"\w+")
# Every HELD_OUT_EVERY-th page by sorted name is held out from development.
HELD_OUT_EVERY = 5
# A headline is right when it is contained in the annotated one, or their token F1 reaches this.
TITLE_RIGHT_F1 = 0.8
# Timing: the best of this many passes over every page (the machine is shared and noisy).
TIMING_PASSES = 3

T = TypeVar("T")


def pin(baseline: Path, summary: dict[str, Any]) -> None:
    """Write figures as the baseline a test or a later run compares with."""
    baseline.parent.mkdir(parents=True, exist_ok=True)
    baseline.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {baseline}")


def shared_dir() -> Path:
    """The shared folder holding dumps/: $WIREHOUSE_SHARED, else <repo>/../shared."""
    return Path(os.environ.get("WIREHOUSE_SHARED") or REPO.parent / "shared")


def token_f1(predicted: str, gold: str) -> float:
    """F1 over the multisets of lowercase word tokens of two texts."""
    p, g = Counter(_TOKEN.findall(predicted.lower())), Counter(_TOKEN.findall(gold.lower()))
    common = sum((p & g).values())
    if not p and not g:
        return 1.0
    if common == 0:
        return 0.0
    precision, recall = common / sum(p.values()), common / sum(g.values())
    return 2 * precision * recall / (precision + recall)


def is_title_right(predicted: str, gold: str) -> bool:
    """The issue's rule: the headline is contained in the annotated one, or close by token F1.

    Contained word for word: the annotations lost some characters to their encoding ("hiker?s"
    for "hiker’s") and quotes, which a comparison of characters would count against the parser.
    """
    got, want = _TOKEN.findall(predicted.casefold()), _TOKEN.findall(gold.casefold())
    contained = any(want[i : i + len(got)] == got for i in range(len(want) - len(got) + 1))
    return bool(got) and (contained or token_f1(predicted, gold) >= TITLE_RIGHT_F1)


@dataclass(frozen=True)
class Page:
    """One annotated page: its text, the capture time given to the parser, and its gold."""

    text: str
    captured_at: datetime
    gold: dict[str, str]


def evaluation_pages(dumps: Path) -> dict[str, Page]:
    """Gold pages by file name, with their text; the Xinhua-2008 ones have their own parser."""
    gold = json.loads((dumps / "web-pages.gold.json").read_text(encoding="utf-8"))
    xinhua = {p.name for p in (dumps / "xinhua-2008").glob("*.txt")}
    pages: dict[str, Page] = {}
    for name in sorted(gold):
        if name in xinhua:
            continue
        path = dumps / "web-pages" / name
        raw = path.read_bytes()
        captured = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        pages[name] = Page(raw.decode("utf-8", errors="replace"), captured, gold[name])
    return pages


def split(pages: dict[str, T]) -> dict[str, dict[str, T]]:
    """The pages as development and held-out parts (every fifth by sorted name held out)."""
    names = sorted(pages)
    held = {n for i, n in enumerate(names) if i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1}
    return {
        "dev": {n: pages[n] for n in names if n not in held},
        "held_out": {n: pages[n] for n in names if n in held},
        "all": pages,
    }


@dataclass(frozen=True)
class PageScore:
    """How the parser did on one page."""

    body_f1: float
    title_f1: float
    title_right: bool
    reason: str | None  # the rejection reason, None for an article
    time_source: str | None  # published_at_source of an article


def page_scores(pages: dict[str, Page]) -> dict[str, PageScore]:
    """Per page: body and title F1, title right, rejection reason or where its time came from."""
    out: dict[str, PageScore] = {}
    for name, page in pages.items():
        result = parse_generic(page.text, captured_at=page.captured_at)
        if isinstance(result, Article):
            out[name] = PageScore(
                token_f1(result.body, page.gold["body"]),
                token_f1(result.title, page.gold["title"]),
                is_title_right(result.title, page.gold["title"]),
                None,
                result.published_at_source,
            )
        else:
            out[name] = PageScore(0.0, 0.0, False, result.reason, None)
    return out


def figures(scores: dict[str, PageScore]) -> dict[str, object]:
    """The summary figures the baseline pins (a page not loaded counts 0)."""
    n = len(scores) or 1
    rejected = Counter(s.reason for s in scores.values() if s.reason)
    sources = Counter(s.time_source for s in scores.values() if s.time_source)
    return {
        "pages": len(scores),
        "mean_body_f1": round(sum(s.body_f1 for s in scores.values()) / n, 3),
        "mean_title_f1": round(sum(s.title_f1 for s in scores.values()) / n, 3),
        "titles_right": round(sum(s.title_right for s in scores.values()) / n, 3),
        "rejected": dict(sorted(rejected.items())),
        "published_at_source": dict(sorted(sources.items())),
    }


def all_figures(pages: dict[str, Page]) -> dict[str, dict[str, object]]:
    """Figures of the development part, the held-out part and all pages."""
    scores = page_scores(pages)
    return {part: figures({n: scores[n] for n in chosen}) for part, chosen in split(pages).items()}


def parse_seconds_per_dump(dumps: Path) -> float:
    """CPU seconds per dump to parse every web page (gold or not), texts already decoded: the
    best of a few passes."""
    paths = sorted((dumps / "web-pages").glob("*.txt"))
    texts = [p.read_bytes().decode("utf-8", errors="replace") for p in paths]
    captured = [datetime.fromtimestamp(p.stat().st_mtime, UTC) for p in paths]
    best = float("inf")
    for _ in range(TIMING_PASSES):
        cpu = time.process_time()
        for text, at in zip(texts, captured, strict=True):
            parse_generic(text, captured_at=at)
        best = min(best, time.process_time() - cpu)
    return best / max(1, len(texts))


def main() -> None:
    """Print the figures; with --write-baseline, pin them in the baseline file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write-baseline", action="store_true", help=f"write {BASELINE}")
    parser.add_argument(
        "--worst", type=int, default=0, help="also list the N worst body F1 development pages"
    )
    args = parser.parse_args()
    dumps = shared_dir() / "dumps"
    pages = evaluation_pages(dumps)
    summary = all_figures(pages)
    print(json.dumps(summary, indent=2))
    per_dump = parse_seconds_per_dump(dumps)
    count = len(list((dumps / "web-pages").glob("*.txt")))
    print(f"parse speed, all {count} pages: {per_dump * 1000:.3f} ms CPU per dump (best of 3)")
    dev = page_scores(split(pages)["dev"])
    for name, s in sorted(dev.items(), key=lambda kv: kv[1].body_f1)[: args.worst]:
        print(f"{s.body_f1:.2f} {s.title_f1:.2f} {s.reason or ''} {name}")
    if args.write_baseline:
        pin(BASELINE, summary)


if __name__ == "__main__":
    main()
