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
        ("Die Zeitung von Berlin", None),
        ("Nachrichten von heute", None),
    ],
)
def test_byline_names(line: str, expected: str | None) -> None:
    assert byline_author([line, "The article's first paragraph."], 1) == expected


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
