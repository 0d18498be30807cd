"""Evaluate the generic parser on web pages in many languages, scored as trafilatura scores itself.

The pages are dumps/web-multilingual (see its README): per page, each `with` snippet found in the
body is a true positive, each missing one a false negative; each `without` snippet found is a
false positive, each missing one a true negative (whitespace-normalised, case-sensitive
substring tests). A rejected page finds nothing. The counts are summed, then precision, recall
and F1. Also: the share of pages loaded, rejection reasons, titles right (eval_generic's rule)
dates right (the same UTC day as the gold date, where the gold has one; and within a day of
it, the issue's measure), authors right (the gold's names, however joined, case and spacing
aside, where the gold names any), and the language
detected on the loaded pages whose gold names one, per language; and the language detected on
the bodies of the Xinhua dumps against the language their layout knows.

As in eval_generic, every fifth page by sorted name is held out: only its totals are printed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.eval_generic import is_title_right, pin, shared_dir, split  # noqa: E402
from transforms.language import language_of  # noqa: E402
from transforms.layouts.generic import parse_generic  # noqa: E402
from transforms.parse import parse_dump  # noqa: E402
from transforms.records import Article  # noqa: E402

BASELINE = REPO / "tests" / "baselines" / "multilingual_extraction.json"
_WHITESPACE = re.compile(r"\s+")
_UNLABELLED = "?"
# Dumps of the Xinhua layouts, whose parsers know their language (English, and Chinese).
XINHUA_DUMPS = ("xinhua-2008", "xinhua-web", "xinhua-zh")


def _norm(text: str) -> str:
    """Runs of whitespace made one space, as trafilatura's eval_common.norm does."""
    return _WHITESPACE.sub(" ", text).strip()


# Between the names of a byline as pages print them (the gold keeps them so): "; " (ours), commas
# and "and" in the evaluation's languages. Scored as names, however they are joined.
_NAME_SEPARATORS = re.compile(r";|,|&| (?:and|und|y|e|et|i|oraz|és|ja|og) ", re.I)


def _names(text: str | None) -> str:
    """Names as compared: split however they are joined, casefolded, runs of whitespace made
    one space, joined by "; "."""
    return "; ".join(_norm(n).casefold() for n in _NAME_SEPARATORS.split(text or "") if n.strip())


def gold_date(text: str) -> date | None:
    """The gold date; a loosely written one ("2022-11-1", "2022-29-11") read as meant."""
    parts = text.split("-")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    year, month, day = (int(p) for p in parts)
    if month > 12:
        month, day = day, month
    return date(year, month, day)


@dataclass(frozen=True)
class PageScore:
    """How the parser did on one page: snippet counts, title and date, rejection reason."""

    language: str
    tp: int
    fp: int
    fn: int
    tn: int
    title_right: bool | None  # None where the gold has no title
    date_right: bool | None  # None where the gold has no date
    date_near: bool | None  # within one day of the gold date; None where the gold has none
    author_right: bool | None  # None where the gold names no author
    language_right: bool | None  # None where the gold has no language or nothing was loaded
    reason: str | None  # the rejection reason, None for an article


def page_score(text: str, gold: dict[str, Any]) -> PageScore:
    """Parse one page (its capture time is unknown: the files' times are the copy's) and score
    it."""
    result = parse_generic(text)
    body = _norm(result.body) if isinstance(result, Article) else None
    withs = [_norm(s) for s in gold["with"]]
    withouts = [_norm(s) for s in gold["without"]]
    tp = sum(1 for s in withs if body is not None and s in body)
    fp = sum(1 for s in withouts if body is not None and s in body)
    title, day = str(gold.get("title") or ""), gold_date(str(gold.get("date") or ""))
    article = result if isinstance(result, Article) else None
    published = article.published_at.date() if article and article.published_at else None
    author = _names(str(gold.get("author") or ""))
    reason = None if isinstance(result, Article) else result.reason
    return PageScore(
        language=str(gold.get("language") or _UNLABELLED),
        tp=tp,
        fp=fp,
        fn=len(withs) - tp,
        tn=len(withouts) - fp,
        title_right=None if not title else bool(article and is_title_right(article.title, title)),
        date_right=None if day is None else published == day,
        date_near=None
        if day is None
        else published is not None and abs((published - day).days) <= 1,
        author_right=None if not author else bool(article and _names(article.author) == author),
        language_right=None
        if article is None or "language" not in gold
        else article.language == gold["language"],
        reason=reason,
    )


def _rate(values: list[bool | None]) -> float | None:
    """The share of True among the values that are not None."""
    known = [v for v in values if v is not None]
    return round(sum(known) / len(known), 3) if known else None


def snippet_scores(scores: list[PageScore]) -> dict[str, float]:
    """Precision, recall and F1 over the summed snippet counts."""
    tp, fp, fn = (sum(getattr(s, k) for s in scores) for k in ("tp", "fp", "fn"))
    return {
        "precision": round(tp / (tp + fp), 3) if tp + fp else 0.0,
        "recall": round(tp / (tp + fn), 3) if tp + fn else 0.0,
        "f1": round(2 * tp / (2 * tp + fp + fn), 3) if tp + fp + fn else 0.0,
    }


def figures(scores: list[PageScore], per_language: bool) -> dict[str, object]:
    """The summary figures of a part: overall, English and the rest, optionally per language."""
    english = [s for s in scores if s.language == "en"]
    other = [s for s in scores if s.language != "en"]
    out: dict[str, object] = {
        "pages": len(scores),
        "all": snippet_scores(scores),
        "english": snippet_scores(english) | {"pages": len(english)},
        "other": snippet_scores(other) | {"pages": len(other)},
        "loaded": round(sum(s.reason is None for s in scores) / (len(scores) or 1), 3),
        "rejected": dict(sorted(Counter(s.reason for s in scores if s.reason).items())),
        "titles_right": _rate([s.title_right for s in scores]),
        "dates_right": _rate([s.date_right for s in scores]),
        "dates_within_a_day": _rate([s.date_near for s in scores]),
        "authors_right": _rate([s.author_right for s in scores]),
        "languages_right": _rate([s.language_right for s in scores]),
    }
    if per_language:
        languages = sorted({s.language for s in scores})
        out["languages"] = {
            lang: _language_figures([s for s in scores if s.language == lang]) for lang in languages
        }
    return out


def _language_figures(scores: list[PageScore]) -> dict[str, object]:
    """One language's line: pages, F1, share loaded."""
    loaded = sum(s.reason is None for s in scores)
    out: dict[str, object] = {
        "pages": len(scores),
        "f1": snippet_scores(scores)["f1"],
        "loaded": loaded,
    }
    if any(s.language_right is not None for s in scores):  # pages without a label: no rate
        out["language_right"] = sum(bool(s.language_right) for s in scores)
    return out


def xinhua_languages(dumps: Path) -> dict[str, object]:
    """The language detected on each Xinhua dump's body against the one its layout knows."""
    pages = right = 0
    wrong: list[str] = []
    for folder in XINHUA_DUMPS:
        for path in sorted((dumps / folder).glob("*.txt")):
            result = parse_dump(path.read_bytes().decode("utf-8", errors="replace"))
            if not isinstance(result, Article) or result.layout == "generic":
                continue
            pages += 1
            detected = language_of(result.body)
            right += detected == result.language
            if detected != result.language:
                wrong.append(f"{folder}/{path.name}: {detected}, not {result.language}")
    return {"pages": pages, "language_right": right, "wrong": wrong}


def all_scores(pages_dir: Path, gold: dict[str, dict[str, Any]]) -> dict[str, PageScore]:
    """Every gold page's score, by file name."""
    out: dict[str, PageScore] = {}
    for name in sorted(gold):
        text = (pages_dir / name).read_bytes().decode("utf-8", errors="replace")
        out[name] = page_score(text, gold[name])
    return out


def main() -> None:
    """Print the figures; with --write-baseline, pin them in the baseline file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write-baseline", action="store_true", help=f"write {BASELINE}")
    parser.add_argument(
        "--worst", type=int, default=0, help="also list the N worst development pages"
    )
    args = parser.parse_args()
    folder = shared_dir() / "dumps" / "web-multilingual"
    gold = json.loads((folder / "gold.json").read_text(encoding="utf-8"))
    scores = all_scores(folder / "pages", gold)
    parts = split(scores)
    summary = {
        part: figures(list(chosen.values()), per_language=part == "dev")
        for part, chosen in parts.items()
    }
    summary["xinhua"] = xinhua_languages(shared_dir() / "dumps")
    print(json.dumps(summary, indent=2))
    dev = parts["dev"]
    for name, s in sorted(dev.items(), key=lambda kv: kv[1].fn + kv[1].fp, reverse=True)[
        : args.worst
    ]:
        print(f"{s.language} tp={s.tp} fp={s.fp} fn={s.fn} {s.reason or ''} {name}")
    if args.write_baseline:
        pin(BASELINE, summary)


if __name__ == "__main__":
    main()
