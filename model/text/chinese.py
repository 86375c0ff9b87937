"""Chinese: normalization as upstream v2 reads it, and G2P (jieba + pypinyin + tone sandhi).

- `normalize`: upstream's normaliser (`zh_normalizer`: numbers, dates, times, units, phone
  numbers, traditional characters simplified), 嗯 and 呣 as 恩 and 母 (pypinyin reads them as
  bare nasals, which v2 has no phones for), punctuation as v2's marks, everything else dropped
  (Latin words are English runs before they get here), runs of marks cut to their first. Held to
  upstream's own `clean_text` by `tests/fixtures/frontend` (zh: the normalized text).
- `g2p`: per character an initial and a tone-numbered final (see pinyin.py); punctuation is one
  of `! ? … , . -`. word2ph counts phones per character of the normalized text, which is how
  BERT features are repeated onto phones. The tone sandhi here is clonebench's own, simpler than
  upstream's (which also merges words and knows which ones take a neutral tone): the readings
  differ on neutral tones, 一 and third-tone chains (the fixtures' README lists them), and
  upstream v2 itself reads polyphones with G2PW, which needs a model download.
"""

from __future__ import annotations

import re

from . import zh_normalizer
from .pinyin import split_syllable
from .symbols import MARKS_AS, PUNCTUATION

# upstream v2's Chinese map (its text/chinese2.py)
PUNCTUATION_AS = {**MARKS_AS, "...": "…", "$": ".", "/": ",", "—": "-", "~": "…", "～": "…"}
REPEATED_MARKS = re.compile(f"([{re.escape(''.join(PUNCTUATION))}])[{re.escape(''.join(PUNCTUATION))}]+")
HAN = re.compile(r"[\u4e00-\u9fff]")
NUMERALS = "零一二三四五六七八九十百千万亿两"


def normalize(text: str) -> str:
    """Numbers, dates, percentages -> Chinese words; punctuation -> v2's marks; repeats collapsed."""
    text = text.replace("嗯", "恩").replace("呣", "母")
    return REPEATED_MARKS.sub(r"\1", zh_normalizer.spoken(text, PUNCTUATION_AS))


def _tone(s: str) -> int:
    return int(s[-1]) if s[-1].isdigit() else 5


def _set_tone(s: str, tone: int) -> str:
    return (s[:-1] if s[-1].isdigit() else s) + str(tone)


def apply_sandhi(word: str, syllables: list[str], next_tone: int | None,
                 prev_char: str = "", next_char: str = "") -> list[str]:
    """Common tone sandhi for one jieba word (syllables like 'ni3').

    `next_tone`, `prev_char` and `next_char` describe the neighbouring words, so that 一 in
    numbers keeps tone 1 and a monosyllable before a third tone rises (我有 wo2 you3).
    """
    out = list(syllables)
    tones_after = [_tone(s) for s in out[1:]] + [next_tone]
    context = prev_char + word + next_char
    for i, ch in enumerate(word[:len(out)]):
        after, at = tones_after[i], i + len(prev_char)
        if ch == "不" and after == 4:
            out[i] = _set_tone(out[i], 2)                    # 不是 bu2 shi4
        elif ch == "一":
            before_ch = context[at - 1] if at > 0 else ""
            after_ch = context[at + 1] if at + 1 < len(context) else ""
            if before_ch in NUMERALS + "第" and before_ch or after_ch in NUMERALS and after_ch or after is None:
                out[i] = _set_tone(out[i], 1)                # 第一, 一三八, 统一
            elif before_ch and before_ch == after_ch:
                out[i] = _set_tone(out[i], 5)                # 看一看
            else:
                out[i] = _set_tone(out[i], 2 if after == 4 else 4)   # 一个 yi2, 一天 yi4
    # third-tone sandhi: in a run of third tones every one but the last rises to second;
    # across a word boundary only a monosyllable rises
    for i in range(len(out)):
        following = _tone(out[i + 1]) if i + 1 < len(out) else (next_tone if len(out) == 1 else None)
        if _tone(out[i]) == 3 and following == 3:
            out[i] = _set_tone(out[i], 2)
    # reduplicated kinship nouns and verbs take a neutral second syllable: 妈妈, 看看
    if len(word) == 2 and word[0] == word[1] and HAN.match(word) and len(out) == 2:
        out[1] = _set_tone(out[1], 5)
    return out


def g2p(text: str) -> tuple[list[str], list[int]]:
    """Normalized Chinese text -> (phones, word2ph per character)."""
    import jieba
    from pypinyin import Style, lazy_pinyin

    jieba.setLogLevel(60)
    words = [w for w in jieba.lcut(text) if w]
    spelled = [lazy_pinyin(w, style=Style.TONE3, neutral_tone_with_five=True, errors=lambda x: list(x))
               for w in words]
    phones: list[str] = []
    word2ph: list[int] = []
    for wi, (word, syllables) in enumerate(zip(words, spelled)):
        nxt = spelled[wi + 1][0] if wi + 1 < len(spelled) and spelled[wi + 1] else None
        next_tone = _tone(nxt) if nxt and nxt[-1].isdigit() else None
        if len(syllables) == len(word):
            prev_char = words[wi - 1][-1] if wi else ""
            next_char = words[wi + 1][0] if wi + 1 < len(words) else ""
            syllables = apply_sandhi(word, syllables, next_tone, prev_char, next_char)
        for ch, syl in zip(word, syllables):
            if ch in PUNCTUATION:
                phones.append(ch)
                word2ph.append(1)
            elif HAN.match(ch) and syl[-1].isdigit():
                initial, final = split_syllable(syl[:-1])
                phones += [initial, final + syl[-1]]
                word2ph.append(2)
            else:
                # anything else that survived normalization (stray symbols) is silent
                word2ph.append(0)
    return phones, word2ph
