"""Evaluate the generic parser on the annotated web pages: token F1 of body and title."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from transforms.layouts.generic import parse_generic  # noqa: E402
from transforms.records import Article  # noqa: E402

BASELINE = REPO / "tests" / "baselines" / "generic_extraction.json"
_TOKEN = re.compile(r"\w+")


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


def evaluation_pages(dumps: Path) -> dict[str, tuple[str, dict[str, str]]]:
    """Gold pages by file name, with their text; the Xinhua-2008 ones have their own parser."""
    gold = json.loads((dumps / "web-pages.gold.json").read_text(encoding="utf-8"))
    xinhua = {p.name for p in (dumps / "xinhua-2008").glob("*.txt")}
    pages: dict[str, tuple[str, dict[str, str]]] = {}
    for name in sorted(gold):
        if name in xinhua:
            continue
        raw = (dumps / "web-pages" / name).read_bytes()
        pages[name] = (raw.decode("utf-8", errors="replace"), gold[name])
    return pages


@dataclass(frozen=True)
class PageScore:
    """How the parser did on one page."""

    body_f1: float
    title_f1: float
    reason: str | None  # the rejection reason, None for an article
    has_time: bool


def page_scores(
    pages: dict[str, tuple[str, dict[str, str]]], require_time: bool = True
) -> dict[str, PageScore]:
    """Per page: body F1, title F1, rejection reason (or None) and whether a time was found."""
    out: dict[str, PageScore] = {}
    for name, (text, gold) in pages.items():
        result = parse_generic(text, require_time=require_time)
        if isinstance(result, Article):
            out[name] = PageScore(
                token_f1(result.body, gold["body"]),
                token_f1(result.title, gold["title"]),
                None,
                result.published_at is not None,
            )
        else:
            out[name] = PageScore(0.0, 0.0, result.reason, False)
    return out


def figures(scores: dict[str, PageScore]) -> dict[str, object]:
    """The summary figures the baseline pins."""
    n = len(scores) or 1
    rejected = Counter(s.reason for s in scores.values() if s.reason)
    return {
        "pages": len(scores),
        "mean_body_f1": round(sum(s.body_f1 for s in scores.values()) / n, 3),
        "mean_title_f1": round(sum(s.title_f1 for s in scores.values()) / n, 3),
        "rejected": dict(sorted(rejected.items())),
        "share_with_published_at": round(sum(s.has_time for s in scores.values()) / n, 3),
    }


def all_pages_seconds(dumps: Path) -> tuple[float, float]:
    """Wall and CPU seconds to parse every web page (gold or not), texts already decoded."""
    texts = [
        p.read_bytes().decode("utf-8", errors="replace")
        for p in (dumps / "web-pages").glob("*.txt")
    ]
    started, cpu = time.perf_counter(), time.process_time()
    for text in texts:
        parse_generic(text)
    return time.perf_counter() - started, time.process_time() - cpu


def main() -> None:
    """Print the figures; with --write-baseline, pin them in the baseline file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write-baseline", action="store_true", help=f"write {BASELINE}")
    parser.add_argument("--worst", type=int, default=0, help="also list the N worst body F1 pages")
    args = parser.parse_args()
    dumps = shared_dir() / "dumps"
    pages = evaluation_pages(dumps)
    scores = page_scores(pages)
    summary = figures(scores)
    print(json.dumps(summary, indent=2))
    lenient = figures(page_scores(pages, require_time=False))
    print(
        f"if pages without a time were kept: body F1 {lenient['mean_body_f1']}, "
        f"title F1 {lenient['mean_title_f1']}"
    )
    wall, cpu = all_pages_seconds(dumps)
    count = len(list((dumps / "web-pages").glob("*.txt")))
    print(f"parse time, all {count} pages: {wall:.3f} s wall, {cpu:.3f} s CPU")
    for name, s in sorted(scores.items(), key=lambda kv: kv[1].body_f1)[: args.worst]:
        print(f"{s.body_f1:.2f} {s.title_f1:.2f} {s.reason or ''} {name}")
    if args.write_baseline:
        BASELINE.parent.mkdir(parents=True, exist_ok=True)
        BASELINE.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {BASELINE}")


if __name__ == "__main__":
    main()
