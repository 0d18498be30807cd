"""The headline of a page of another outlet: never a site's or section's name, agreement decides."""

from __future__ import annotations

from transforms.layouts.headline import headline

LEDE = (
    "St. Louis, MO (Sports Network) - Andy McDonald registered two goals and an assist, as "
    "the St. Louis Blues pummeled the Columbus Blue Jackets."
)


def _page(*above: str) -> tuple[list[str], int]:
    """Lines of a page whose article starts right after `above`."""
    lines = [*above, LEDE]
    return lines, len(lines) - 1


def test_a_site_name_named_in_the_lede_is_not_the_headline() -> None:
    lines, start = _page(
        "The Sports Network - National Hockey League",
        "Minor Leagues",
        "McDonald scores a pair as Blues rout Jackets",
        "",
        "©2008 The Sports Network. All Rights Reserved.",
    )
    assert headline(lines, start, LEDE, LEDE)[0] == "McDonald scores a pair as Blues rout Jackets"


def test_a_title_line_that_is_only_the_outlet_gives_way_to_the_headline_above_the_article() -> None:
    lines, start = _page("Winnipeg Free Press", "Editorials", "Capping the deal", "Mon Jan 7 2008")
    assert headline(lines, start, LEDE, LEDE)[0] == "Capping the deal"


def test_web_addresses_and_breadcrumbs_are_names() -> None:
    lines, start = _page("News | Africa - Reuters.com", "Sarkozy defends himself against critics")
    assert headline(lines, start, LEDE, LEDE)[0] == "Sarkozy defends himself against critics"
    lines, start = _page("Home:Britain/Ireland", "Junk food advertising ban comes into force")
    assert headline(lines, start, LEDE, LEDE)[0] == "Junk food advertising ban comes into force"


def test_a_site_prefix_is_removed_and_the_repeat_decides() -> None:
    lines, start = _page(
        "SportsNet News: Blues rout Jackets behind McDonald - SportsNet",
        "Blues rout Jackets behind McDonald",
        "Some other story about hockey trades",
    )
    title, site = headline(lines, start, LEDE, LEDE)
    assert title == "Blues rout Jackets behind McDonald"
    assert site == "SportsNet"


def test_headings_of_other_stories_under_a_related_marker_are_not_the_headline() -> None:
    lines, start = _page(
        "Cape Argus",
        "Blues pummel Jackets in Central Division clash",
        "Related Articles",
        "Blues sign veteran defenceman for two years",
        "Jackets coach defends struggling goaltender",
        "Blues win again in overtime thriller",
    )
    assert headline(lines, start, LEDE, LEDE)[0] == "Blues pummel Jackets in Central Division clash"


def test_the_opening_of_the_body_is_not_the_headline() -> None:
    first = "Harbhajan Singh has been defended by his captain. " + LEDE
    lines = [
        "BBC SPORT",
        "India withdraw tour quit threat",
        "",
        "Harbhajan Singh has been defended by his captain",
        first,
    ]
    assert headline(lines, 4, first, first)[0] == "India withdraw tour quit threat"


def test_a_headline_far_above_the_article_past_blank_lines_beats_a_caption_next_to_it() -> None:
    # The BBC's layout: the headline, some forty blank lines, a picture's caption, the story.
    first = "India have withdrawn their threat to quit the tour of Australia over the ban."
    lines = [
        "BBC SPORTi library-->",
        "Last Updated: Saturday, 12 January 2008, 14:28 GMT",
        "India withdraw tour quit threat",
        *[""] * 40,
        "Harbhajan has been defended by his captain",
        "",
        first,
    ]
    assert headline(lines, len(lines) - 1, first, first)[0] == "India withdraw tour quit threat"


def test_the_title_line_repeated_above_the_article_decides_over_a_caption_nearer_to_it() -> None:
    # The caption shares more words with the lede; the headline printed again above the story,
    # as the whole title line, decides.
    first = (
        "Lewis Hamilton, who attended the unveiling of the new McLaren in Stuttgart, is ready "
        "to launch back into Formula One after a turbulent rookie season."
    )
    lines = [
        "Hamilton raring to go again",
        "Sport Story",
        "Hamilton raring to go again",
        "Monday, 07 Jan 2008 22:36",
        "Lewis Hamilton attended the unveiling of the new McLaren in Stuttgart",
        "Printer friendly version",
        "Sponsored Links",
        *[f"Advertiser number {n}" for n in range(6)],
        first,
    ]
    assert headline(lines, len(lines) - 1, first, first)[0] == "Hamilton raring to go again"


def test_a_headline_may_name_a_web_address() -> None:
    lines, start = _page(
        "Lawyers for Alberta premier threaten blogger who owns edstelmach.ca | CJAD",
        "Lawyers for Alberta premier threaten blogger who owns edstelmach.ca",
    )
    title, site = headline(lines, start, LEDE, LEDE)
    assert title == "Lawyers for Alberta premier threaten blogger who owns edstelmach.ca"
    assert site == "CJAD"


def test_tags_and_numbered_list_items_are_not_headlines() -> None:
    lines, start = _page(
        "On CNET:",
        "Blues rout Jackets as McDonald scores twice",
        "Categories: Sports, Hockey, Central Division",
        "Tags: St. Louis Blues, Columbus Blue Jackets, Andy McDonald, National Hockey League",
        "Cities that top the list:",
        "1. St. Louis Blues fans",
        "6. St. John's",
    )
    assert headline(lines, start, LEDE, LEDE)[0] == "Blues rout Jackets as McDonald scores twice"


def test_a_menu_label_sharing_one_word_with_the_lede_is_not_the_headline() -> None:
    first = (
        "Montreal, QC (Sports Network) - The Montreal Alouettes named Scott Milanovich, a former "
        "college quarterback, to their coaching staff on Tuesday."
    )
    lines = [
        "Footballworld.com | A Netsports Site",
        "Alouettes add two to coaching staff",
        "",
        "1-AA College",
        "Arena Football",
        "",
        first,
    ]
    assert headline(lines, 6, first, first)[0] == "Alouettes add two to coaching staff"


def test_a_short_headline_printed_above_the_article_beats_the_site_name() -> None:
    # A one-word headline first on the title line, printed again just above the article.
    lines, start = _page("Batteriespeicher - daheim Solar", "daheim Solar.", "Batteriespeicher")
    assert headline(lines, start, LEDE, LEDE, "de") == ("Batteriespeicher", "daheim Solar")


def test_the_site_name_ending_the_title_line_is_not_taken_though_longer() -> None:
    lines, start = _page(
        "Alles hat seine Zeit… | Marktplatz für ein gutes Leben",
        "Marktplatz für ein gutes Leben",
        "Veröffentlicht am 5. April 2017",
        "Alles hat seine Zeit…",
    )
    assert headline(lines, start, LEDE, LEDE, "de")[0] == "Alles hat seine Zeit…"


def test_a_headline_ending_the_title_line_after_a_breadcrumb_arrow_is_taken() -> None:
    # WordPress's "Blog » Archive » Headline": the end is the story's.
    lines, start = _page(
        "CrunchGear » Archive » NetGear CES cavalcade: Wire-line and hotter Wireless",
        "CrunchGear",
        "NetGear CES cavalcade: Wire-line and hotter Wireless",
    )
    title = headline(lines, start, LEDE, LEDE)[0]
    assert title == "NetGear CES cavalcade: Wire-line and hotter Wireless"


def test_a_short_site_name_first_on_the_title_line_is_not_the_headline() -> None:
    lines, start = _page(
        "CTV Toronto - OPP says 'enough' after 2 accused of drunk driving - CTV News",
        "CTV Toronto",
        "OPP says 'enough' after 2 accused of drunk driving",
    )
    title = headline(lines, start, LEDE, LEDE)[0]
    assert title == "OPP says 'enough' after 2 accused of drunk driving"


def test_the_headline_printed_in_other_words_than_the_title_line_is_taken() -> None:
    lines, start = _page(
        "Oranger Wasserstoff: Gas aus der Erdkruste",
        "Oranger Wasserstoff für die Stahlherstellung?",
        "Oranger Wasserstoff: Der Traum vom erneuerbaren Gas aus der Erdkruste",
        "By Martin Jendrischik",
    )
    title = headline(lines, start, LEDE, LEDE, "de")[0]
    assert title == "Oranger Wasserstoff: Der Traum vom erneuerbaren Gas aus der Erdkruste"


def test_the_title_line_printed_whole_is_no_variant_of_its_headline() -> None:
    lines, start = _page(
        "Minions mit Schablonen malen - mit Malerrolle & bunter Farbe",
        "Minions mit Schablonen malen - mit Malerrolle & bunter Farbe",
    )
    assert headline(lines, start, LEDE, LEDE, "de")[0] == "Minions mit Schablonen malen"


def test_a_repeat_with_other_quotation_marks_is_the_headline() -> None:
    lines, start = _page(
        '"Welches Europa wir wollen" - http://www.tafelblog.com',
        "„Welches Europa wir wollen“",
        "von Herr_Rein Veröffentlicht am 11. Juni 2019",
        "Die Juniorwahl zur Europawahl",
    )
    assert headline(lines, start, LEDE, LEDE, "de")[0] == "„Welches Europa wir wollen“"


def test_a_headline_repeated_in_the_footer_notice_is_no_site_name() -> None:
    # The notice's owner comes right after the mark and its years; the page's title after that.
    lines, start = _page(
        "Ohne ernsthafte Bewerbungsbemühungen kein Wohngeld",
        "Ohne ernsthafte Bewerbungsbemühungen kein Wohngeld",
        "18.02.2022, 10:27 | Recht & Gesetz",
    )
    lines += ["© juraforum.de — 2003-2022 Ohne ernsthafte Bewerbungsbemühungen kein Wohngeld"]
    title = headline(lines, start, LEDE, LEDE, "de")[0]
    assert title == "Ohne ernsthafte Bewerbungsbemühungen kein Wohngeld"


def test_a_short_end_of_the_title_line_is_the_site_name_though_alone_printed() -> None:
    lines, start = _page(
        "Cronograma Minedu 2022: ¿cuándo serán las vacaciones? | respuestas | La República",
        "La República",
        "Inicio",
    )
    title = headline(lines, start, LEDE, LEDE, "es")[0]
    assert title == "Cronograma Minedu 2022: ¿cuándo serán las vacaciones?"


def test_a_headline_taken_for_the_article_s_first_line_is_still_the_printed_one() -> None:
    lines = [
        "Oranger Wasserstoff: Gas aus der Erdkruste | Site",
        "Menü",
        "Oranger Wasserstoff: Der Traum vom erneuerbaren Gas aus der Erdkruste",
        LEDE,
    ]
    title = headline(lines, 2, LEDE, LEDE, "de")[0]
    assert title == "Oranger Wasserstoff: Der Traum vom erneuerbaren Gas aus der Erdkruste"
