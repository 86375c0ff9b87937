"""Chinese text made speakable the way upstream GPT-SoVITS does it before Cantonese G2P.

Upstream runs PaddleSpeech's Chinese normaliser (its `text/zh_normalization`) first. Its rules,
re-expressed here, in the order they apply to each sentence:

1. traditional characters simplified, one character at a time; full-width letters and digits
   made ASCII;
2. dates (`2024年12月25号`: the year digit by digit), ISO-like dates, clock times and time ranges,
   `~` between two measures, temperatures, unit letters (`km` → 千米);
3. arithmetic (`3+4=7`), powers, fractions, percentages, mobile, landline and 400 numbers
   (digit by digit, 幺 for one), ranges, negative numbers, version numbers, decimals, a number
   before a counter (二 becomes 两), other numbers of three or more digits (digit by digit, 幺),
   the remaining numbers as cardinals;
4. leftover symbols: `/` → 每, circled digits, Greek letters and operators as words, brackets and
   the like removed.

The quirks are kept, because released checkpoints were trained on what they produce: a unit
letter is replaced wherever it occurs (the "m" of "Zoom" becomes 米, and the "mm" rule is never
reached), `350蚊` reads 三五零 because 蚊 is not among the counters, and every `-` left after the
number rules reads 减.

Traditional to simplified uses zhconv's (MediaWiki's) one-character conversions, where upstream
uses a table of its own. Only a character zhconv lists as written in traditional text alone is
converted (噉 and 榜, simplified characters in their own right, stay), and only within the basic
CJK block: Cantonese G2P drops anything outside it (zhconv would turn 嗰 into an extension-B
character and lose the word). Measured against upstream's table: 41 characters, all rare (閤, 摺,
舖, 麼 are the commonest), get a different Jyutping reading.
"""

from __future__ import annotations

import json
import re
import string
from functools import lru_cache
from importlib import resources

from .symbols import PUNCTUATION

DIGITS = "零一二三四五六七八九"
NOT_SAID = re.compile("[^\u4e00-\u9fa5" + re.escape("".join(PUNCTUATION)) + "]+")
POWERS = ((8, "亿"), (4, "万"), (3, "千"), (2, "百"), (1, "十"))
BASIC_CJK = re.compile(r"[\u4e00-\u9fa5]")

# Counters and measure words after which a number is read as a cardinal (二 as 两). Only whether
# one follows matters: the counter itself is kept as written.
_ONE_CHAR_COUNTERS = (
    "处台架枚趟幅平方堵间床株批项例列篇栋注亩封艘把目套段人所朵匹张座回场尾条个首阙阵网炮顶丘棵只"
    "支袭辆挑担颗壳窠曲墙群腔砣客贯扎捆刀令打手罗坡山岭江溪钟队单双对出口头脚板跳枝件贴针线管名位"
    "身堂课本页家户层丝毫厘分钱两斤铢石钧锱忽寸尺丈里寻常铺程米撮勺合升斗盘碗碟叠桶笼盆盒杯斛锅簋"
    "篮罐瓶壶卮盏箩箱煲啖袋钵年月日季刻时周天秒旬纪岁世更夜春夏秋冬代伏辈丸泡粒幢堆根道面片块元亿"
    "万千百吨角毛")
_LONGER_COUNTERS = ("小时", "公分", "美元", "十吨", "微克", "微米")
COUNTER = "(" + "|".join([*_LONGER_COUNTERS, *_ONE_CHAR_COUNTERS]) + ")"

# Units whose letters are replaced wherever they occur, in this order.
UNIT_WORDS = {"cm2": "平方厘米", "cm²": "平方厘米", "cm3": "立方厘米", "cm³": "立方厘米", "cm": "厘米",
              "db": "分贝", "ds": "毫秒", "kg": "千克", "km": "千米", "m2": "平方米", "m²": "平方米",
              "m³": "立方米", "m3": "立方米", "ml": "毫升", "m": "米", "mm": "毫米", "s": "秒"}
_UNITS = "%|°C|℃|度|摄氏度|" + "|".join(UNIT_WORDS)

SUPERSCRIPTS = {"⁰": "0", "¹": "1", "²": "2", "³": "3", "⁴": "4", "⁵": "5", "⁶": "6", "⁷": "7",
                "⁸": "8", "⁹": "9", "ˣ": "x", "ʸ": "y", "ⁿ": "n"}
_SUP = "[" + "".join(SUPERSCRIPTS) + "]"
OPERATORS = {"+": "加", "-": "减", "×": "乘", "÷": "除", "=": "等于"}

SYMBOL_WORDS = {
    "/": "每", "①": "一", "②": "二", "③": "三", "④": "四", "⑤": "五", "⑥": "六", "⑦": "七", "⑧": "八",
    "⑨": "九", "⑩": "十", "α": "阿尔法", "β": "贝塔", "γ": "伽玛", "Γ": "伽玛", "δ": "德尔塔",
    "Δ": "德尔塔", "ε": "艾普西龙", "ζ": "捷塔", "η": "依塔", "θ": "西塔", "Θ": "西塔", "ι": "艾欧塔",
    "κ": "喀帕", "λ": "拉姆达", "Λ": "拉姆达", "μ": "缪", "ν": "拗", "ξ": "克西", "Ξ": "克西",
    "ο": "欧米克伦", "π": "派", "Π": "派", "ρ": "肉", "ς": "西格玛", "Σ": "西格玛", "σ": "西格玛",
    "τ": "套", "υ": "宇普西龙", "φ": "服艾", "Φ": "服艾", "χ": "器", "ψ": "普赛", "Ψ": "普赛",
    "ω": "欧米伽", "Ω": "欧米伽", "+": "加", "-": "减", "×": "乘", "÷": "除", "=": "等"}

# (upstream means to make the ideographic space ASCII too, but its table is keyed by the
# character instead of its code point, so str.translate never applies it)
FULL_WIDTH = str.maketrans({chr(ord(c) + 0xFEE0): c for c in string.ascii_letters + string.digits})
SENTENCE_BREAK = re.compile(r"([：、，；。？！,;?!][”’]?)")
DROPPED_BEFORE = re.compile(r"[—《》【】<>{}()（）#&@“”^_|\\]")
DROPPED_AFTER = re.compile(r"[-—《》【】<=>{}()（）#&@“”^_|\\]")

_NUM = r"-?\d+(?:\.\d+)?"
_TIME = r"([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?"
DATE = re.compile(r"(\d{4}|\d{2})年(?:(0?[1-9]|1[0-2])月)?(?:(0?[1-9]|[12]\d|30|31)([日号]))?")
ISO_DATE = re.compile(r"(\d{4})([- /.])(0[1-9]|1[012])\2(0[1-9]|[12]\d|3[01])")
TIME_RANGE = re.compile(_TIME + "[~-]" + _TIME)
TIME = re.compile(_TIME)
MEASURE_RANGE = re.compile(rf"(?:{_NUM}|\.\d+)(?:{_UNITS})~(?:{_NUM}|\.\d+)(?:{_UNITS})")
TEMPERATURE = re.compile(r"(-?)(\d+(?:\.\d+)?)(°C|℃|度|摄氏度)")
_OPERAND = rf"-?\d+(?:\.\d+)?{_SUP}*|\.\d+{_SUP}*|[A-Za-z]{_SUP}*"
ARITHMETIC = re.compile(rf"({_OPERAND})([+\-×÷=])({_OPERAND})")
POWER = re.compile(_SUP + "+")
FRACTION = re.compile(r"(-?)(\d+)/(\d+)")
PERCENT = re.compile(r"(-?)(\d+(?:\.\d+)?)%")
MOBILE = re.compile(r"(?<!\d)((\+?86 ?)?1([38]\d|5[0-35-9]|7[678]|9[89])\d{8})(?!\d)")
LANDLINE = re.compile(r"(?<!\d)((0(10|2[1-3]|[3-9]\d{2})-?)?[1-9]\d{6,7})(?!\d)")
SERVICE_NUMBER = re.compile(r"400-?\d{3}-?\d{4}")
RANGE = re.compile(rf"(?<![\d+\-×÷=])({_NUM})[-~]({_NUM})(?![\d+\-×÷=])")
NEGATIVE = re.compile(r"-(\d+)")
VERSION = re.compile(r"\d+(?:\.\d+){2,}")
DECIMAL = re.compile(r"(-?)(\d+\.\d+)|(\.\d+)")
COUNTED = re.compile(r"(\d+)([多余几+])?" + COUNTER)
LONG_NUMBER = re.compile(r"\d{3,}")
NUMBER = re.compile(r"(-?)(\d+(?:\.\d+)?)|(\.\d+)")


@lru_cache(maxsize=1)
def _simplified() -> dict[int, str]:
    # zhconv's table, read directly (importing zhconv loads it through deprecated pkg_resources)
    tables = json.loads(resources.files("zhconv").joinpath("zhcdict.json").read_text(encoding="utf-8"))
    traditional_only = set(tables["TRADONLY"])
    return {ord(trad): simp for trad, simp in tables["zh2Hans"].items()
            if trad in traditional_only and len(simp) == 1 and BASIC_CJK.match(trad) and BASIC_CJK.match(simp)}


def simplify(text: str) -> str:
    """Traditional characters as simplified ones, character by character."""
    return text.translate(_simplified())


def spell(digits: str, alt_one: bool = False) -> str:
    """Digit by digit: 2025 → 二零二五; with `alt_one`, one is 幺 (as in phone numbers)."""
    out = "".join(DIGITS[int(d)] for d in digits)
    return out.replace("一", "幺") if alt_one else out


def _cardinal_parts(digits: str) -> list[str]:
    significant = digits.lstrip("0")
    if not significant:
        return []
    if len(significant) == 1:
        # a zero before a lone digit is said: 105 → 一百零五
        return ([DIGITS[0]] if len(significant) < len(digits) else []) + [DIGITS[int(significant)]]
    power, unit = next((p, u) for p, u in POWERS if p < len(significant))
    return _cardinal_parts(digits[:-power]) + [unit] + _cardinal_parts(digits[-power:])


def cardinal(digits: str) -> str:
    """An integer's digits as a Chinese numeral: 1024 → 一千零二十四, 12 → 十二."""
    if not digits:
        return ""
    if not digits.lstrip("0"):
        return DIGITS[0]
    parts = _cardinal_parts(digits.lstrip("0"))
    if parts[:2] == [DIGITS[1], "十"]:
        parts = parts[1:]
    return "".join(parts)


def number(value: str) -> str:
    """A decimal number: 3.5 → 三点五, .25 → 零点二五. Trailing zeros after the point collapse to one."""
    whole, _, fraction = value.partition(".")
    out = cardinal(whole)
    fraction = fraction.rstrip("0") + "0" if fraction.endswith("0") else fraction
    if fraction:
        out = (out or DIGITS[0]) + "点" + spell(fraction)
    return out


def _signed(m: re.Match) -> str:
    sign, value, bare = m.group(1), m.group(2), m.group(3)
    if bare:
        return number(bare)
    return ("负" if sign else "") + number(value)


def _date(m: re.Match) -> str:
    year, month, day, suffix = m.groups()
    return (spell(year) + "年" + (cardinal(month) + "月" if month else "")
            + (cardinal(day) + suffix if day else ""))


def _iso_date(m: re.Match) -> str:
    return spell(m.group(1)) + "年" + cardinal(m.group(3)) + "月" + cardinal(m.group(4)) + "日"


def _clock_part(digits: str) -> str:
    return (DIGITS[0] if digits.startswith("0") else "") + number(digits.lstrip("0"))


def _clock(hour: str, minute: str, second: str | None, half: bool) -> str:
    out = number(hour) + "点"
    if minute.lstrip("0"):
        out += "半" if half else _clock_part(minute) + "分"
    if second and second.lstrip("0"):
        out += _clock_part(second) + "秒"
    return out


def _time(m: re.Match) -> str:
    h, mi, s = m.group(1), m.group(2), m.group(3)
    return _clock(h, mi, s, int(mi) == 30)


def _time_range(m: re.Match) -> str:
    h, mi, s, h2, mi2, s2 = m.groups()
    # upstream says 半 for the second time when the *first* one is at half past; kept
    return _clock(h, mi, s, int(mi) == 30) + "至" + _clock(h2, mi2, s2, int(mi) == 30)


def _temperature(m: re.Match) -> str:
    sign, value, unit = m.groups()
    return ("零下" if sign else "") + number(value) + ("摄氏度" if unit == "摄氏度" else "度")


def _units(sentence: str) -> str:
    for letters, word in UNIT_WORDS.items():
        sentence = sentence.replace(letters, word)
    return sentence


def _power(m: re.Match) -> str:
    return "的" + "".join(SUPERSCRIPTS[c] for c in m.group()) + "次方"


def _fraction(m: re.Match) -> str:
    sign, top, bottom = m.groups()
    return ("负" if sign else "") + number(bottom) + "分之" + number(top)


def _percent(m: re.Match) -> str:
    return ("负" if m.group(1) else "") + "百分之" + number(m.group(2))


def _mobile(m: re.Match) -> str:
    return "，".join(spell(part, alt_one=True) for part in m.group().strip("+").split())


def _phone(m: re.Match) -> str:
    return "，".join(spell(part, alt_one=True) for part in m.group().split("-"))


def _range(m: re.Match) -> str:
    return NUMBER.sub(_signed, m.group(1)) + "到" + NUMBER.sub(_signed, m.group(2))


def _version(m: re.Match) -> str:
    return "".join("点" if c == "." else number(c) for c in m.group())


def _counted(m: re.Match) -> str:
    value = number(m.group(1))
    about = "多" if m.group(2) == "+" else (m.group(2) or "")
    return ("两" if value == "二" else value) + about + m.group(3)


def normalize_sentence(sentence: str) -> str:
    sentence = simplify(sentence).translate(FULL_WIDTH)
    sentence = DATE.sub(_date, sentence)
    sentence = ISO_DATE.sub(_iso_date, sentence)
    sentence = TIME_RANGE.sub(_time_range, sentence)
    sentence = TIME.sub(_time, sentence)
    sentence = MEASURE_RANGE.sub(lambda m: m.group().replace("~", "至"), sentence)
    sentence = TEMPERATURE.sub(_temperature, sentence)
    sentence = _units(sentence)
    while ARITHMETIC.search(sentence):
        sentence = ARITHMETIC.sub(lambda m: m.group(1) + OPERATORS[m.group(2)] + m.group(3), sentence)
    sentence = POWER.sub(_power, sentence)
    sentence = FRACTION.sub(_fraction, sentence)
    sentence = PERCENT.sub(_percent, sentence)
    sentence = MOBILE.sub(_mobile, sentence)
    sentence = LANDLINE.sub(_phone, sentence)
    sentence = SERVICE_NUMBER.sub(_phone, sentence)
    sentence = RANGE.sub(_range, sentence)
    sentence = NEGATIVE.sub(lambda m: "负" + number(m.group(1)), sentence)
    sentence = VERSION.sub(_version, sentence)
    sentence = DECIMAL.sub(_signed, sentence)
    sentence = COUNTED.sub(_counted, sentence)
    sentence = LONG_NUMBER.sub(lambda m: spell(m.group(), alt_one=True), sentence)
    sentence = NUMBER.sub(_signed, sentence)
    for symbol, word in SYMBOL_WORDS.items():
        sentence = sentence.replace(symbol, word)
    return DROPPED_AFTER.sub("", sentence)


def spoken(text: str, marks: dict[str, str]) -> str:
    """Each sentence normalized, its punctuation as v2's marks (`marks`), and everything but basic
    CJK characters and those marks dropped (upstream's Chinese and Cantonese readers, each with
    its own map)."""
    pattern = re.compile("|".join(re.escape(k) for k in sorted(marks, key=len, reverse=True)))
    return "".join(NOT_SAID.sub("", pattern.sub(lambda m: marks[m.group()], s)) for s in normalize(text))


def normalize(text: str) -> list[str]:
    """Text → its sentences, each with numbers and symbols read out (spaces removed)."""
    text = DROPPED_BEFORE.sub("", text.replace(" ", ""))
    text = SENTENCE_BREAK.sub(r"\1\n", text).strip()
    return [normalize_sentence(s.strip()) for s in re.split(r"\n+", text)]
