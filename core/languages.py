"""The languages clonebench knows, in one table: what each stage needs to know of a language.

Every other module asks here: which codes `vet --lang` takes, how an error rate counts (words or
characters), which Unicode scripts write a transcript, what GPT-SoVITS's `.list` files call it,
and whether the text front end can speak it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Language:
    code: str                    # clonebench's code (Whisper's where Whisper has one)
    name: str
    scripts: frozenset[str]      # Unicode script names (a character name's first word) that write it
    unit: str = "word"           # what an error rate counts: word, char (no spaces between words) or mixed
    asr: bool = True             # Whisper recognises it by this code (vet --lang)
    gsv: str | None = None       # GPT-SoVITS's code in a .list file; None: upstream has none
    speaks: bool = False         # the text front end (model/text) reads it for synthesis


LATIN, CJK = frozenset({"LATIN"}), frozenset({"CJK"})
LANGUAGES: dict[str, Language] = {lang.code: lang for lang in (
    Language("en", "English", LATIN, gsv="en", speaks=True),
    Language("zh", "Chinese", CJK, unit="char", gsv="zh", speaks=True),
    Language("zh-en", "Chinese with English words", CJK | LATIN, unit="mixed", asr=False, speaks=True),
    Language("yue", "Cantonese", CJK, unit="char", gsv="yue", speaks=True),
    Language("ja", "Japanese", CJK | {"HIRAGANA", "KATAKANA"}, unit="char", gsv="ja", speaks=True),
    Language("ko", "Korean", frozenset({"HANGUL"}), unit="char", gsv="ko", speaks=True),
    Language("fr", "French", LATIN),
    Language("de", "German", LATIN),
    Language("es", "Spanish", LATIN),
    Language("it", "Italian", LATIN),
    Language("pt", "Portuguese", LATIN),
    Language("nl", "Dutch", LATIN),
    Language("ru", "Russian", frozenset({"CYRILLIC"})),
)}
AUTO = "auto"   # vet: detect per clip; synthesis: Chinese (Japanese with kana, Korean with Hangul) and English runs

VET_LANGS = (*(c for c, lang in LANGUAGES.items() if lang.asr), AUTO)
EVAL_LANGS = tuple(LANGUAGES)
SYNTH_LANGS = (*(c for c, lang in LANGUAGES.items() if lang.speaks), AUTO)
# a .list's codes: upstream's plain ones, and `all_*` (the same language without mixed-script handling)
GSV_CODES = {**{lang.gsv: lang.code for lang in LANGUAGES.values() if lang.gsv},
             **{f"all_{lang.gsv}": lang.code for lang in LANGUAGES.values() if lang.gsv and lang.gsv != "en"}}


def unit_for(lang: str) -> str:
    """The token an error rate counts in `lang`: word, char or mixed (word for a code not listed)."""
    known = LANGUAGES.get(lang)
    return known.unit if known else "word"


def scripts_of(lang: str) -> frozenset[str] | None:
    known = LANGUAGES.get(lang)
    return known.scripts if known else None
