"""Checks that a transcript can be right at all, whatever the recogniser's confidence: is it
written in the language's script, and does it loop?

Whisper, given speech it cannot read, still writes something, and sometimes with high word
probabilities: strings of digits and dashes, Latin letters for Mandarin, or one phrase looped
("云 4 云 4 云 4 ...").
"""

from __future__ import annotations

import unicodedata

from .languages import scripts_of, unit_for

PUNCTUATION = ".,!?;:\"'()-"


def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return name.split(" ")[0] if name else ""


def script_share(text: str, lang: str) -> float | None:
    """Share of the letters and digits that are written in `lang`'s script (digits count
    against it: a transcript of digits only is no reading of a sentence). None when the language
    is unknown or the text has no letters or digits."""
    scripts = scripts_of(lang)
    chars = [ch for ch in text if ch.isalnum()]
    if scripts is None or not chars:
        return None
    return sum(_script(ch) in scripts for ch in chars) / len(chars)


def repetition(text: str, lang: str, n: int = 3) -> float:
    """Share of the transcript's n-grams (of words, or of characters in Chinese and Japanese)
    that repeat an earlier one; 0 for texts under 2n tokens."""
    if unit_for(lang) == "char":   # written without spaces: n-grams of characters
        tokens = [ch for ch in text if ch.isalnum()]
    else:
        tokens = [w.strip(PUNCTUATION).lower() for w in text.split()]
        tokens = [t for t in tokens if t]
    if len(tokens) < 2 * n:
        return 0.0
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams)
