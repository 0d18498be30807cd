"""Bylines: the names as the page prints them, without "By", the outlet or the date."""

from __future__ import annotations

import pytest

from transforms.layouts.byline import byline_author, reporters_of


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("By Rob Picheta, CNN", "Rob Picheta"),
        ("Von Katharina Schmidt", "Katharina Schmidt"),
        ("von Stefan Beiersmann am 29. Mai 2017 , 14:14 Uhr", "Stefan Beiersmann"),
        ("Par Barbara Stiegler", "Barbara Stiegler"),
        ("Por Mariano Martín mmartin@ambito.com.ar", "Mariano Martín"),
        ("Posted 11. April 2018 by Walter von Aachen", "Walter von Aachen"),
        ("Publiziert am 13. Januar 2014 von uriebe", "uriebe"),
        ("By David Brand and Ramsey Khalifeh", "David Brand; Ramsey Khalifeh"),
        ("Author: Bebs", "Bebs"),
        ("von Rudolf Fischer, Simon Kohler", "Rudolf Fischer; Simon Kohler"),
        ("Die Zeitung von Berlin", None),
        ("Nachrichten von heute", None),
        # a date, or one word in small letters, before the "by"; words run on after the name
        ("8. Januar 2020 · by Aureliana · in Gefühle", "Aureliana"),
        ("1. Januar 2016 von KleineGrüneMonster Ein Kommentar", "KleineGrüneMonster"),
        ("22. Dezember 201922. Dezember 2019 von Peter Addor", "Peter Addor"),
        ("erstellt von Dominique", "Dominique"),
        ("Gepostet von Katharina Volkwein | Wohnen", "Katharina Volkwein"),
        ("von Herr_Rein Veröffentlicht am 11. Juni 2019", "Herr_Rein"),
        ("Posted on 25. Januar 202225. Januar 2022Author Redaktion", "Redaktion"),
        # a name with a particle, not a byline; a label's word inside another word
        ("Christoph von Eichhorn", None),
        ("AUTOREN", None),
    ],
)
def test_byline_names(line: str, expected: str | None) -> None:
    assert byline_author([line, "The article's first paragraph."], 1, "de") == expected


@pytest.mark.parametrize(
    ("paragraph", "expected"),
    [
        ("新华社巴黎12月9日电（记者唐霁）法国9日再次爆发全国跨行业大罢工", "唐霁"),
        ("新华社北京5月1日电（记者王博、李静）", "王博; 李静"),
        ("BEIJING, May 1 (Xinhua) -- by Xinhua writer Li Jing", "Li Jing"),
        ("BEIJING, May 1 (Xinhua) -- Chinese Premier Li Keqiang said", None),
    ],
)
def test_xinhua_reporters(paragraph: str, expected: str | None) -> None:
    assert reporters_of(paragraph) == expected


_STORY = "The article's first paragraph, long enough to be prose and nothing else at all."


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        # a name alone over the date it signs, in any language
        (["Jeanne Corriveau", "19. Februar 2020"], "Jeanne Corriveau"),
        (["Simon Braasch", "19.10.19, 08:16 Uhr"], "Simon Braasch"),
        (["Marie Merlet |", "lundi 9 décembre 2019 à 09h08"], "Marie Merlet"),
        (["Mathilda Trausch, Online-Redaktion", "12.03.2021"], "Mathilda Trausch"),
        # the byline word alone on its line, the names on the next
        (["Par", "Nicolas Gutierrez C.", "le 14.09.2020 à 11h46"], "Nicolas Gutierrez C."),
        (["Publicado por", "Alberto González"], "Alberto González"),
        (["Von", "Fiona Bornhöft und Mariam Hofbeck"], "Fiona Bornhöft; Mariam Hofbeck"),
        # a date and the name on one line
        (["25.10.2022 - Reiner Nagel"], "Reiner Nagel"),
        (
            ["Isabel Caro, Rocío Latorre y José Miguel Wilson", "8. Mai 2022"],
            "Isabel Caro; Rocío Latorre; José Miguel Wilson",
        ),
        # a date and the name on one line, parted by marks; the story's section after them
        (["28. Juni 201914. Januar 2020 | Klaus Quibeldey-Cirkel"], "Klaus Quibeldey-Cirkel"),
        (["Arne Sjöström | 29. Dezember 2022 | HR-Welt"], "Arne Sjöström"),
        # a name under a date, when none stands over one
        (
            ["06.11.2023 | 14:10", "Redaktion Polizeiticker Schweiz"],
            "Redaktion Polizeiticker Schweiz",
        ),
        # labels, not names: in capitals, of function words, of words the page writes small
        (["LIVE STREAM", "19.10.2019"], None),
        (["Die Nachrichten", "19.10.2019"], None),
        (["Digital Life", "19.10.2019", "A digital life is a life too."], None),
        # a name with no date, byline word or author box beside it is not taken
        (["Simon Braasch"], None),
    ],
)
def test_names_alone_on_their_line(head: list[str], expected: str | None) -> None:
    lines = ["Headline of the story", *head, _STORY]
    assert byline_author(lines, lines.index(_STORY), "de") == expected


def test_author_box_under_the_story() -> None:
    lines = [
        "Headline",
        _STORY,
        "Another paragraph.",
        "Über den Autor",
        "Autor",
        "Katharina Volkwein",
    ]
    assert byline_author(lines, 1, "de") == "Katharina Volkwein"


_MENU = [f"Menu item {i}" for i in range(30)]


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        # a byline word alone on its line, far above the story; a user name or one name under it
        (["Von", "Eurosport", *_MENU], "Eurosport"),
        (["by", "delta201", *_MENU], "delta201"),
        (["Artikel von:", "hausinfo", *_MENU], "hausinfo"),
        (["Por", "Williams Perdomo @wperdomod", "-", *_MENU], "Williams Perdomo"),
        # a search form's "from ... to", weekdays, a function word's team
        (["Von", "bis", *_MENU], None),
        (["Mo", "Di", "Mi", *_MENU], None),
        (["von", "Die Tagespresse", *_MENU], None),
    ],
)
def test_names_under_a_byline_word_alone(head: list[str], expected: str | None) -> None:
    lines = ["Headline of the story", *head, _STORY]
    assert byline_author(lines, lines.index(_STORY), "de") == expected


def test_name_alone_under_the_headline() -> None:
    lines = ["Menu", "Topinambur ernten: 3 Profi-Tipps", "Kathrin Hofmeister", "Ein Lede.", _STORY]
    assert byline_author(lines, 4, "de", "Topinambur ernten: 3 Profi-Tipps") == "Kathrin Hofmeister"
    assert byline_author(lines, 4, "de") is None  # without the headline, a name is not enough
