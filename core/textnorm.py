"""Text normalization and error counting, shared by vetting (transcript checks) and evaluation.

The scoring unit depends on the language, and every rule is spelled out here:

- English: Whisper's `EnglishTextNormalizer` (spellings, numbers, contractions), then words.
  This is what Seed-TTS-eval and the F5-TTS scripts do, so WERs are comparable with theirs.
- Chinese (`zh`) and mixed Chinese-English (`zh-en`): traditional characters are mapped to
  simplified (zhconv), Arabic numerals to their Chinese reading (cn2an; runs of 5+ digits, such as
  phone numbers, digit by digit), punctuation is stripped. Then every Han character is one token
  and every Latin-script word is one token, normalized like English. For pure Chinese this is the
  usual CER; for mixed text it is the "mixed error rate" (MER) used for code-switching ASR, so
  "Hello，欢迎致电" has 5 tokens: hello 欢 迎 致 电.
- Japanese (`ja`) and Korean (`ko`): character error rate, the same way: every Han character,
  kana and Hangul syllable is one token (numerals read as Han numerals, which Japanese shares;
  ー counts as a character), Latin words are words.
- Other languages: NFKC, lower case, punctuation stripped, words.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from .languages import unit_for

HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")  # CJK ideographs (Han characters)
# one token per character: Han, kana (Japanese) and Hangul syllables (Korean); Latin words are words
_CHAR_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]+")
_LONG_DIGITS = re.compile(r"\d{5,}")
_DIGIT_NAMES = "零一二三四五六七八九"

NORMALIZER_VERSION = "textnorm-2 (whisper EnglishTextNormalizer; zhconv t2s + cn2an; Han, kana, Hangul=char, Latin=word)"


def is_han_language(lang: str) -> bool:
    return unit_for(lang) != "word"


@lru_cache(maxsize=1)
def _english_normalizer():
    from whisper.normalizers import EnglishTextNormalizer

    return EnglishTextNormalizer()


def normalize(text: str, lang: str) -> str:
    """Normalized text, tokens separated by single spaces (see the module docstring)."""
    return " ".join(tokens(text, lang))


def tokens(text: str, lang: str) -> list[str]:
    if lang == "en":
        return _english_normalizer()(text).split()
    if is_han_language(lang):
        return _han_tokens(text)
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"[^\w\s]|_", " ", text)  # apostrophes too: "d'accès" and "d 'accès" agree
    return text.split()


def _han_tokens(text: str) -> list[str]:
    import cn2an
    import zhconv

    text = zhconv.convert(unicodedata.normalize("NFKC", text), "zh-cn")
    text = _LONG_DIGITS.sub(lambda m: "".join(_DIGIT_NAMES[int(d)] for d in m.group()), text)
    if re.search(r"\d", text):
        try:
            text = cn2an.transform(text, "an2cn")
        except Exception:  # cn2an refuses some odd digit/sign mixes; leave those digits as they are
            pass
    out: list[str] = []
    pos = 0
    for m in _CHAR_RUN.finditer(text):
        out += _latin_words(text[pos : m.start()])
        out += list(m.group())
        pos = m.end()
    out += _latin_words(text[pos:])
    return out


def _latin_words(chunk: str) -> list[str]:
    chunk = re.sub(r"[^\w\s']|_", " ", chunk)  # CJK punctuation is not \w either
    return _english_normalizer()(chunk).split() if chunk.strip() else []


@dataclass(frozen=True)
class ErrorCounts:
    """Alignment counts of hypothesis tokens against reference tokens. Summing counts over items
    gives the corpus-level rate, and bootstraps resample items and re-sum."""

    hits: int
    substitutions: int
    deletions: int
    insertions: int

    @property
    def ref_len(self) -> int:
        return self.hits + self.substitutions + self.deletions

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        return self.errors / self.ref_len if self.ref_len else float("nan")


def count_errors(ref_tokens: list[str], hyp_tokens: list[str]) -> ErrorCounts:
    """Levenshtein alignment counts (jiwer) of two token lists. The reference must not be empty."""
    import jiwer

    if not ref_tokens:
        raise ValueError("empty reference")
    if not hyp_tokens:
        return ErrorCounts(0, 0, len(ref_tokens), 0)
    # jiwer splits on spaces; no token holds a space, so joining is lossless.
    o = jiwer.process_words(" ".join(ref_tokens), " ".join(hyp_tokens))
    return ErrorCounts(o.hits, o.substitutions, o.deletions, o.insertions)


def error_counts(reference: str, hypothesis: str, lang: str) -> tuple[ErrorCounts, ErrorCounts] | None:
    """(counts in the language's unit, character counts); None when the reference normalizes to
    nothing."""
    ref = tokens(reference, lang)
    if not ref:
        return None
    hyp = tokens(hypothesis, lang)
    return count_errors(ref, hyp), count_errors(list("".join(ref)), list("".join(hyp)))


def error_rates(reference: str, hypothesis: str, lang: str) -> tuple[float, float] | None:
    """(WER, CER) of the ASR text against a given transcript, after normalization
    (for Chinese the "WER" is the CER).

    The CER is what the transcript_mismatch rule reads for every language: an ASR spelling slip
    ("dies" for "dièse") costs a whole word in WER but two characters in CER, while a transcript
    of the wrong line differs in most characters either way.
    """
    counts = error_counts(reference, hypothesis, lang)
    if counts is None:
        return None
    unit, chars = counts
    return unit.rate, chars.rate
