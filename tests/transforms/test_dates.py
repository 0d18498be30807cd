"""Dates on pages of other outlets: full dates in many formats and languages, partial ones."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from transforms.dates import date_near, find_dates, word_alternation
from transforms.layouts.published import publication_time
from transforms.partial_dates import date_without_year, page_year, relative_time

CAPTURED = datetime(2008, 1, 20, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("17:59 - 9th, Jan 2008", "en", datetime(2008, 1, 9, 17, 59, tzinfo=UTC)),
        ("Sat, 29 Dec 15:58:00 2007", "en", datetime(2007, 12, 29, 15, 58, tzinfo=UTC)),
        ("Sat Dec 29 15:58:00 2007 GMT", "en", datetime(2007, 12, 29, 15, 58, tzinfo=UTC)),
        ("Last modified: January 10. 2008 12:00AM", "en", datetime(2008, 1, 10, tzinfo=UTC)),
        ("Mon Dec 31, 2007 6:20pm EST", "en", datetime(2007, 12, 31, 23, 20, tzinfo=UTC)),
        ("15 janvier 2008", "fr", datetime(2008, 1, 15, tzinfo=UTC)),
        ("Publié le 15 février 2008 à 14h32", "fr", datetime(2008, 2, 15, 14, 32, tzinfo=UTC)),
        ("15. Januar 2008, 14:32 Uhr", "de", datetime(2008, 1, 15, 14, 32, tzinfo=UTC)),
        ("Mo., 16. Mai 2022, 14.30 Uhr", "de", datetime(2022, 5, 16, 14, 30, tzinfo=UTC)),
        ("16.05.2022, 14 Uhr", "de", datetime(2022, 5, 16, 14, tzinfo=UTC)),
        ("16 mai 2022 à 14 h", "fr", datetime(2022, 5, 16, 14, tzinfo=UTC)),
        ("29 / Dezember / 2022", "de", datetime(2022, 12, 29, tzinfo=UTC)),
        ("Actualizado: 15 de enero de 2008", "es", datetime(2008, 1, 15, tzinfo=UTC)),
        ("miércoles, 4 de mayo de 202200:00", "es", datetime(2022, 5, 4, tzinfo=UTC)),
        ("12 gennaio 2008", "it", datetime(2008, 1, 12, tzinfo=UTC)),
        ("3 de março de 2008", "pt", datetime(2008, 3, 3, tzinfo=UTC)),
        ("19 lutego 2019", "pl", datetime(2019, 2, 19, tzinfo=UTC)),
        ("19. helmikuuta 2019", "fi", datetime(2019, 2, 19, tzinfo=UTC)),
        ("5 мая 2021 г.", "ru", datetime(2021, 5, 5, tzinfo=UTC)),
        ("12/04/2020", "fr", datetime(2020, 4, 12, tzinfo=UTC)),
        ("12/04/2020", "en", datetime(2020, 12, 4, tzinfo=UTC)),
        ("2008年1月15日", "zh", datetime(2008, 1, 15, tzinfo=UTC)),
        ("Von Deutscher Tennis Bund 4. 2. 2022.", "de", datetime(2022, 2, 4, tzinfo=UTC)),
        # Published and updated dates glued by the crawler: the first is read.
        ("19. Dezember 202219. Dezember 2022", "de", datetime(2022, 12, 19, tzinfo=UTC)),
        ("15/01/201614/01/2016", "de", datetime(2016, 1, 15, tzinfo=UTC)),
        # A month name and a two-digit year, where the clause ends after it.
        ("( Pescasseroli, 14 Gennaio 20 )", "it", datetime(2020, 1, 14, tzinfo=UTC)),
        ("Stand: 31. Mai 12", "de", datetime(2012, 5, 31, tzinfo=UTC)),
    ],
)
def test_full_dates_in_many_formats(text: str, language: str, expected: datetime) -> None:
    assert [m.value for m in find_dates(text, language)] == [expected]


def test_month_names_of_another_language_are_not_read() -> None:
    # "listopad" is November in Polish and October in Croatian: each page reads its own.
    assert [m.value.month for m in find_dates("3 listopada 2020", "pl")] == [11]
    assert find_dates("15 janvier 2008", "de") == []


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Mars 2008 rover", "en"),
        ("the main event of 2008", "en"),
        ("Marshal 12 2008x", "en"),
        ("VN:F [1.9.22_1171]", "en"),
        ("am 5. Mai 20 Personen", "de"),
        ("31. Mai 12 Uhr", "de"),
        ("31. Mai 12:30", "de"),
    ],
)
def test_words_that_are_not_dates(text: str, language: str) -> None:
    assert find_dates(text, language) == []


def test_word_alternation_matches_whole_words_longest_first() -> None:
    pattern = re.compile(word_alternation(["mar", "march", "mars", "may"]) + r"\b")
    assert [pattern.match(w) is not None for w in ("mar", "march", "mars", "may", "ma")] == [
        True,
        True,
        True,
        True,
        False,
    ]


@pytest.mark.parametrize(
    ("text", "year", "captured", "expected"),
    [
        # The weekday decides between the copyright year and the one before.
        ("Fri Dec 28, 6:09 PM ET", 2008, None, datetime(2007, 12, 28, 23, 9, tzinfo=UTC)),
        ("Sat 19 Jan, 10:45 AM", 2008, None, datetime(2008, 1, 19, 10, 45, tzinfo=UTC)),
        ("01/09 18:48:47 ET", 2008, None, datetime(2008, 1, 9, 23, 48, 47, tzinfo=UTC)),
        # Not after the capture: December in a January capture is last year's.
        ("12/30 10:34:59 ET", None, CAPTURED, datetime(2007, 12, 30, 15, 34, 59, tzinfo=UTC)),
        ("Tuesday January 15", None, CAPTURED, datetime(2008, 1, 15, tzinfo=UTC)),
        # A weekday no candidate year has: no date rather than a wrong one.
        ("Wednesday January 15", 2008, None, None),
        # Nothing to complete the year from.
        ("Fri Dec 28, 6:09 PM ET", None, None, None),
        # A full date is not a date without a year; a bare fraction is no date.
        ("Jan 12, 2008", 2008, None, None),
        ("1/2", 2008, None, None),
        # Chinese and Japanese: "[01月14日 11時30分]", not the end of a full date.
        ("[01月14日 11時30分]", 2008, None, datetime(2008, 1, 14, 11, 30, tzinfo=UTC)),
        ("2008年1月14日", 2008, None, None),
    ],
)
def test_dates_without_a_year(
    text: str, year: int | None, captured: datetime | None, expected: datetime | None
) -> None:
    assert date_without_year(text, 0, len(text), 0, year, captured) == expected


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("5 days ago", "en", datetime(2008, 1, 15, 12, tzinfo=UTC)),
        (
            "By A WRITER, Associated Press Writer 1 hour, 24 minutes ago",
            "en",
            datetime(2008, 1, 20, 10, 36, tzinfo=UTC),
        ),
        ("an hour ago", "en", datetime(2008, 1, 20, 11, tzinfo=UTC)),
        ("il y a 3 heures", "fr", datetime(2008, 1, 20, 9, tzinfo=UTC)),
        ("vor 2 Stunden", "de", datetime(2008, 1, 20, 10, tzinfo=UTC)),
        ("vor einer Stunde", "de", datetime(2008, 1, 20, 11, tzinfo=UTC)),
        ("hace 2 días", "es", datetime(2008, 1, 18, 12, tzinfo=UTC)),
        ("3 godziny temu", "pl", datetime(2008, 1, 20, 9, tzinfo=UTC)),
        ("3時間前", "ja", datetime(2008, 1, 20, 9, tzinfo=UTC)),
        ("2 小时前", "zh", datetime(2008, 1, 20, 10, tzinfo=UTC)),
        ("Nothing relative here, three months ago or so.", "en", None),
    ],
)
def test_relative_times(text: str, language: str, expected: datetime | None) -> None:
    assert relative_time(text, 0, len(text), 0, CAPTURED, language) == expected


def test_a_relative_time_inside_a_paragraph_does_not_count() -> None:
    text = "The minister, who arrived 2 days ago from Paris, " * 5
    assert relative_time(text, 0, len(text), 0, CAPTURED) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Copyright © 2006-07 East Coast Media (P) Ltd.", 2007),
        ("© Artslink.co.za 1997 - 2007. All Rights Reserved.", 2007),
        ("Guardian Unlimited © Guardian News and Media Limited 2008", 2008),
        ("© 2004 The Citizen ... Copyright 2008 AFP", 2008),
        ("No notice, though 2008 is mentioned.", None),
        # No notice: the year in a dated address the page prints.
        ("Compartir https://ladiaria.com.uy/ambiente/articulo/2022/5/productor-fumigo/", 2022),
        ("https://example.com/2022/5/story/\n© 2019 Outlet", 2019),
    ],
)
def test_page_year_from_copyright_notices(text: str, expected: int | None) -> None:
    assert page_year(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Posted: 6:12 PM Dec 30, 2007\n\nLast Updated: 6:10 PM Dec 31, 2007\n\nThe story",
        "By Cat/Dec 30, 2007 9:49 am/Updated: Dec 31, 2007 4:17 pm\n\nThe story",
        "Von Jan | 30.12.2007 | Zuletzt geändert: 31.12.2007, 8:54\n\nThe story",
    ],
)
def test_an_update_loses_to_the_publication_date(text: str) -> None:
    found = date_near(text, text.index("The story"), language="de")
    assert found is not None and found.value.date() == datetime(2007, 12, 30).date()


def test_a_stamp_beats_a_date_in_a_nearer_sentence() -> None:
    # The lede's event date is nearer the article start; the stamp alone on its line is its date.
    lede = (
        "Les opérateurs ont enregistré 365 000 déplacements entre le 21 juin et le 15 novembre"
        " 2019, dont 61% en trottinettes."
    )
    text = "Titre\n\n" + lede + "\n\nJeanne Corriveau\n\n19 février 2020\n\nMontréal\n\nEn raison"
    found, source = publication_time(text, text.index(lede), None, None, "fr")
    assert (found, source) == (datetime(2020, 2, 19, tzinfo=UTC), "page")


@pytest.mark.parametrize(
    "lede",
    [
        "Seit 4. August 2014 ist in Bolivien ein neues Kinder- und Jugendgesetz in Kraft, das"
        " erstmals arbeitende Kinder als soziale Subjekte anerkennt.",
        "Wir suchen zum 1. April 2016 (ggf. früherer Start möglich) eine/n Medienpädagogin in"
        " Teilzeitanstellung in München.",
    ],
)
def test_a_stamp_far_off_beats_a_date_a_sentence_opens_with(lede: str) -> None:
    text = "Titel\n\n" + lede + "\n\n" + "Text des Artikels. " * 100 + "\n\n15.01.2016\n"
    found, _ = publication_time(text, text.index(lede), None, None, "de")
    assert found == datetime(2016, 1, 15, tzinfo=UTC)


def test_a_stamp_in_a_sentence_beats_an_event_deep_in_prose() -> None:
    # WordPress states the date in a sentence under the post; the lede's date is an event's.
    lede = (
        "Das Bundesgericht kassiert ein Urteil des Kantonsgerichts GE (BGer 6B_1224/2019 vom"
        " 24.01.2020, Fünferbesetzung), das den Polizisten freigesprochen hatte."
    )
    stamp = (
        "Dieser Beitrag wurde am 04/02/2020 von kj in Bundesgericht BGer veröffentlicht."
        " Schlagworte: StGB 12, SVG 100, SVG 90."
    )
    text = "Titel\n\n" + lede + "\n\n" + stamp + "\n"
    found, _ = publication_time(text, text.index(lede), None, None, "de")
    assert found == datetime(2020, 2, 4, tzinfo=UTC)


def test_slashed_dates_read_in_the_order_the_page_writes_them() -> None:
    # An English page whose comments are dated 14/04/2020 writes its own date day first.
    story = "The story. " * 10
    text = f"Focaccia\n\n12/04/2020 by Kay\n\n{story}\n\nAnna\n\n14/04/2020 at 3:00 pm\n"
    found = date_near(text, text.index("The story"), language="en")
    assert found is not None and found.value == datetime(2020, 4, 12, tzinfo=UTC)
    # One date that is month first only (04/23/2020) makes the page American.
    american = text.replace("14/04/2020", "04/23/2020")
    found = date_near(american, american.index("The story"), language="en")
    assert found is not None and found.value == datetime(2020, 12, 4, tzinfo=UTC)
