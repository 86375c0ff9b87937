"""Cantonese text -> v2 phones, read the way upstream GPT-SoVITS v2 reads it (its
text/cantonese.py at commit 48b1a01): Jyutping from ToJyutping, each syllable as an initial and
a toned final, every phone prefixed with Y so that none collides with a Mandarin one.

- `normalize`: the Chinese normaliser (`zh_normalizer`: simplified characters, numbers read out),
  punctuation as v2's marks, then everything but basic CJK characters and those marks dropped
  (Latin words included: `frontend` makes them English runs before they get here, as upstream's
  `yue` mode does).
- `g2p`: a syllable is split at the first entry of `INITIALS` it starts with, in that order. The
  list holds some finals too, so a syllable without a consonant splits into two vowel parts
  (屋 uk1 -> Yuk Yk1) and a syllabic nasal repeats itself (唔 m4 -> Ym Ym4, 五 ng5 -> Yng Yg5).
  That is upstream's split, and v2 checkpoints were trained on it.
- A character ToJyutping reads as two syllables (卅 saa1 aa6) gives both; upstream runs them
  together into one phone outside the table (UNK).
- A phone outside the v2 table becomes UNK, as upstream's `clean_text` does.
- word2ph: 2 per character, 1 per mark. BERT features stay zeros for Cantonese, as upstream.
"""

from __future__ import annotations

import re
from functools import lru_cache

from clonebench.core.errors import UserError

from . import zh_normalizer
from .symbols import MARKS_AS, PUNCTUATION, ids_by_symbol

INITIALS = ("aa", "aai", "aak", "aap", "aat", "aau", "ai", "au", "ap", "at", "ak", "a", "p", "b", "e",
            "ts", "t", "dz", "d", "kw", "k", "gw", "g", "f", "h", "l", "m", "ng", "n", "s", "y", "w",
            "c", "z", "j", "ong", "on", "ou", "oi", "ok", "o", "uk", "ung", "sp", "spl", "spn", "sil")
# upstream's Cantonese map: quotes and brackets become ' (which NOT_SAID then drops), dashes -
PUNCTUATION_AS = {**MARKS_AS, "...": "…", "$": ".", "—": "-", "～": "-", "~": "-",
                  **dict.fromkeys("“”\"‘’（）()《》【】[]「」", "'")}
SYLLABLE = re.compile(r"[a-z]+[1-6]")


@lru_cache(maxsize=1)
def _jyutping():
    try:
        import ToJyutping
    except ImportError:   # pragma: no cover - the lock installs it
        raise UserError("Cantonese needs ToJyutping: install it (make setup does)") from None
    return ToJyutping


def normalize(text: str) -> str:
    return zh_normalizer.spoken(text, PUNCTUATION_AS)


def split_syllable(syllable: str) -> list[str]:
    """'sik6' -> ['Ys', 'Yik6']: the initial (or leading part) and the toned final."""
    tone, bare = syllable[-1], syllable[:-1]
    initial = next((i for i in INITIALS if bare.startswith(i)), None)
    if initial is None:
        raise UserError(f"Jyutping syllable {syllable!r} has no initial upstream's split knows")
    return ["Y" + initial, "Y" + (bare[len(initial):] or initial[-1]) + tone]


def g2p(text: str) -> tuple[list[str], list[int]]:
    """Normalized Cantonese text -> (phones, word2ph per character)."""
    phones: list[str] = []
    word2ph: list[int] = []
    for char, reading in _jyutping().get_jyutping_list(text):
        if char in PUNCTUATION:
            phones.append(char)
            word2ph.append(1)
            continue
        syllables = (reading or "").split()
        if not syllables or not all(SYLLABLE.fullmatch(s) for s in syllables):
            raise UserError(f"no Cantonese reading for {char!r}")
        table = ids_by_symbol()
        split = [p if p in table else "UNK" for s in syllables for p in split_syllable(s)]
        phones += split
        word2ph.append(len(split))
    return phones, word2ph
