"""Text front end: known phones for Chinese and English, mixed runs, numbers, splitting, no network."""

from __future__ import annotations

import socket

import pytest

from clonebench.core.errors import UserError
from clonebench.model.text import chinese, english
from clonebench.model.text.frontend import language_runs, phonemize, split_sentences
from clonebench.model.text.pinyin import split_syllable
from clonebench.model.text.symbols import table, to_ids


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("the text front end tried to open a network connection")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_symbol_table_is_v2():
    symbols = table()
    assert len(symbols) == 732 and len(set(symbols)) == 732
    # ids upstream's embeddings are indexed by
    assert to_ids(["_", "!", ",", "AA", "a1", "SP", "UNK"]) == [symbols.index(s) for s in ["_", "!", ",", "AA", "a1", "SP", "UNK"]]
    assert symbols[0] == "!" and symbols.index("_") > 0


@pytest.mark.parametrize("syllable,expected", [
    ("zhong", ("zh", "ong")), ("zhi", ("zh", "ir")), ("zi", ("z", "i0")), ("ju", ("j", "v")),
    ("yan", ("y", "En")), ("ye", ("y", "E")), ("yu", ("y", "v")), ("wu", ("w", "u")), ("a", ("AA", "a")),
    ("er", ("EE", "er")), ("lve", ("l", "ve")), ("gui", ("g", "ui")),
])
def test_pinyin_split(syllable, expected):
    assert split_syllable(syllable) == expected


def test_chinese_phones_with_tone_sandhi():
    phones, word2ph = chinese.g2p(chinese.normalize("你好，世界！"))
    assert phones == ["n", "i2", "h", "ao3", ",", "sh", "ir4", "j", "ie4", "!"]     # 你好: 3-3 -> 2-3
    assert word2ph == [2, 2, 1, 2, 2, 1]
    phones, _ = chinese.g2p(chinese.normalize("不是一个"))
    assert phones == ["b", "u2", "sh", "ir4", "y", "i2", "g", "e4"]                # 不 and 一 before tone 4
    phones, _ = chinese.g2p(chinese.normalize("第一"))
    assert phones[-1] == "i1"                                                     # ordinal keeps tone 1


def test_chinese_numbers_and_punctuation_normalized():
    assert chinese.normalize("2024年增长了3.5%。") == "二零二四年增长了百分之三点五."
    assert chinese.normalize("《你好》……真的？！") == "你好…真的?"


def test_english_phones_and_numbers():
    assert english.normalize("I paid $3.50 for 2 coffees in 1999.") == \
        "I paid three dollars fifty cents for two coffees in nineteen ninety-nine."
    assert english.normalize("the 21st time, 1,250 people") == "the twenty-first time, one thousand two hundred fifty people"
    phones, word2ph = english.g2p("Hello, world.")
    assert phones == ["HH", "AH0", "L", "OW1", ",", "W", "ER1", "L", "D", "."] and word2ph == [4, 1, 4, 1]
    # not in CMUdict: acronyms are spelled, other words go through letter-to-sound rules
    assert english.word_phones("XQZ")[:2] == ["EH1", "K"]
    oov = english.word_phones("blorptastic")
    assert oov and all(p in table() for p in oov)


def test_mixed_text_is_split_into_language_runs():
    assert language_runs("Hello，欢迎致电客服中心", "auto") == [("en", "Hello"), ("zh", "，欢迎致电客服中心")]
    result = phonemize("我用 GPT model 生成了 3 句话", "zh")
    assert [r.lang for r in result.runs] == ["zh", "en", "zh"]
    assert result.runs[1].text == "GPT model" and result.runs[2].text == "生成了三句话"
    assert len(result.ids) == len(result.phones) == sum(sum(r.word2ph) for r in result.runs)


def test_unsupported_input_is_a_clear_error():
    for text, lang, message in [("こんにちは", "auto", "script"), ("bonjour", "fr", "not supported"),
                                ("你好", "en", "Chinese characters"), ("   ", "en", "empty"),
                                ("?!", "en", "nothing to say"), ("a" * 1001, "en", "limit")]:
        with pytest.raises(UserError, match=message):
            phonemize(text, lang)


def test_sentence_splitting_merges_short_fragments():
    assert split_sentences("你好。今天天气很好，我们去公园散步吧！好。", "zh") == ["你好。今天天气很好，", "我们去公园散步吧！好。"]
    assert split_sentences("No punctuation here", "en") == ["No punctuation here."]
    assert split_sentences("Yes. No. This one is long enough, and so is this one.", "en") == \
        ["Yes. No.", "This one is long enough,", "and so is this one."]
