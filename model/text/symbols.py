"""GPT-SoVITS v2's phone table: 732 symbols, id = line number in symbols_v2.txt.

The table is a fact of the checkpoint format (the text embeddings are indexed by it), so it
is kept as data rather than rebuilt: Chinese initials and tone-numbered finals, ARPAbet with
stress, Japanese and Korean phones upstream also carries, punctuation and pauses.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

PUNCTUATION = ["!", "?", "…", ",", ".", "-"]
# CJK punctuation as v2's marks, as every upstream reader maps it (each adds its own few more)
MARKS_AS = {"：": ",", "；": ",", "，": ",", "。": ".", "！": "!", "？": "?", "\n": ".", "·": ",", "、": ","}


@lru_cache(maxsize=1)
def table() -> tuple[str, ...]:
    return tuple((Path(__file__).parent / "symbols_v2.txt").read_text(encoding="utf-8").splitlines())


@lru_cache(maxsize=1)
def ids_by_symbol() -> dict[str, int]:
    return {s: i for i, s in enumerate(table())}


def to_ids(phones: list[str]) -> list[int]:
    lookup = ids_by_symbol()
    unknown = [p for p in phones if p not in lookup]
    if unknown:
        raise ValueError(f"phones outside the v2 table: {unknown[:5]}")
    return [lookup[p] for p in phones]
