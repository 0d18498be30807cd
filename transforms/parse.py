"""One decoded dump in, one Article or Rejection out: pick the layout, run its parser."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from transforms.layouts.chinaview import (
    is_chinaview_2008,
    is_xinhua_zh,
    parse_chinaview_2008,
    parse_xinhua_zh,
)
from transforms.layouts.common import PAGE_CODE
from transforms.layouts.generic import parse_generic
from transforms.layouts.xinhua import (
    is_xinhua_2019,
    is_xinhua_2022,
    parse_xinhua_2019,
    parse_xinhua_2022,
)
from transforms.records import Article, ParseResult, Rejection
from transforms.text import normalise_newlines

Detector = Callable[[list[str]], bool]
Parser = Callable[[list[str]], Article | Rejection]

# Most specific first: the Xinhua layouts are recognised by their own header lines.
LAYOUTS: tuple[tuple[str, Detector, Parser], ...] = (
    ("xinhua-2022", is_xinhua_2022, parse_xinhua_2022),
    ("xinhua-2019", is_xinhua_2019, parse_xinhua_2019),
    ("chinaview-2008", is_chinaview_2008, parse_chinaview_2008),
    ("xinhua-zh", is_xinhua_zh, parse_xinhua_zh),
)

_HTML = re.compile(r"^\s*(?:<!doctype html|<html\b|<head\b|<\?xml)", re.I)


def parse_dump(text: str, captured_at: datetime | None = None) -> ParseResult:
    """The article a dump's text holds, or why it holds none.

    `captured_at` is when the dump was captured (its file time, UTC): relative times on a page
    of another outlet ("3 hours ago") are read against it.
    """
    text = normalise_newlines(text)
    if not text.strip():
        return Rejection("empty_dump", "The dump is empty or holds only whitespace.")
    if _HTML.match(text):
        return Rejection("raw_html", "The dump is raw HTML, not the text of a page.")
    lines = text.split("\n")
    if PAGE_CODE.match(text.strip()):
        return Rejection("page_code_only", "The dump holds nothing but a page code.")
    for name, detect, parse in LAYOUTS:
        if detect(lines):
            result = parse(lines)
            if isinstance(result, Rejection) and result.layout is None:
                return replace(result, layout=name)
            return result
    return parse_generic(text, captured_at=captured_at)
