"""Split a recording's given transcript onto its clips by aligning it with the clips' ASR words.

The user writes one text per file; the slicer may cut the file into several clips. Each given
word is matched to an ASR word by a word-level edit alignment (rapidfuzz's Levenshtein opcodes
over normalised tokens); the clip of the matched ASR word owns it. Given words the ASR missed
follow their neighbours; at a clip boundary they are split at the last punctuation mark, where
the speaker most likely paused. Each clip's share is cut from the original text, so its
punctuation and casing are the user's.

`score` says how far the split can be trusted: the share of the clip's given and ASR tokens
that matched exactly (1.0 = every word). A one-clip recording gets the whole text and no score.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .textnorm import HAN

# one unit: a Han character, or a run of anything else that is not space; punctuation that
# stands alone is glued to the unit before it
_UNIT = re.compile(rf"{HAN.pattern}|[^\s{HAN.pattern[1:-1]}]+")
_PAUSE = re.compile(r"[.!?;:,。！？；：，、…—]$")


@dataclass(frozen=True)
class ClipText:
    text: str
    score: float | None  # matched share (0-1); None when nothing had to be split


def _key(unit: str) -> str:
    s = unicodedata.normalize("NFKC", unit).lower()
    return "".join(ch for ch in s if ch.isalnum())


def _units(text: str) -> list[tuple[int, int, str]]:
    """(start, end, key) of every word or Han character; bare punctuation extends the previous."""
    out: list[tuple[int, int, str]] = []
    for m in _UNIT.finditer(text):
        key = _key(m.group())
        if not key and out:
            out[-1] = (out[-1][0], m.end(), out[-1][2])
        elif key:
            out.append((m.start(), m.end(), key))
    return out


def _asr_keys(words: list[str]) -> list[str]:
    keys = []
    for w in words:
        keys += [k for _, _, k in _units(w)]
    return keys


def split_text(text: str, clip_words: list[list[str]], lang: str = "en") -> list[ClipText]:
    """The part of `text` spoken in each clip, in clip order. `clip_words` are the ASR words of
    each clip of the recording, in time order. `lang` is kept for callers' symmetry: tokens are
    words for alphabetic scripts and characters for Han text whatever the language says."""
    text = " ".join(text.split())
    if len(clip_words) <= 1:
        return [ClipText(text, None)] * len(clip_words)
    units = _units(text)
    asr, owner_of_asr = [], []
    for i, words in enumerate(clip_words):
        keys = _asr_keys(words)
        asr += keys
        owner_of_asr += [i] * len(keys)
    if not units or not asr:
        return [ClipText("", 0.0) for _ in clip_words]

    from rapidfuzz.distance import Levenshtein

    given = [k for _, _, k in units]
    owner: list[int | None] = [None] * len(given)
    exact = [False] * len(given)
    for op in Levenshtein.opcodes(given, asr):
        if op.tag in ("equal", "replace"):
            n_src, n_dst = op.src_end - op.src_start, op.dest_end - op.dest_start
            for k in range(n_src):  # proportional when a replaced run differs in length
                j = op.dest_start + min(n_dst - 1, k * n_dst // n_src)
                owner[op.src_start + k] = owner_of_asr[j]
                exact[op.src_start + k] = op.tag == "equal"
    _fill_gaps(owner, [text[s:e] for s, e, _ in units])

    parts = []
    for i, words in enumerate(clip_words):
        mine = [k for k, o in enumerate(owner) if o == i]
        n_asr = owner_of_asr.count(i)
        if not mine:
            parts.append(ClipText("", 0.0 if n_asr else 1.0))
            continue
        matched = sum(exact[k] for k in mine)
        score = matched / max(len(mine), n_asr)
        parts.append(ClipText(text[units[mine[0]][0]:units[mine[-1]][1]].strip(), round(score, 3)))
    return parts


def _fill_gaps(owner: list[int | None], surface: list[str]) -> None:
    """Give each unmatched given unit a clip: the clip on both sides when they agree, else the
    run is cut after its last pause mark (before the run when the previous unit ends in one)."""
    n, k = len(owner), 0
    while k < n:
        if owner[k] is not None:
            k += 1
            continue
        end = k
        while end < n and owner[end] is None:
            end += 1
        before = owner[k - 1] if k > 0 else None
        after = owner[end] if end < n else None
        if before is None or after is None or before == after:
            fill = before if before is not None else after
            for j in range(k, end):
                owner[j] = fill
        else:
            cut = k  # units k..cut-1 go to `before`
            for j in range(k - 1, end):
                if _PAUSE.search(surface[j]):
                    cut = j + 1
            if cut == k and not _PAUSE.search(surface[k - 1]):
                cut = end  # no pause anywhere: keep the run with the words it follows
            for j in range(k, end):
                owner[j] = before if j < cut else after
        k = end
