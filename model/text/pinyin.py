"""Pinyin syllable -> (initial, final) in the opencpop-strict convention that v2's table uses.

Zero-initial syllables get a pseudo-initial (AA/EE/OO for a/e/o, y/w kept as initials);
"-i" after zh/ch/sh/r is `ir`, after z/c/s is `i0`; ü is `v`; `yan`/`ye` use the finals
`En`/`E`. Finals carry the tone digit 1-5 (5 = neutral).
"""

from __future__ import annotations

INITIALS = ("zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h",
            "j", "q", "x", "r", "z", "c", "s")


def split_syllable(syllable: str) -> tuple[str, str]:
    """'zhong' -> ('zh', 'ong'); 'yan' -> ('y', 'En'); 'a' -> ('AA', 'a'). No tone digit."""
    s = syllable.lower().replace("ü", "v").replace("u:", "v")
    if s.startswith("y"):
        rest = s[1:]
        if rest.startswith("u"):
            rest = "v" + rest[1:]
        rest = {"an": "En", "e": "E", "": "i"}.get(rest, rest)
        return "y", rest
    if s.startswith("w"):
        return "w", s[1:] or "u"
    if s[0] in "aeo":
        return {"a": "AA", "e": "EE", "o": "OO"}[s[0]], s
    for ini in INITIALS:
        if s.startswith(ini):
            final = s[len(ini):]
            if final == "i" and ini in ("zh", "ch", "sh", "r"):
                final = "ir"
            elif final == "i" and ini in ("z", "c", "s"):
                final = "i0"
            elif ini in ("j", "q", "x") and final.startswith("u"):
                final = "v" + final[1:]
            return ini, final
    raise ValueError(f"not a pinyin syllable: {syllable!r}")
