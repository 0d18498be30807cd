"""The language of a text, told by a kept detector (py3langid's model), as an ISO 639-1 code."""

from __future__ import annotations

from functools import cache

from py3langid.langid import MODEL_FILE, LanguageIdentifier

# The detector reads this many characters of a body, from its start: its cost grows with the
# length (0.38 ms here, 0.64 ms for 1,000, 6.3 ms for whole bodies). On the 589 loaded pages of
# web-multilingual that name their language, 500 name 588 right, 1,000 and whole bodies all
# 589: the one missed opens with a notice in English and Spanish over its German text.
SAMPLE_CHARS = 500


@cache
def _identifier() -> LanguageIdentifier:
    """py3langid's model, loaded once (half a second)."""
    return LanguageIdentifier.from_model_file(MODEL_FILE)


def languages() -> frozenset[str]:
    """Every code `language_of` can name: the detector's ISO 639-1 (two-letter) labels."""
    return frozenset(c for c in _identifier().labels if _is_iso_639_1(c))


def language_of(text: str) -> str:
    """The language of a text (an article's body), read from its first `SAMPLE_CHARS`: the
    detector's best ISO 639-1 label. Its few other labels (Cantonese "yue", Moroccan Arabic
    "ary", "zxx" for no language) give way to the best two-letter one, its next guess."""
    sample = text[:SAMPLE_CHARS]
    code = str(_identifier().classify(sample)[0])
    if _is_iso_639_1(code):
        return code
    # Rare, and dearer (every label scored and sorted), so only then. Restricting the model
    # to two-letter labels instead leaves its table strided: every page a third slower.
    return next(str(c) for c, _ in _identifier().rank(sample) if _is_iso_639_1(str(c)))


def _is_iso_639_1(code: str) -> bool:
    """Whether a label of the detector is an ISO 639-1 code (two letters)."""
    return len(code) == 2
