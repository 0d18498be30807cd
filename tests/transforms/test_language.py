"""Language detection: ISO 639-1 codes from the kept detector, on a bounded sample."""

from __future__ import annotations

from transforms.language import SAMPLE_CHARS, language_of, languages


def test_languages_are_the_detectors_two_letter_codes() -> None:
    codes = languages()
    assert {"en", "de", "es", "fr", "pl", "zh", "ja", "ar", "bn", "ru"} <= codes
    assert len(codes) > 100
    assert all(len(c) == 2 and c.islower() for c in codes)


def test_language_of_names_the_language_of_a_body() -> None:
    assert language_of("Der Bundestag hat am Donnerstag über das neue Gesetz abgestimmt.") == "de"
    assert language_of("El gobierno anunció ayer que las elecciones serán en mayo.") == "es"
    assert language_of("新华社巴黎12月9日电 法国总统马克龙九日在巴黎会见来访的代表团。") == "zh"
    assert language_of("日本の首相は本日、東京で記者会見を行いました。") == "ja"


def test_a_label_beyond_iso_639_1_gives_way_to_the_best_two_letter_one() -> None:
    # Cantonese: the detector's best label is "yue", the stored one its next guess.
    assert language_of("粵語係一種語言，佢哋講嘢好快，我哋今日去咗飲茶，你食咗飯未呀？") == "zh"
    assert language_of("12345 678 90") in languages()  # "zxx", no language, is never stored


def test_only_the_start_of_a_long_body_is_read() -> None:
    german = "Die Regierung hat heute in Berlin ein neues Gesetz beschlossen. "
    english = "The government passed a new law in London today, officials said. "
    body = (german * (SAMPLE_CHARS // len(german) + 1)) + english * 200
    assert language_of(body) == "de"


def test_word_count_counts_each_ideograph_and_kana() -> None:
    from transforms.text import word_count

    assert word_count("The council met on Monday.") == 5
    assert word_count("法国总统马克龙") == 7
    assert word_count("子どもへの体罰を禁止する法律ができる") == 18
    assert word_count("Die Regierung (ÖVP) tagte.") == 4
    assert word_count("新华社 Xinhua 报道") == 6


def test_page_language_reads_prose_lines_not_addresses() -> None:
    from transforms.layouts.function_words import page_language

    german = "Die Regierung hat heute in Berlin ein neues Gesetz für die Schulen beschlossen."
    address = "https://example.com/this-is-what-happens-to-your-brain-and-body-when-you-are-there"
    assert page_language([address] * 40 + [german] * 10) == "de"
    chinese = "法国总统马克龙九日在巴黎会见来访的代表团，双方就合作交换了意见。" * 2
    assert page_language([chinese] * 5) == "zh"
