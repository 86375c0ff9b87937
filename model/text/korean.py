"""Korean text -> v2 phones, read the way upstream GPT-SoVITS v2 reads it (its text/korean.py at
commit 48b1a01): the pronounced jamo, one phone each.

- No normalisation of its own (`normalize` returns the text).
- `g2p`: Latin letters become their Korean names (GPU -> 지피유); g2pk2 turns the spelling into
  the pronunciation (numbers read with native or Sino-Korean numerals by their counter, then
  the special rules, batchim and onset assimilation, linking) with python-mecab-ko's
  morphology; syllables split into compatibility jamo and the compound vowels into two
  (ㅘ -> ㅗㅏ, ㅕ -> ㅣㅓ, ...); 을/를 before a word starting in ㄹ reads that ㄹ as ㄴ; a
  text ending in a jamo gets "."; then each character is a phone: a space is 空, Korean and
  ASCII punctuation become , . ! ?, anything else outside the v2 table is 停 (as upstream).

g2pk2's package imports NLTK and downloads CMUdict when it is missing; its English step is never
reached here (no Latin letter is left by then), so its rule modules are loaded without that
package `__init__`, and no download can happen.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import types
from functools import lru_cache

from clonebench.core.errors import UserError

from .symbols import MARKS_AS, ids_by_symbol

LETTER_NAMES = {"a": "에이", "b": "비", "c": "시", "d": "디", "e": "이", "f": "에프", "g": "지", "h": "에이치",
                "i": "아이", "j": "제이", "k": "케이", "l": "엘", "m": "엠", "n": "엔", "o": "오", "p": "피",
                "q": "큐", "r": "아르", "s": "에스", "t": "티", "u": "유", "v": "브이", "w": "더블유", "x": "엑스",
                "y": "와이", "z": "제트"}
COMPOUND_VOWELS = {"ㅘ": "ㅗㅏ", "ㅙ": "ㅗㅐ", "ㅚ": "ㅗㅣ", "ㅝ": "ㅜㅓ", "ㅞ": "ㅜㅔ", "ㅟ": "ㅜㅣ", "ㅢ": "ㅡㅣ",
                   "ㅑ": "ㅣㅏ", "ㅒ": "ㅣㅐ", "ㅕ": "ㅣㅓ", "ㅖ": "ㅣㅔ", "ㅛ": "ㅣㅗ", "ㅠ": "ㅣㅜ"}
PUNCTUATION_AS = {**MARKS_AS, " ": "空"}
JAMO_AT_END = re.compile(r"([\u3131-\u3163])$")
SPECIAL_RULES = ("jyeo", "ye", "consonant_ui", "josa_ui", "vowel_ui", "jamo", "rieulgiyeok", "rieulbieub",
                 "verb_nieun", "balb", "palatalize", "modifying_rieul")


@lru_cache(maxsize=1)
def _g2pk2():
    """g2pk2's modules, its rule table and a MeCab tagger (python-mecab-ko with its dictionary)."""
    try:
        if "g2pk2" not in sys.modules:   # the package without its __init__ (which imports NLTK)
            spec = importlib.util.find_spec("g2pk2")
            if spec is None:
                raise ImportError("g2pk2")
            package = types.ModuleType("g2pk2")
            package.__path__ = list(spec.submodule_search_locations)
            sys.modules["g2pk2"] = package
        parts = types.SimpleNamespace(**{name: importlib.import_module(f"g2pk2.{name}")
                                         for name in ("special", "regular", "utils", "numerals")})
        import jamo
        import mecab
    except ImportError as e:   # pragma: no cover - the lock installs them
        raise UserError(f"Korean needs g2pk2, jamo and python-mecab-ko ({e.name} is missing): make setup installs them") from None
    idioms = []
    with open(f"{sys.modules['g2pk2'].__path__[0]}/idioms.txt", encoding="utf-8") as f:
        for line in f:
            line = line.split("#")[0].strip()
            if "===" in line:
                pattern, replacement = line.split("===")
                idioms.append((re.compile(pattern), replacement))
    # compiled once: with its idioms the table is over re's cache of 512 patterns, so `re.sub`
    # with the strings would compile them all again for every sentence
    table = [(re.compile(pattern), replacement) for pattern, replacement, _ in parts.utils.parse_table()]
    return parts, table, idioms, mecab.MeCab(), jamo


def pronounce(text: str) -> str:
    """g2pk2's pronunciation of Hangul text (its default options: prescriptive, syllables)."""
    parts, table, idioms, tagger, _ = _g2pk2()
    for pattern, replacement in idioms:
        text = pattern.sub(replacement, text)
    text = parts.numerals.convert_num(parts.utils.annotate(text, tagger))
    letters = parts.utils.h2j(text)
    for name in SPECIAL_RULES:
        letters = getattr(parts.special, name)(letters, False, False)
    letters = re.sub("/[PJEB]", "", letters)
    for pattern, replacement in table:
        letters = pattern.sub(replacement, letters)
    for link in (parts.regular.link1, parts.regular.link2, parts.regular.link3, parts.regular.link4):
        letters = link(letters, False, False)
    return parts.utils.compose(letters)


def _rl_after_object_marker(text: str) -> str:
    """을/를 then a space then ㄹ: that ㄹ is read ㄴ (upstream's fix of a g2pk2 error)."""
    out, i = "", 0
    while i < len(text) - 4:
        if text[i:i + 3] in ("ㅇㅡㄹ", "ㄹㅡㄹ") and text[i + 3] == " " and text[i + 4] == "ㄹ":
            out += text[i:i + 3] + " ㄴ"
            i += 5
        else:
            out += text[i]
            i += 1
    return out + text[i:]


def normalize(text: str) -> str:
    return text


def g2p(text: str) -> tuple[list[str], None]:
    """Phones for the text (no per-character alignment: upstream has none for Korean)."""
    for letter, name in LETTER_NAMES.items():
        text = re.sub(letter, name, text, flags=re.IGNORECASE)
    jamo = _g2pk2()[4]
    text = jamo.j2hcj(jamo.h2j(pronounce(text)))
    for compound, parts in COMPOUND_VOWELS.items():
        text = text.replace(compound, parts)
    text = JAMO_AT_END.sub(r"\1.", _rl_after_object_marker(text))
    table = ids_by_symbol()
    return [p if p in table else "停" for p in (PUNCTUATION_AS.get(c, c) for c in text)], None
