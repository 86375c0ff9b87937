"""Text -> phone ids for the model: language runs, sentence splitting, and the result record.

Languages: `zh`, `en`, `ja`, `ko`, `yue`, and `auto` (mixed: Chinese, or Japanese when the text
has kana, or Korean when it has Hangul, with English words; `zh-en` is the same; Cantonese is
never guessed: its characters are Chinese ones). Chinese, Cantonese, Japanese and Korean text may
contain English words: they become English runs (as upstream's `zh`, `yue`, `ja` and `ko` modes
split them). Other scripts are refused with a clear message rather than read as
garbage.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from clonebench.core.errors import UserError
from clonebench.core.languages import SYNTH_LANGS

from . import cantonese, chinese, english, japanese, korean
from .symbols import PUNCTUATION, to_ids

MAX_CHARS = 1000          # longer input is refused: split it into several requests
MIN_SENTENCE_CHARS = 5    # shorter fragments are merged into their neighbour
SENTENCE_END = "。！？.!?…；;"
CLAUSE_END = "，,、：:"
ENDS = SENTENCE_END + CLAUSE_END    # a piece ending in one of these needs no added stop
PAUSES = ENDS + "—–-"               # a capped piece is preferably cut right after one of these
WORD_CHAR = re.compile(r"[A-Za-z0-9'’\-]")  # Chinese text is never cut inside a run of these
LATIN = re.compile(r"[A-Za-z][A-Za-z'\-]*(?:\s+[A-Za-z][A-Za-z'\-]*)*")
# kana letters (not ・ or ー, which Chinese text uses too), half-width katakana: Japanese
KANA = re.compile(r"[\u3041-\u3096\u30a1-\u30fa\uff66-\uff9d]")
HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff\u3131-\u318e]")   # syllables and jamo: Korean
OWN_SCRIPT = {"ja": (KANA, "Japanese kana"), "ko": (HANGUL, "Hangul")}
UNSUPPORTED = re.compile(r"[\u0400-\u04ff\u0600-\u06ff\u0590-\u05ff\u0e00-\u0e7f]")
MODULES = {"zh": chinese, "en": english, "ja": japanese, "ko": korean, "yue": cantonese}
SPACED = {"en"}           # runs written with spaces around them in the normalized text


@dataclass
class Run:
    lang: str            # "zh", "en", "ja", "ko" or "yue"
    text: str            # normalized text
    phones: list[str]
    word2ph: list[int] | None   # zh, yue: per character of `text`; en: per word; ja, ko: none (as upstream)


@dataclass
class Phonemes:
    runs: list[Run] = field(default_factory=list)

    @property
    def phones(self) -> list[str]:
        return [p for r in self.runs for p in r.phones]

    @property
    def ids(self) -> list[int]:
        return to_ids(self.phones)

    @property
    def norm_text(self) -> str:
        return "".join(f" {r.text} " if r.lang in SPACED else r.text for r in self.runs).strip()


def check_lang(lang: str) -> str:
    if lang not in SYNTH_LANGS:
        raise UserError(f"language {lang!r} is not supported for synthesis: use zh, en, ja, ko, yue or auto (mixed)")
    return "auto" if lang == "zh-en" else lang


def whole_text_language(text: str, lang: str) -> str:
    """`auto` decided once for a whole text, before it is cut into sentences (so that a sentence
    of kanji alone in Japanese text is read as Japanese): `ko` with Hangul, `ja` with kana, else
    `auto` (Chinese and English runs). Other codes are returned as they are."""
    lang = check_lang(lang)
    if lang != "auto":
        return lang
    return next((code for code, (script, _) in OWN_SCRIPT.items() if script.search(text)), "auto")


def language_runs(text: str, lang: str) -> list[tuple[str, str]]:
    """Split raw text into (lang, text) runs. English words inside Chinese, Cantonese, Japanese or
    Korean become 'en' runs; in `auto`, text with Hangul is Korean, text with kana Japanese."""
    lang = check_lang(lang)
    bad = UNSUPPORTED.search(text)
    if bad:
        raise UserError(f"text contains {bad.group()!r}, a script the front end does not read "
                        "(Chinese, Japanese, Korean and English are supported)")
    for code, (script, name) in OWN_SCRIPT.items():
        m = script.search(text)
        if m and lang not in (code, "auto"):
            raise UserError(f"text has {name} ({m.group()!r}) but the language is {lang!r}: use {code} or auto")
    if lang == "en":
        if chinese.HAN.search(text):
            raise UserError("text has Chinese characters but the language is 'en': use zh, yue or auto")
        return [("en", text)]
    base = lang if lang != "auto" else next((c for c, (sc, _) in OWN_SCRIPT.items() if sc.search(text)), "zh")
    if not chinese.HAN.search(text) and not any(sc.search(text) for sc, _ in OWN_SCRIPT.values()):
        return [("en", text)] if LATIN.search(text) else [(base, text)]
    runs: list[tuple[str, str]] = []
    pos = 0
    for m in LATIN.finditer(text):
        if m.start() > pos:
            runs.append((base, text[pos:m.start()]))
        runs.append(("en", m.group()))
        pos = m.end()
    if pos < len(text):
        runs.append((base, text[pos:]))
    return [(lg, t) for lg, t in runs if t.strip()]


class TextTooLong(UserError):
    """A text, or a word in it, over a length limit (a server answers 413)."""


def phonemize(text: str, lang: str) -> Phonemes:
    if not text or not text.strip():
        raise UserError("empty text")
    if len(text) > MAX_CHARS:
        raise TextTooLong(f"text is {len(text)} characters; the limit is {MAX_CHARS}: split it")
    result = Phonemes()
    for run_lang, run_text in language_runs(text, lang):
        module = MODULES[run_lang]
        norm = module.normalize(run_text)
        phones, word2ph = module.g2p(norm)
        if phones:
            result.runs.append(Run(run_lang, norm, phones, word2ph))
    if not any(p not in PUNCTUATION for p in result.phones):
        raise UserError(f"nothing to say in {text[:40]!r}: no words after normalization")
    return result


def split_sentences(text: str, lang: str = "auto", max_chars: int | None = None) -> list[str]:
    """Cut after every punctuation mark, then merge fragments shorter than MIN_SENTENCE_CHARS.

    Each piece ends with punctuation (a full stop is added when the text has none), which
    gives the GPT a clean end-of-utterance cue.

    With `max_chars`, no piece is longer than that (its punctuation counted): fragments are not
    merged past it, and a longer piece is cut between words: after a pause mark (dash, comma)
    when the window has one, else at its last space; Chinese and Japanese may be cut between characters,
    but never inside a run of Latin letters or digits. A piece cut this way gets a comma ("，"
    for Chinese, "、" for Japanese) rather than a stop, since the sentence goes on. A word longer than the cap
    cannot be cut and is a UserError. Without `max_chars` nothing is capped.
    """
    text = text.strip()
    if not text:
        return []
    cap = math.inf if max_chars is None else max_chars
    pieces = [p for p in re.split(f"(?<=[{re.escape(ENDS)}])", text) if p.strip()]
    merged: list[str] = []
    for piece in pieces:
        if merged and len(_letters(merged[-1])) < MIN_SENTENCE_CHARS and _fits(merged[-1] + piece, cap):
            merged[-1] += piece
        else:
            merged.append(piece)
    if len(merged) > 1 and len(_letters(merged[-1])) < MIN_SENTENCE_CHARS and _fits(merged[-2] + merged[-1], cap):
        tail = merged.pop()
        merged[-1] += tail
    stop, comma = (".", ",") if lang == "en" or not _written_without_spaces(text) else ("。", "，" if not KANA.search(text) else "、")
    if max_chars is not None:
        merged = [c for p in merged for c in _cut(p.strip(), max_chars, comma, _written_without_spaces(p))]
    return [p.strip() if p.strip()[-1] in ENDS else p.strip() + stop for p in merged]


def _written_without_spaces(text: str) -> bool:
    """Chinese or Japanese: cut between characters, end with 。"""
    return bool(chinese.HAN.search(text) or KANA.search(text))


def _fits(piece: str, cap: float) -> bool:
    """Whether `piece` is at most `cap` characters once it ends with punctuation."""
    piece = piece.strip()
    return len(piece) + (piece[-1] not in ENDS) <= cap


def _cut(piece: str, cap: int, comma: str, by_char: bool) -> list[str]:
    """`piece` (stripped) in parts that each fit `cap`; all but the last end with punctuation."""
    parts: list[str] = []
    while not _fits(piece, cap):
        i = _cut_point(piece, cap, by_char)
        head, piece = piece[:i].rstrip(), piece[i:].lstrip()
        parts.append(head if head[-1] in ENDS else head + comma)
    return parts + [piece]


def _cut_point(piece: str, cap: int, by_char: bool) -> int:
    """The last place in the cap's window where `piece` may be cut, preferring one after a
    pause mark (unless that leaves a fragment too short to say on its own)."""
    cuts = [i for i in range(1, min(len(piece), cap + 1)) if _between_words(piece, i, by_char) and _fits(piece[:i], cap)]
    if not cuts:
        end = next((i for i in range(1, len(piece)) if _between_words(piece, i, by_char)), len(piece))
        word = piece[:end]
        shown = word if len(word) <= 10 else word[:10] + "…"
        what = "is" if len(word) > cap else "with its punctuation is"
        raise TextTooLong(f"a word of {len(word)} characters ({shown!r}) {what} longer than the {cap}-character sentence cap")
    pauses = [i for i in cuts if piece[:i].rstrip()[-1] in PAUSES and len(_letters(piece[:i])) >= MIN_SENTENCE_CHARS]
    return (pauses or cuts)[-1]


def _between_words(piece: str, i: int, by_char: bool) -> bool:
    """Whether `piece` may be cut before index i: at a space, or for Chinese between two
    characters that are not both part of a Latin word."""
    if piece[i - 1].isspace() or piece[i].isspace():
        return True
    return by_char and not (WORD_CHAR.match(piece[i - 1]) and WORD_CHAR.match(piece[i]))


def _letters(s: str) -> str:
    return re.sub(r"[\W_]", "", s)
