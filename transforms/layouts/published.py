"""When a page of another outlet says it was published, and how it says it (page, inferred)."""

from __future__ import annotations

from datetime import datetime

from transforms.dates import (
    FREE,
    PROSE,
    SENTENCE,
    DateMention,
    dates_around,
    nearest_date,
)
from transforms.partial_dates import date_without_year, page_year, relative_time

# Where (characters before, after the article start) a date is looked for: near first, where
# the byline and time stand; then anywhere, since a date far off still beats none.
_DATE_NEAR, _DATE_FAR = (1500, 1000), (50_000, 50_000)
PAGE, INFERRED, NONE = "page", "inferred", "none"


def _page_date(text: str, anchor: int, language: str) -> DateMention | None:
    """The full date written nearest the anchor: free-standing near it, then anywhere; then one
    a sentence opens with, near, then anywhere; then any near it, in prose too."""
    near = dates_around(text, anchor, *_DATE_NEAR, language)
    found = nearest_date(text, anchor, near, FREE)
    if found is not None:
        return found
    far = dates_around(text, anchor, *_DATE_FAR, language)
    return (
        nearest_date(text, anchor, far, FREE)
        or nearest_date(text, anchor, near, SENTENCE)
        or nearest_date(text, anchor, far, SENTENCE)
        or nearest_date(text, anchor, near, PROSE)
    )


def publication_time(
    text: str,
    anchor: int,
    dateline_lead: str | None,
    captured_at: datetime | None,
    language: str = "en",
) -> tuple[datetime | None, str]:
    """The page's publication time (UTC) near `anchor`, the article start, and its source.

    A full date written on the page is `page`. Failing one: a date without a year (a byline's
    "Fri Dec 28, 6:09 PM ET", a dateline's "Jan 17"), its year completed from the page's
    copyright year or the capture time, or a relative time ("3 hours ago") counted back from
    the capture time, both `inferred`. Nothing: None, `none`. Dates are read with the words of
    the page's language (an ISO 639-1 code) and of English.
    """
    mention = _page_date(text, anchor, language)
    if mention is not None:
        return mention.value, PAGE
    lo, hi = max(0, anchor - _DATE_NEAR[0]), anchor + _DATE_NEAR[1]
    year = page_year(text)
    found = date_without_year(text, lo, hi, anchor, year, captured_at, language)
    if found is None and captured_at is not None:
        found = relative_time(text, lo, hi, anchor, captured_at, language)
    if found is None and dateline_lead is not None:
        found = date_without_year(
            dateline_lead, 0, len(dateline_lead), 0, year, captured_at, language
        )
    if found is None or (captured_at is not None and found > captured_at):
        return None, NONE
    return found, INFERRED
